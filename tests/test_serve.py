"""`pycrl serve`: the real server on a loopback port, spoken to over HTTP (httpx)."""

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

httpx = pytest.importorskip("httpx", reason="httpx (the [dev] extra) is not installed")
pytest.importorskip("fastapi", reason="the [serve] extra is not installed")

from serve_harness import FAKE_CLIP, REAL_CLIP, Server, first_frame_png  # noqa: E402

import pycrl  # noqa: E402
from pycrl.model_folder import resolve  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    shutil.copy(REAL_CLIP, root / "clip.mp4")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.mp4").write_bytes(REAL_CLIP.read_bytes())
    os.symlink(outside / "secret.mp4", root / "link-out.mp4")
    os.mkfifo(root / "fifo.mp4")
    with Server(tmp_path_factory.mktemp("log"), "--frames", "4", "--allowed-root", str(root),
                "--sync-max-mb", "0.5", "--max-upload-mb", "1") as s:
        s.root, s.outside = root, outside
        yield s


def test_health_ready_and_the_schema(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["ready"] and ready["model"] == "crl-faces" and "fpr=0.01" in ready["operating_points"]
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/score", "/v1/jobs", "/v1/jobs/{job_id}", "/readyz"} <= set(schema["paths"])
    assert "application/octet-stream" in schema["paths"]["/v1/score"]["post"]["requestBody"]["content"]


def test_a_video_scored_synchronously_is_the_jsonl_record(server, tmp_path):
    got = httpx.post(f"{server.url}/v1/score", params={"name": "clip.mp4"}, content=FAKE_CLIP.read_bytes(),
                     timeout=120)
    assert got.status_code == 200, got.text
    record = got.json()
    cli = subprocess.run([sys.executable, "-m", "pycrl.cli", "score", str(FAKE_CLIP), "--frames", "4", "--jsonl", "-",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    expected = json.loads(cli.stdout)
    assert set(record) == set(expected)
    assert record["source"] == "clip.mp4" and record["label"] == expected["label"] == "fake"
    assert record["score"] == pytest.approx(expected["score"], abs=1e-5)
    assert [f["frame_index"] for f in record["faces"]] == [f["frame_index"] for f in expected["faces"]]


def test_an_image_and_an_operating_point(server):
    png = first_frame_png()
    got = httpx.post(f"{server.url}/v1/score", params={"operating_point": "fpr=0.01"}, content=png, timeout=60)
    assert got.status_code == 200, got.text
    record = got.json()
    card = json.loads((resolve("default") / "model.json").read_text())
    assert record["status"] == "ok" and record["frames_sampled"] == 1 and record["label"] == "real"
    assert record["operating_point"] == "fpr=0.01" and record["threshold"] == card["operating_points"]["fpr=0.01"]
    with pycrl.Detector(frames=4) as det:
        assert record["score"] == pytest.approx(det.score_image(png).score, abs=1e-5)
    custom = httpx.post(f"{server.url}/v1/score", params={"threshold": "0.01"}, content=png, timeout=60).json()
    assert custom["operating_point"] == "custom" and custom["label"] == "fake"


def test_a_job_runs_and_is_kept(server):
    got = httpx.post(f"{server.url}/v1/jobs", params={"name": "fake.mp4"}, content=FAKE_CLIP.read_bytes())
    assert got.status_code == 202, got.text
    job = got.json()
    assert job["state"] in ("queued", "running") and got.headers["location"] == f"/v1/jobs/{job['id']}"
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = httpx.get(f"{server.url}/v1/jobs/{job['id']}").json()
    assert job["state"] == "done" and job["result"]["label"] == "fake" and job["result"]["source"] == "fake.mp4"
    assert httpx.get(f"{server.url}/v1/jobs/{job['id']}").json() == job  # kept after reading
    assert httpx.get(f"{server.url}/v1/jobs/nope").status_code == 404


def test_server_local_paths_stay_below_the_root(server):
    def ask(path):
        return httpx.post(f"{server.url}/v1/score", json={"path": path}, timeout=60)

    ok = ask("clip.mp4")
    assert ok.status_code == 200 and ok.json()["source"] == "clip.mp4" and ok.json()["status"] == "ok"
    assert ask(str(server.root / "clip.mp4")).status_code == 200  # absolute, but inside
    for path, status in [("../outside/secret.mp4", 403), ("link-out.mp4", 403), (str(server.outside / "secret.mp4"), 403),
                         ("/etc/passwd", 403), ("missing.mp4", 404), ("fifo.mp4", 400), (".", 400)]:
        got = ask(path)
        assert got.status_code == status, (path, got.text)
        assert "detail" in got.json()


@pytest.mark.parametrize("send, status, says", [
    (dict(content=b"not a video at all"), 422, "UnsupportedMediaError"),
    (dict(content=b""), 400, "empty request body"),
    (dict(files={"file": ("a.png", b"x")}), 415, "raw request body"),
    (dict(content=b"{", headers={"content-type": "application/json"}), 400, "malformed JSON"),
    (dict(json={"path": "clip.mp4", "url": "http://x"}), 400, "exactly"),
    (dict(json=["clip.mp4"]), 400, "exactly"),
    (dict(content=b"x", params={"operating_point": "fpr=0.5"}), 400, "choose from eer"),
    (dict(content=b"x", params={"threshold": "2"}), 422, "threshold"),
    (dict(content=b"x", params={"threshold": "nan"}), 422, "threshold"),
    (dict(content=b"x", params={"operating_point": "eer", "threshold": "0.5"}), 400, "not both"),
    (dict(content=b"x" * (600 * 1024)), 413, "/v1/jobs"),  # over the synchronous limit: use a job
])
def test_malformed_requests_get_4xx_with_a_message(server, send, status, says):
    got = httpx.post(f"{server.url}/v1/score", timeout=60, **send)
    assert got.status_code == status, got.text
    assert says in got.text


def test_an_oversized_upload_is_refused_before_it_is_read(server):
    # declared too large (2 GB): refused from the header alone, with none of the body sent
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n")
        reply = b""
        while not reply.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "upload limit" in reply

    def chunks():  # streamed without a length: cut off once past the limit
        for _ in range(64):
            yield b"x" * (64 * 1024)

    got = httpx.post(f"{server.url}/v1/jobs", content=chunks(), timeout=60)
    assert got.status_code == 413 and "upload limit" in got.text
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'pycrl_errors_total{type="http_413"}' in metrics


def test_metrics_count_requests_stages_and_errors(server):
    httpx.post(f"{server.url}/v1/score", content=first_frame_png(), timeout=60)
    text = httpx.get(f"{server.url}/metrics").text
    for line in ('pycrl_requests_total{code="200",route="/v1/score"}', 'pycrl_stage_seconds_count{stage="infer"}',
                 'pycrl_stage_seconds_count{stage="queue"}', "pycrl_queue_depth", "pycrl_inputs_scoring",
                 'pycrl_results_total{status="ok"}', 'pycrl_errors_total{type="UnsupportedMediaError"}'):
        assert line in text, line


def test_api_keys(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# the service's keys\nk0123456789abcdef-one\nsecond-key-0123456789\n")
    with Server(tmp_path, "--frames", "2", "--api-keys-file", str(keys)) as s:
        png = first_frame_png()
        assert httpx.post(f"{s.url}/v1/score", content=png).status_code == 401
        wrong = httpx.post(f"{s.url}/v1/score", content=png, headers={"x-api-key": "0123456789abcdef-onE"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.post(f"{s.url}/v1/score", content=png, headers={"x-api-key": "k0123456789abcdef-one"},
                          timeout=60).status_code == 200
        assert httpx.post(f"{s.url}/v1/score", content=png, timeout=60,
                          headers={"authorization": "Bearer second-key-0123456789"}).status_code == 200
        assert httpx.get(f"{s.url}/v1/jobs/x").status_code == 401
        assert httpx.get(f"{s.url}/healthz").status_code == 200  # probes stay open
    short = tmp_path / "short"
    short.write_text("abc\n")
    out = subprocess.run([sys.executable, "-m", "pycrl.cli", "serve", "--api-keys-file", str(short)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "at least 16 characters" in out.stderr


def test_a_burst_gets_429s_and_every_accepted_request_a_result(tmp_path):
    with Server(tmp_path, "--frames", "8", "--threads", "1", "--queue", "2") as s:
        clip = REAL_CLIP.read_bytes()

        def one(i):
            return httpx.post(f"{s.url}/v1/score", params={"name": f"c{i}"}, content=clip, timeout=300)

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(one, range(12)))
        codes = [r.status_code for r in replies]
        assert set(codes) <= {200, 429} and codes.count(429) >= 1 and codes.count(200) >= 3, codes
        for r in replies:
            if r.status_code == 200:
                assert r.json()["status"] == "ok" and r.json()["source"].startswith("c")
            else:
                assert int(r.headers["retry-after"]) >= 1 and "retry later" in r.json()["detail"]
        metrics = httpx.get(f"{s.url}/metrics").text
        assert f'pycrl_requests_total{{code="429",route="/v1/score"}} {float(codes.count(429))}' in metrics
        assert "pycrl_queue_depth 0.0" in metrics


def test_shutdown_finishes_what_runs_and_fails_what_waits_visibly(tmp_path):
    s = Server(tmp_path, "--frames", "16", "--threads", "1", "--queue", "8", "--grace", "60")
    clip = FAKE_CLIP.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sync = pool.submit(httpx.post, f"{s.url}/v1/score", content=clip, timeout=300)
        time.sleep(0.3)  # the synchronous request is being scored
        jobs = [httpx.post(f"{s.url}/v1/jobs", content=clip).json()["id"] for _ in range(4)]
        assert s.stop() == 0
        reply = sync.result()
    assert reply.status_code == 200 and reply.json()["status"] == "ok"  # in flight: finished
    log = s.log.read_text()
    assert "queued inputs failed without being scored" in log
    for jid in jobs:  # each job's end is in the log: done, or failed with the reason
        assert f"job {jid} done" in log or f"job {jid} failed" in log, log
    assert any(f"job {jid} failed" in log for jid in jobs) and "shut down before this input was scored" in log


def test_a_model_that_cannot_load_stops_the_service(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(resolve("default"), broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    (broken / "model.safetensors").write_bytes(b"nor tensors")
    shutil.rmtree(broken / "openvino", ignore_errors=True)
    out = subprocess.run([sys.executable, "-m", "pycrl.cli", "serve", "--port", "0", "--model", str(broken)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stderr
    assert "the model cannot be loaded" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "pycrl.cli", "serve", "--model", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "cannot load the model" in missing.stderr


def test_slow_uploads_cannot_hold_the_service(tmp_path):
    """Uploads being received are bounded (queue + threads) and timed: stalled senders get 408,
    and while they hold every receiving slot a new upload gets 429 at once."""
    with Server(tmp_path, "--frames", "2", "--threads", "1", "--queue", "1", "--upload-timeout", "3") as s:
        parts = urlsplit(s.url)
        stalled = []
        for _ in range(2):  # 1 queue slot + 1 scoring thread: two uploads may be received at once
            sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
            sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
            stalled.append(sock)
        time.sleep(0.5)
        refused = httpx.post(f"{s.url}/v1/score", content=first_frame_png(), timeout=30)
        assert refused.status_code == 429 and "uploads in progress" in refused.text
        assert int(refused.headers["retry-after"]) >= 1
        for sock in stalled:  # cut off by the upload timeout
            reply = sock.recv(4096).decode()
            assert reply.startswith("HTTP/1.1 408"), reply
            sock.close()
        ok = httpx.post(f"{s.url}/v1/score", content=first_frame_png(), timeout=60)
        assert ok.status_code == 200, ok.text  # the slots came back
