"""The HTTP API. Routes:

    POST /v1/score        score one input now (an image, or a video up to ``sync_max_bytes``)
    POST /v1/jobs         queue one input; 202 with the job's id
    GET  /v1/jobs/{id}    the job's state, and its record once done
    GET  /healthz         the process answers
    GET  /readyz          the model is loaded and scoring threads run (503 until then)
    GET  /metrics         Prometheus metrics
    GET  /openapi.json    this API's schema

An input is the raw request body (any media type but JSON: ``curl --data-binary @clip.mp4``),
or ``{"path": "..."}`` as JSON naming a file below the ``allowed_root`` given at start-up.
The response is the JSON Lines record of ``pycrl score``: 200 when the input was scored (or
had no face), 422 when it could not be read (the record says why).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

import pycrl
from pycrl.detector import Detector
from pycrl.errors import OptionError
from pycrl.model_card import Decision, ModelCard
from pycrl.results import Result
from pycrl.serve.metrics import Metrics
from pycrl.serve.scheduler import Overloaded, Scheduler, ShuttingDown, Task
from pycrl.serve.settings import ServeSettings

log = logging.getLogger("pycrl.serve")

#: The largest JSON body (a path request) read.
MAX_JSON_BYTES = 64 * 1024
#: The longest display name kept from ``?name=``.
MAX_NAME = 512

_RAW = {"schema": {"type": "string", "format": "binary"}}
_INPUT_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": _RAW, "image/*": _RAW, "video/*": _RAW,
    "application/json": {"schema": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "description": "a file below the server's allowed root"}}}}}}}


class Service:
    """What the routes share: settings, the model (loaded in the background), the scheduler."""

    def __init__(self, settings: ServeSettings, on_load_error: Callable[[BaseException], None] | None = None):
        self.settings = settings
        self.metrics = Metrics()
        self.card = ModelCard.read(settings.model)  # a bad folder fails at start-up, not per request
        self.card.decision(settings.options.operating_point, settings.options.threshold)
        self.detector: Detector | None = None
        self.load_error: BaseException | None = None
        # Uploads being received. Bounded like the queue, so that the disk the spool files take
        # is bounded too: at most (receiving + waiting + scoring) x the upload limit. Only the
        # event loop's thread touches it.
        self.receiving = 0
        self.max_receiving = settings.queue_size + settings.workers
        self._on_load_error = on_load_error
        self.scheduler = Scheduler(self._score, workers=settings.workers, queue_size=settings.queue_size,
                                   job_ttl_s=settings.job_ttl_s, max_jobs=settings.max_jobs, observe=self._observe)
        self.metrics.queue_depth.set_function(lambda: self.scheduler.depth)
        self.metrics.scoring.set_function(lambda: self.scheduler.busy)
        self._loader = threading.Thread(target=self._load, name="pycrl-load", daemon=True)

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        self._loader.start()

    def _load(self) -> None:
        try:
            t0 = time.perf_counter()
            self.detector = Detector(self.settings.model, self.settings.options)
            self.scheduler.start()
            log.info("model %s loaded on %s in %.1f s; %d scoring threads, queue of %d", self.card.name,
                     self.detector.backend, time.perf_counter() - t0, self.settings.workers, self.settings.queue_size)
        except BaseException as err:
            self.load_error = err
            log.error("the model cannot be loaded: %s: %s", type(err).__name__, err)
            if self._on_load_error is not None:
                self._on_load_error(err)

    @property
    def ready(self) -> bool:
        return self.detector is not None and self.load_error is None

    def stop(self) -> None:
        self._loader.join()
        self.scheduler.shutdown(self.settings.shutdown_grace_s)
        if self.detector is not None:
            self.detector.close()

    # -- scoring ------------------------------------------------------------------------

    def _score(self, task: Task) -> Result:
        assert self.detector is not None
        result = self.detector.pipeline.run(str(task.path), task.decision)
        # the record names the input as the client did: a spool file's name means nothing to it,
        # and a resolved server path says more about the server than it needs to know
        result.source = task.name
        if result.message:
            result.message = result.message.replace(str(task.path), task.name)
        return result

    def _observe(self, task: Task, result: Result, waited: float) -> None:
        self.metrics.stages.labels("queue").observe(waited)
        for stage in ("decode", "detect", "infer"):
            if stage in result.timings:
                self.metrics.stages.labels(stage).observe(result.timings[stage])
        self.metrics.results.labels(result.status).inc()
        if result.error_type:
            self.metrics.errors.labels(result.error_type).inc()


def create_app(settings: ServeSettings, on_load_error: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The application. ``on_load_error`` is told when the model fails to load in the
    background (``pycrl serve`` stops the server then, with exit status 1)."""
    service = Service(settings, on_load_error)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        await run_in_threadpool(service.stop)

    app = FastAPI(title="pycrl", version=pycrl.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Deepfake detection of faces in images and videos. Each response is the "
                              "record `pycrl score --jsonl` writes.")
    app.state.service = service

    @app.middleware("http")
    async def count(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        service.metrics.requests.labels(name, str(response.status_code)).inc()
        service.metrics.latency.labels(name).observe(time.perf_counter() - t0)
        if response.status_code in (401, 413, 429, 503):
            service.metrics.errors.labels(f"http_{response.status_code}").inc()
        return response

    @app.get("/healthz", summary="the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="the model is loaded", responses={503: {"description": "loading, or failed"}})
    async def readyz() -> JSONResponse:
        if service.ready:
            assert service.detector is not None
            return JSONResponse({"ready": True, "model": service.card.name, "backend": service.detector.backend,
                                 "operating_points": dict(service.card.operating_points)})
        reason = f"{type(service.load_error).__name__}: {service.load_error}" if service.load_error else "loading"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/score", summary="score one input and wait for its record", openapi_extra=_INPUT_BODY,
              responses={413: {"description": "larger than the synchronous limit: use /v1/jobs"},
                         422: {"description": "the input could not be read (the record says why)"},
                         429: {"description": "every queue slot is taken (see Retry-After)"}})
    async def score(request: Request, params: InputParams = Depends()) -> JSONResponse:
        _authorise(service, request)
        task = await _task(service, request, params, limit=settings.sync_max_bytes,
                           too_large="larger than the synchronous limit of {limit} bytes: POST it to /v1/jobs")
        future = _admit(service, task)
        result = await asyncio.wrap_future(future)
        record = result.to_dict()
        return JSONResponse(record, status_code=422 if result.status == "error" else 200)

    @app.post("/v1/jobs", status_code=202, summary="queue one input; poll /v1/jobs/{id}",
              openapi_extra=_INPUT_BODY,
              responses={413: {"description": "larger than the upload limit"},
                         429: {"description": "every queue slot is taken (see Retry-After)"}})
    async def submit(request: Request, params: InputParams = Depends()) -> JSONResponse:
        _authorise(service, request)
        task = await _task(service, request, params, limit=settings.max_upload_bytes,
                           too_large="larger than the upload limit of {limit} bytes")
        job = _admit(service, task, job=True)
        return JSONResponse({**job.to_dict(), "url": f"/v1/jobs/{job.id}"}, status_code=202,
                            headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs/{job_id}", summary="a job's state, and its record once done",
             responses={404: {"description": "no such job, or its result has expired"}})
    async def job(job_id: str, request: Request) -> dict:
        _authorise(service, request)
        found = service.scheduler.job(job_id) if len(job_id) <= 64 else None
        if found is None:
            raise HTTPException(404, f"no job {job_id[:64]!r} (never created, or expired after "
                                     f"{settings.job_ttl_s:g} s)")
        return found.to_dict()

    return app


def _authorise(service: Service, request: Request) -> None:
    keys = service.settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    # compare with every key, always: the time taken says nothing about which key is near
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given.encode("utf-8", "replace"), key.encode("utf-8"))
    if not ok:
        raise HTTPException(401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})


