"""``pycrl serve``: the scoring pipeline as an HTTP service (pip install 'pycrl[serve]')."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path

from pycrl.errors import ModelError, OptionError
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.options import add_arguments, from_arguments
from pycrl.serve.settings import KEYS_ENV, MIB, ServeSettings, read_api_keys

_DEFAULTS = ServeSettings()

EPILOG = """\
API (the schema: GET /openapi.json):
  POST /v1/score       the input as the raw body -> its record (as pycrl score --jsonl writes it);
                       videos up to --sync-max-mb; ?operating_point=fpr=0.01 or ?threshold=0.7
  POST /v1/jobs        the same, queued: 202 {"id": ...}; GET /v1/jobs/ID for its state and record
  {"path": "..."}      as a JSON body instead of the file: a file below --allowed-root
  GET /healthz, /readyz (the model is loaded), /metrics (Prometheus)

examples:
  pycrl serve --port 8000
  curl --data-binary @photo.jpg 'localhost:8000/v1/score?name=photo.jpg'
  curl --data-binary @long.mp4 localhost:8000/v1/jobs        # then GET /v1/jobs/ID
  PYCRL_API_KEYS=... pycrl serve --host 0.0.0.0 --faces all --allowed-root /srv/uploads

Overload is answered, not queued without bound: past --queue waiting inputs, 429 with
Retry-After; an upload over its limit gets 413 before it is read. SIGTERM or Ctrl-C stops
admitting, fails the inputs still queued (their jobs say so) and lets those being scored finish
(--grace seconds). Exit status: 0 after a clean stop, 2 for usage errors, 1 when the model
cannot be loaded or the address cannot be bound.
"""


def register(sub) -> None:
    serve = sub.add_parser("serve", help="run the HTTP scoring service", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Score images and videos sent over HTTP with one loaded model "
                                       "(FastAPI + uvicorn: pip install 'pycrl[serve]').")
    serve.add_argument("--model", default=DEFAULT_MODEL, help="model folder or 'default'")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on [default: 127.0.0.1]")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free one, printed) [default: 8000]")
    group = serve.add_argument_group("service")
    group.add_argument("--threads", type=int, default=_DEFAULTS.workers, metavar="N", dest="service_workers",
                       help=f"scoring threads sharing the model [default: {_DEFAULTS.workers}]")
    group.add_argument("--queue", type=int, default=_DEFAULTS.queue_size, metavar="N",
                       help=f"inputs waiting beyond those being scored; then 429 [default: {_DEFAULTS.queue_size}]")
    group.add_argument("--max-upload-mb", type=float, default=_DEFAULTS.max_upload_bytes / MIB, metavar="MB",
                       help=f"largest upload (413 above) [default: {_DEFAULTS.max_upload_bytes // MIB}]")
    group.add_argument("--sync-max-mb", type=float, default=_DEFAULTS.sync_max_bytes / MIB, metavar="MB",
                       help=f"largest upload /v1/score answers synchronously [default: "
                            f"{_DEFAULTS.sync_max_bytes // MIB}]")
    group.add_argument("--job-ttl", type=float, default=_DEFAULTS.job_ttl_s, metavar="S",
                       help=f"seconds a finished job's record is kept [default: {_DEFAULTS.job_ttl_s:g}]")
    group.add_argument("--allowed-root", type=Path, default=None, metavar="DIR",
                       help='accept {"path": ...} requests for files below DIR (default: refused)')
    group.add_argument("--api-keys-file", type=Path, default=None, metavar="FILE",
                       help=f"require one of these keys (one per line) in X-API-Key or Authorization: Bearer; "
                            f"default: ${KEYS_ENV} (comma-separated), else no authentication")
    group.add_argument("--upload-timeout", type=float, default=_DEFAULTS.upload_timeout_s, metavar="S",
                       help=f"seconds an upload may take to arrive (408 after) [default: "
                            f"{_DEFAULTS.upload_timeout_s:g}]")
    group.add_argument("--grace", type=float, default=_DEFAULTS.shutdown_grace_s, metavar="S",
                       help=f"seconds shutdown waits for inputs being scored [default: {_DEFAULTS.shutdown_grace_s:g}]")
    group.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_arguments(serve.add_argument_group("scoring options (fixed for the service's lifetime)"))
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pycrl.serve.app import create_app
    except ImportError as err:
        print(f"pycrl serve: the [serve] extra is not installed ({err.name}): pip install 'pycrl[serve]'",
              file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    try:
        settings = ServeSettings(
            model=args.model, options=from_arguments(args), workers=args.service_workers, queue_size=args.queue,
            max_upload_bytes=int(args.max_upload_mb * MIB), sync_max_bytes=int(args.sync_max_mb * MIB),
            job_ttl_s=args.job_ttl, allowed_root=args.allowed_root, api_keys=read_api_keys(args.api_keys_file),
            shutdown_grace_s=args.grace, upload_timeout_s=args.upload_timeout)
    except (OptionError, OSError) as err:
        print(f"pycrl serve: {err}", file=sys.stderr)
        return 2
    failed: list[BaseException] = []
    server: uvicorn.Server | None = None

    def stop_on_load_error(err: BaseException) -> None:
        failed.append(err)
        if server is not None:
            server.should_exit = True

    try:
        app = create_app(settings, on_load_error=stop_on_load_error)
    except OptionError as err:
        print(f"pycrl serve: {err}", file=sys.stderr)
        return 2
    except ModelError as err:
        print(f"pycrl serve: cannot load the model: {err}", file=sys.stderr)
        return 1
    try:  # bound here, so that --port 0 can say which port it got
        sock = socket.create_server((args.host, args.port), family=socket.AF_INET6 if ":" in args.host
                                    else socket.AF_INET, reuse_port=False)
    except OSError as err:
        print(f"pycrl serve: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=int(args.grace) + 1,
                            access_log=args.log_level == "debug")
    server = uvicorn.Server(config)
    print(f"pycrl serve: listening on http://{host if ':' not in host else f'[{host}]'}:{port}", file=sys.stderr,
          flush=True)
    # uvicorn handles SIGTERM/SIGINT while it serves, then raises them again once it has
    # stopped; these handlers take that second delivery, so a clean stop exits with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    if failed:
        return 1
    return 0
