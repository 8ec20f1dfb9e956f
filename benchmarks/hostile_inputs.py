"""The hostile-input corpus: what an upload service must survive, scored case by case.

    python benchmarks/hostile_inputs.py [--timeout 30] [--json out.json]

Builds, in a temporary folder, inputs a stranger could upload or a folder walk could produce
(broken and truncated media, decompression bombs, names that look like URLs, playlists and
concat scripts that point elsewhere, a FIFO, a device, names that are not UTF-8, ...) plus two
clean controls, then scores each one with the default model in a fresh process — as
``pycrl score CASE --jsonl -`` would — and reports its record's outcome class, wall time and
peak memory (the child's maximum resident set). A TCP listener on loopback stands where the
URLs point: the run fails if anything connects to it. Every case must end in one record
(``ok``, ``no_face`` or a typed ``error``) within the per-item timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

from pycrl.media.synthetic import write_audio, write_video

SAMPLES = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples"

# One child per case: it loads the default model, scores one input and prints its record.
CHILD = """
import json, os, sys
import pycrl
from pycrl.limits import Limits
source = os.fsdecode(sys.argv[1].encode("utf-8", "surrogateescape"))
with pycrl.Detector(frames=4, limits=Limits(timeout_s=float(sys.argv[2]))) as det:
    (record,) = [r.to_dict() for r in det.score_videos([source])]
print(json.dumps(record))
"""


class Listener:
    """Accepts and counts TCP connections on a loopback port: nothing may ever arrive."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def build(root: Path, port: int) -> dict[str, str]:
    """Write the corpus into ``root``; returns {case name: path to score}."""
    real = (SAMPLES / "astronaut_real.mp4").read_bytes()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.mp4").write_bytes(real)  # what reference-following inputs try to reach
    up = root / "uploads"
    up.mkdir()
    cases: dict[str, str] = {}

    def put(name: str, data: bytes | str, case: str | None = None) -> None:
        path = up / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        cases[case or name] = str(path)

    put("control-face.mp4", real)
    Image.fromarray(skdata.astronaut()).save(up / "control-face.png")  # public domain (NASA)
    cases["control-face.png"] = str(up / "control-face.png")
    put("empty.mp4", b"")
    put("random.mp4", np.random.default_rng(0).bytes(50_000))
    put("truncated.mp4", real[: len(real) // 3])
    put("text-as-video.mp4", "not a video\n" * 100)
    write_audio(up / "audio-only.m4a")
    cases["audio-only.m4a"] = str(up / "audio-only.m4a")
    write_video(up / "noface.mp4", 8)
    cases["noface.mp4"] = str(up / "noface.mp4")
    write_video(up / "tiny-2x2.mp4", 4, width=2, height=2)
    cases["tiny-2x2.mp4"] = str(up / "tiny-2x2.mp4")
    put("png-declares-10G-pixels.png", _png(100_000, 100_000, zlib.compress(b"\0" * 64)))
    rows = zlib.compressobj(9)
    bomb = b"".join(rows.compress(b"\0" * 12_001) for _ in range(12_000)) + rows.flush()
    put("png-zlib-bomb.png", _png(12_000, 12_000, bomb))
    # Names a folder walk can produce that FFmpeg would read as URLs.
    put(f"tcp:127.0.0.1:{port}", real, "named-tcp-url")
    cases["named-http-url-missing"] = f"http://127.0.0.1:{port}/clip.mp4"
    put("playlist.m3u8", f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nhttp://127.0.0.1:{port}/seg.ts\n"
                         "#EXT-X-ENDLIST\n", "hls-remote-segments")
    put("live.m3u8", f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{elsewhere / 'private.mp4'}\n",
        "hls-live-local-segment")
    put("concat-disguised.mp4", f"ffconcat version 1.0\nfile '{elsewhere / 'private.mp4'}'\n",
        "ffconcat-disguised-as-mp4")
    os.mkfifo(up / "fifo.mp4")
    cases["fifo"] = str(up / "fifo.mp4")
    (up / "folder.mp4").mkdir()
    cases["directory"] = str(up / "folder.mp4")
    os.symlink("/dev/zero", up / "zero.mp4")
    cases["symlink-to-dev-zero"] = str(up / "zero.mp4")
    odd = os.path.join(os.fsencode(up), b"clip-\xff\xfe.mp4")
    with open(odd, "wb") as f:
        f.write(real)
    cases["name-not-utf8"] = os.fsdecode(odd)
    cases["missing"] = str(up / "missing.mp4")
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=30.0, help="per-item decode budget (Limits.timeout_s)")
    ap.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = ap.parse_args()
    listener = Listener()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = build(Path(tmp), listener.port)
        for name, path in cases.items():
            row = measure(name, path, args.timeout)
            rows.append(row)
            print(f"{name:<28} {row['outcome']:<34} {row['seconds']:6.2f} s  {row['peak_mb']:7.0f} MB", flush=True)
    lost = [r["case"] for r in rows if r["outcome"] in ("no record", "hung")]
    print(f"\n{len(rows)} cases: {sum(r['outcome'].startswith('error') for r in rows)} typed errors, "
          f"{sum(r['outcome'] == 'ok' for r in rows)} ok, {sum(r['outcome'] == 'no_face' for r in rows)} no_face, "
          f"{len(lost)} without a record; connections to the loopback listener: {listener.accepted}; "
          f"slowest {max(r['seconds'] for r in rows):.2f} s, largest peak {max(r['peak_mb'] for r in rows):.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({"cases": rows, "connections": listener.accepted}, indent=2))
    return 1 if lost or listener.accepted else 0


def measure(name: str, path: str, timeout: float) -> dict:
    """Score ``path`` in a child process; its own peak resident memory comes from wait4."""
    arg = os.fsencode(path).decode("utf-8", "surrogateescape")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, arg, str(timeout)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    deadline = start + timeout + 60
    out = b""
    hung = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            hung = True
            break
        time.sleep(0.02)
    if proc.stdout is not None:
        out = proc.stdout.read()
    seconds = time.monotonic() - start
    outcome = "hung"
    if not hung:
        lines = out.decode().strip().splitlines()
        if os.waitstatus_to_exitcode(status) == 0 and lines:
            record = json.loads(lines[-1])
            outcome = record["status"] if record["status"] != "error" else f"error: {record['error_type']}"
        else:
            outcome = "no record"
    return {"case": name, "outcome": outcome, "seconds": round(seconds, 3), "peak_mb": round(usage.ru_maxrss / 1024, 1)}


if __name__ == "__main__":
    sys.exit(main())