def _retry(service: Service, message: str, status: int = 429) -> HTTPException:
    return HTTPException(status, message, headers={"Retry-After": str(service.settings.retry_after_s)})


class InputParams:
    """The query parameters of a scoring request."""

    def __init__(self, operating_point: str | None = Query(None, max_length=32, description="eer, fpr=0.01, ..."),
                 threshold: float | None = Query(None, ge=0.0, le=1.0, description="a threshold instead"),
                 name: str | None = Query(None, max_length=MAX_NAME, description="the record's source")):
        self.operating_point, self.threshold, self.name = operating_point, threshold, name


async def _task(service: Service, request: Request, params: InputParams, *, limit: int, too_large: str) -> Task:
    """Check what can be checked cheaply, then read the input (to a spool file, or a path)."""
    if not service.ready:
        if service.load_error is not None:
            raise HTTPException(503, "the model could not be loaded")
        raise _retry(service, "the model is still loading", 503)
    if service.scheduler.full():  # refuse before reading a byte of the body
        raise _retry(service, "every queue slot is taken; retry later")
    point, threshold, name = params.operating_point, params.threshold, params.name
    try:
        decision: Decision | None = service.card.decision(point, threshold) if point or threshold is not None \
            else None
    except OptionError as err:
        raise HTTPException(400, str(err)) from None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        doc = await _json_body(request)
        path = _allowed_path(service.settings.allowed_root, doc)
        if path.stat().st_size > limit:
            raise HTTPException(413, too_large.format(limit=limit))
        return Task(path, name or str(doc["path"]), decision, owned=False)
    if kind.startswith("multipart/"):
        raise HTTPException(415, "send the file as the raw request body (curl --data-binary @file), "
                                 "not as a multipart form")
    if service.receiving >= service.max_receiving:
        raise _retry(service, "too many uploads in progress; retry later")
    service.receiving += 1
    try:
        path = await asyncio.wait_for(_spool(request, limit, too_large, service.settings.upload_dir),
                                      service.settings.upload_timeout_s)
    except asyncio.TimeoutError:
        raise HTTPException(408, f"the upload took longer than {service.settings.upload_timeout_s:g} s") from None
    finally:
        service.receiving -= 1
    return Task(path, name or "upload", decision, owned=True)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise HTTPException(400, "Content-Length is not a number")
    return int(value)


