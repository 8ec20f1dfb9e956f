"""`pycrl serve` run as a real process on a loopback port, for the service's tests and benchmark."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples"
REAL_CLIP, FAKE_CLIP = SAMPLES / "astronaut_real.mp4", SAMPLES / "astronaut_selfblend.mp4"


def first_frame_png(clip: Path = REAL_CLIP) -> bytes:
    """An image with a face: the first frame of a bundled clip, as PNG bytes."""
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="PNG")
    return out.getvalue()


class Server:
    """``pycrl serve --port 0 ARGS`` until `stop`; ``url`` once it listens, ready when the
    model has loaded (``wait_ready``)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None, ready: bool = True):
        self.log = tmp_path / f"serve-{time.monotonic_ns()}.log"
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pycrl.cli", "serve", "--port", "0", *args],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.url = self._wait_for(r"listening on (http://\S+)", 120)
        if ready:
            self.wait_ready()

    def _wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"pycrl serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        raise TimeoutError(f"pycrl serve did not print {pattern!r} in {timeout} s:\n{self.log.read_text()}")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"pycrl serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise TimeoutError(f"not ready in {timeout} s:\n{self.log.read_text()}")

    def stop(self, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
