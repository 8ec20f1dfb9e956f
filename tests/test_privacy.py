"""Scoring makes no outbound connection, no DNS lookup and writes nothing under ~/intel/
(OpenVINO's telemetry is disabled before openvino is imported)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples" / "astronaut_real.mp4"

# Run first in the child: every name lookup and every connection that leaves the machine is
# recorded and fails (loopback and Unix sockets are allowed).
GUARD = textwrap.dedent("""
    import json, os, socket
    _attempts = []
    _LOCAL = ("localhost", "127.", "::1", "0.0.0.0")

    def _local(host):  # None: the local host (getaddrinfo(None, port))
        return host is None or isinstance(host, (bytes, str)) and os.fsdecode(host).startswith(_LOCAL)

    def _refuse(what, target):
        _attempts.append([what, repr(target)])
        with open(os.environ["ATTEMPTS_FILE"], "w") as f:
            json.dump(_attempts, f)
        raise OSError(f"outbound {what} blocked by the test: {target!r}")

    def _wrap_lookup(name):
        real = getattr(socket, name)
        def lookup(host, *args, **kwargs):
            if not _local(host):
                _refuse(name, host)
            return real(host, *args, **kwargs)
        setattr(socket, name, lookup)

    for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        _wrap_lookup(_name)

    def _wrap_connect(name):
        real = getattr(socket.socket, name)
        def connect(self, address):
            if self.family != getattr(socket, "AF_UNIX", None) and not _local(address[0]):
                _refuse(name, address)
            return real(self, address)
        setattr(socket.socket, name, connect)

    for _name in ("connect", "connect_ex"):
        _wrap_connect(_name)
""")


# openvino_telemetry turns itself off where it sees a CI service (CI=true, TF_BUILD, JENKINS_URL):
# the children run with a user's environment, so both the promise and its controls are tested as
# they would be on a user's machine, not trivially satisfied by the CI's variables.
_CI_MARKERS = ("CI", "TF_BUILD", "JENKINS_URL")


def _user_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _CI_MARKERS and k != "PYCRL_ALLOW_TELEMETRY"}
    return {**env, **extra}


def _run(tmp_path, body):
    home = tmp_path / "home"
    home.mkdir()
    attempts = tmp_path / "attempts.json"
    env = _user_env(HOME=str(home), ATTEMPTS_FILE=str(attempts), PYCRL_CACHE_DIR=str(tmp_path / "cache"),
                    XDG_CACHE_HOME=str(tmp_path / "xdg"))
    done = subprocess.run([sys.executable, "-c", GUARD + textwrap.dedent(body)], capture_output=True, text=True,
                          timeout=300, env=env)
    found = json.loads(attempts.read_text()) if attempts.exists() else []
    return done, found, home


def test_scoring_makes_no_outbound_call_and_no_intel_folder(tmp_path):
    done, attempts, home = _run(tmp_path, f"""
        import pycrl
        with pycrl.Detector(frames=4) as det:  # the default: OpenVINO
            assert det.backend == "openvino", det.backend
            result = det.score_video({str(SAMPLE)!r})
        assert result.status == "ok", result.message
        print("scored", result.score)
        """)
    assert done.returncode == 0, done.stderr
    assert "scored" in done.stdout
    assert attempts == []
    assert not (home / "intel").exists()


def test_the_check_sees_openvinos_telemetry_without_pycrl(tmp_path):
    """The control: a bare ``import openvino`` in the same harness does create ~/intel/ (and
    may try to reach its analytics), so the test above would notice telemetry."""
    done, attempts, home = _run(tmp_path, """
        import openvino
        import time
        time.sleep(1)  # the telemetry sender runs in a thread
        """)
    assert done.returncode == 0, done.stderr
    assert (home / "intel").exists() or attempts, "openvino made no telemetry here: the control proves nothing"


def test_telemetry_may_be_allowed_explicitly(tmp_path):
    env = _user_env(PYCRL_ALLOW_TELEMETRY="1")
    out = subprocess.run([sys.executable, "-c", "import sys, pycrl; print(sys.modules.get('openvino_telemetry', 1))"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr


def _strace_connects(tmp_path, code, **env):
    """Non-loopback inet connect()/sendto() syscalls of a child, from any library (C or Python)."""
    import re
    import shutil

    if shutil.which("strace") is None:
        import pytest

        pytest.skip("strace is not installed")
    home = tmp_path / "home"
    home.mkdir(parents=True)
    log = tmp_path / "strace.log"
    run_env = _user_env(HOME=str(home), PYCRL_CACHE_DIR=str(tmp_path / "cache"), **env)
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log),
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=run_env)
    if done.returncode != 0 and "ptrace" in done.stderr:
        import pytest

        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    calls = [ln for ln in log.read_text().splitlines() if "AF_INET" in ln]
    local = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"')
    dns = re.compile(r"sin6?_port=htons\(53\)")  # a name lookup, even through a resolver on loopback
    return [ln for ln in calls if dns.search(ln) or not local.search(ln)], home


SCORE = f"""
import pycrl
with pycrl.Detector(frames=2) as det:
    assert det.score_video({str(SAMPLE)!r}).status == "ok"
"""


def test_no_inet_syscall_from_any_library(tmp_path):
    """The same promise at the system-call level, where a C library's lookup would show too."""
    outbound, home = _strace_connects(tmp_path, SCORE)
    assert outbound == [] and not (home / "intel").exists()
    # the control: with telemetry allowed, the same run is seen reaching out
    allowed, _ = _strace_connects(tmp_path / "allowed", SCORE + "import time; time.sleep(2)\n",
                                  PYCRL_ALLOW_TELEMETRY="1")
    assert allowed, "telemetry allowed made no inet call here: the control proves nothing"