async def _spool(request: Request, limit: int, too_large: str, folder: Path | None) -> Path:
    """The body, streamed to a private file; 413 as soon as it is known to exceed ``limit``."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise HTTPException(413, too_large.format(limit=limit))
    fd, name = tempfile.mkstemp(prefix="pycrl-upload-", dir=folder)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, too_large.format(limit=limit))
                f.write(chunk)
        if size == 0:
            raise HTTPException(400, "empty request body: send the image or video as the body")
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


async def _json_body(request: Request) -> dict[str, Any]:
    declared = _declared_length(request)
    if declared is not None and declared > MAX_JSON_BYTES:
        raise HTTPException(413, f"a JSON request is at most {MAX_JSON_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise HTTPException(413, f"a JSON request is at most {MAX_JSON_BYTES} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, 'malformed JSON: expected {"path": "..."}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("path"), str) or not doc["path"] or set(doc) != {"path"}:
        raise HTTPException(400, 'expected exactly {"path": "<a file below the allowed root>"}')
    return doc


def _allowed_path(root: Path | None, doc: dict[str, Any]) -> Path:
    """A server-local file below ``root``: no ``..``, nothing that resolves (through links)
    outside it, a regular file."""
    if root is None:
        raise HTTPException(403, "server-local paths are disabled (start the service with --allowed-root)")
    given = doc["path"]
    if "\x00" in given or ".." in Path(given).parts:
        raise HTTPException(403, "the path may not contain '..' or NUL")
    candidate = Path(given) if Path(given).is_absolute() else root / given
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise HTTPException(404, f"no such file below the allowed root: {given!r}") from None
    if not resolved.is_relative_to(root):
        raise HTTPException(403, "the path leads outside the allowed root")
    if not resolved.is_file():
        raise HTTPException(400, "the path is not a regular file")
    return resolved


def _admit(service: Service, task: Task, *, job: bool = False):
    try:
        return service.scheduler.submit_job(task) if job else service.scheduler.submit(task)
    except Overloaded:
        raise _retry(service, "every queue slot is taken; retry later") from None
    except ShuttingDown:
        raise _retry(service, "the service is shutting down", 503) from None
