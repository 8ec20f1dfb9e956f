"""The HTTP service under load, against the same pipeline in process, in one run.

    python benchmarks/service_load.py [--images 96] [--clients 1 4 16] [--burst 400]

Images: the frames of the bundled clips as PNG uploads (a face each). For each number of
concurrent clients, ``POST /v1/score`` (raw body, keep-alive connections) gives images/s and
p50/p95 latency; in process, the same images go through ``Detector().pipeline.run`` on as many
threads as the service has scoring threads, which is the rate the service could reach without
HTTP. Clients run on the same machine as the service (http.client, one keep-alive connection
each), so at 16 clients their own CPU time is part of the overhead measured.

Then a sustained burst (``--burst`` requests from 64 clients, retrying after each 429)
shows the memory the server holds: its peak RSS against its RSS when idle, for a burst of one
size and of twice that size (bounded by the queue, not by the burst).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import av
import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_harness import FAKE_CLIP, REAL_CLIP, Server  # noqa: E402

THREADS = 2


def frames_as_png(count: int) -> list[bytes]:
    out = []
    while len(out) < count:
        for clip in (REAL_CLIP, FAKE_CLIP):
            with av.open(str(clip)) as container:
                for frame in container.decode(video=0):
                    buf = io.BytesIO()
                    Image.fromarray(frame.to_ndarray(format="rgb24")).save(buf, format="PNG")
                    out.append(buf.getvalue())
    return out[:count]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def over_http(url: str, images: list[bytes], clients: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    parts = urlsplit(url)

    def one(body: bytes) -> None:
        # http.client, one keep-alive connection per client thread: the clients share the
        # server's 2 cores, so the lightest client measures the service, not the client
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        while True:
            t0 = time.perf_counter()
            conn.request("POST", "/v1/score", body=body, headers={"Content-Type": "application/octet-stream"})
            reply = conn.getresponse()
            text = reply.read()
            if reply.status != 429:
                break
            time.sleep(0.05)
        assert reply.status == 200 and json.loads(text)["status"] == "ok", text[:300]
        with lock:
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, images))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=20)
    return {"clients": clients, "images_per_s": len(images) / wall, "p50_ms": 1e3 * statistics.median(latencies),
            "p95_ms": 1e3 * q[18]}


def in_process(images: list[bytes]) -> float:
    import pycrl

    with pycrl.Detector(frames=1) as det:
        det.pipeline.run(images[0])  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(det.pipeline.run, images))
        wall = time.perf_counter() - t0
    assert all(r.status == "ok" for r in results)
    return len(images) / wall


def burst(server: Server, body: bytes, requests: int) -> dict:
    pid = server.proc.pid
    idle = rss_mb(pid)
    peak = idle
    stop = threading.Event()
    refused = 0

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.02)

    def one(_: int) -> None:
        nonlocal refused
        with httpx.Client(timeout=300) as client:
            while True:
                got = client.post(f"{server.url}/v1/score", content=body)
                if got.status_code != 429:
                    return
                refused += 1
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(requests)))
    stop.set()
    watcher.join()
    return {"requests": requests, "idle_rss_mb": idle, "peak_rss_mb": peak, "answered_429": refused}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--burst", type=int, default=400)
    args = p.parse_args(argv)
    images = frames_as_png(args.images)
    rate_in_process = in_process(images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with Server(Path(tmp), "--threads", str(THREADS), "--queue", "16", "--log-level", "warning") as server:
            over_http(server.url, images[:8], 2)  # warm-up
            for clients in args.clients:
                row = over_http(server.url, images, clients)
                row["vs_in_process"] = row["images_per_s"] / rate_in_process
                rows.append(row)
            bursts = [burst(server, images[0], args.burst), burst(server, images[0], 2 * args.burst)]
    print(f"in process ({THREADS} threads): {rate_in_process:.1f} images/s")
    print(f"{'clients':>8} {'images/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'vs in-process':>14}")
    for r in rows:
        print(f"{r['clients']:>8} {r['images_per_s']:>9.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} "
              f"{r['vs_in_process']:>14.2f}")
    for b in bursts:
        print(f"burst of {b['requests']} requests from 64 clients: RSS {b['idle_rss_mb']:.0f} MB idle, "
              f"{b['peak_rss_mb']:.0f} MB peak ({b['answered_429']} answers were 429)")
    print(json.dumps({"in_process_images_per_s": rate_in_process, "http": rows, "bursts": bursts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
