"""`score_with_ray`: a resumable Ray Data job that scores media files on a pool of actors.

The pipeline carries paths only:

    paths --from_items--> map_batches(ScoringActor, compute=ActorPoolStrategy) --iter_batches--> part files
                          (each actor: one Detector; decode, detect, infer)        (on the driver, atomic)

Nothing lost, nothing twice:

- a bad input is an error record, produced inside the actor (`Detector.score_videos`);
- an actor that dies (segfault in a decoder, OOM kill, lost node) is restarted
  (``max_restarts``) and its batch retried (``max_task_retries``). A batch that
  still fails is dropped by Ray Data (``max_errored_blocks=-1``) rather than
  failing the job; the driver notices the missing inputs and scores them again
  one per batch, so only an input that kills its actor on its own is left,
  and it gets a `WorkerDied` error record;
- the driver writes each input's record once (it drops a record it has
  already written), in parts that appear atomically; a re-run skips every
  input whose record is in the destination already.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pycrl.distributed import records, resume, sink
from pycrl.distributed.actor import ScoringActor
from pycrl.distributed.summary import JobSummary, Progress
from pycrl.media.inputs import collect_inputs
from pycrl.model_folder import DEFAULT_MODEL, resolve
from pycrl.options import ScoringOptions
from pycrl.results import Result

log = logging.getLogger("pycrl.distributed")

SUMMARY_NAME = "summary.json"


class RayUnavailable(ImportError):
    """Ray Data is not installed."""


class WorkerDied(RuntimeError):
    """The process scoring an input died on every attempt, even with that input alone in its batch."""


def score_with_ray(
    inputs: Iterable[str | os.PathLike] | str | os.PathLike,
    dest: str | os.PathLike,
    model: str | os.PathLike = DEFAULT_MODEL,
    *,
    address: str | None = None,
    output_format: str = "jsonl",
    num_actors: int | None = None,
    cpus_per_actor: float | None = None,
    inputs_per_batch: int = 4,
    max_restarts: int = 3,
    max_task_retries: int = 2,
    flush_records: int = 64,
    flush_seconds: float = 10.0,
    progress: bool = True,
    detector_cls: Callable[..., Any] | None = None,
    ray_init_kwargs: dict | None = None,
    **detector_kwargs,
) -> JobSummary:
    """Score every input on a Ray cluster; one record per input in ``dest``.

    inputs: files, folders (searched recursively for media), globs, ``@FILE``
        (a text file of such entries, one per line). On a multi-node cluster
        the paths must be readable from every node (a shared filesystem).
    dest: destination folder of ``part-*.jsonl`` or ``part-*.parquet`` files
        and ``summary.json``; inputs already recorded there are skipped.
    address: None starts a local Ray instance on this machine (stopped at the
        end); "auto" joins the cluster started here with ``ray start``;
        "ray://HOST:10001" connects through Ray Client. An already initialised
        Ray session is used as it is.
    num_actors: actors in the pool. Default: one per GPU (each with
        ``num_gpus=1``) when the cluster has GPUs and ``device`` is not "cpu",
        else one per ``cpus_per_actor`` CPUs (default 1).
    inputs_per_batch: inputs per actor call (Ray Data's ``batch_size``; the
        detector's own ``batch_size`` is the network batch): an actor that
        dies costs this many inputs a retry.
    max_restarts, max_task_retries: per actor and per batch; both bounded, so
        that an input that always kills its actor cannot loop forever. A batch
        that fails ``max_task_retries + 1`` times is scored again one input per
        batch, with as many attempts each.
    flush_records, flush_seconds: when the driver writes a part file; a killed
        job loses at most this much finished work.
    detector_cls: builds each actor's detector as
        ``detector_cls(model, **detector_kwargs)`` (default `pycrl.Detector`).
    detector_kwargs: scoring options (`pycrl.options.ScoringOptions` fields: frames, backend,
        device, ...), checked here before any actor starts.

    Returns a `JobSummary` (also written to ``dest/summary.json``).
    """
    records.check_format(output_format)
    ScoringOptions.from_kwargs(**detector_kwargs)  # an invalid option fails here, not in every actor
    if inputs_per_batch < 1 or num_actors is not None and num_actors < 1:
        raise ValueError("inputs_per_batch and num_actors must be >= 1")
    if max_restarts < 0 or max_task_retries < 0:
        raise ValueError("max_restarts and max_task_retries must be >= 0 (bounded: an input that always "
                         "kills its actor must not be retried forever)")
    if cpus_per_actor is not None and cpus_per_actor <= 0:
        raise ValueError("cpus_per_actor must be > 0")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths, unmatched = collect_inputs(inputs)
    for item in unmatched:
        log.warning("nothing matches %r", item)
    if not paths:
        raise ValueError("no inputs: " + (", ".join(map(repr, unmatched)) or "none given"))
    if detector_cls is None and not str(address or "").startswith("ray://"):
        # Fail here, not in every actor; a Ray Client's files may differ from the cluster's, so no check there.
        resolve(os.fspath(model))  # ModelFolderError (a ValueError) naming the model
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"dest {dest} exists and is not a folder")
    dest.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    summary = JobSummary(dest=str(dest), output_format=output_format, inputs=len(paths))
    with sink.DestinationLock(dest):
        resume.remove_stale_temporaries(dest)
        done = resume.done_sources(dest)
        pending = [p for p in paths if p not in done]
        summary.skipped = len(paths) - len(pending)
        if pending:
            ray = _import_ray()
            owned = _connect(ray, address, ray_init_kwargs)
            try:
                job = _Job(ray, summary, model=model, detector_kwargs=detector_kwargs, detector_cls=detector_cls,
                           num_actors=num_actors, cpus_per_actor=cpus_per_actor, max_restarts=max_restarts,
                           max_task_retries=max_task_retries)
                writer = sink.PartWriter(dest, output_format, flush_records, flush_seconds)
                job.run(pending, inputs_per_batch, writer, Progress(len(pending), enabled=progress))
            finally:
                if owned:
                    ray.shutdown()
        summary.seconds = time.monotonic() - start
        sink.write_json_atomically(dest / SUMMARY_NAME, summary.to_dict())
    return summary


class _Job:
    """One run's passes over its pending inputs; writes through the driver-side writer."""

    def __init__(self, ray, summary: JobSummary, *, model, detector_kwargs: dict, detector_cls, num_actors,
                 cpus_per_actor, max_restarts: int, max_task_retries: int) -> None:
        self.ray, self.summary = ray, summary
        self.constructor = {"model": model, "detector_kwargs": detector_kwargs, "detector_cls": detector_cls}
        self.attempts = max_task_retries + 1
        self.retry_options = {"max_restarts": max_restarts, "max_task_retries": max_task_retries}
        self.actors, self.resources = _size_pool(ray, num_actors, cpus_per_actor, detector_kwargs.get("device"))
        summary.actors = self.actors
        self.written: set[str] = set()
        self.model_fields: dict = {}  # model/backend/threshold/operating point, copied into records made on the driver

    def run(self, pending: list[str], inputs_per_batch: int, writer: sink.PartWriter, bar: Progress) -> None:
        log.info("scoring %d inputs (%d skipped: already in %s) on %d actors (%s each)", len(pending),
                 self.summary.skipped, self.summary.dest, self.actors, self.resources)
        try:
            lost = self._stream(pending, inputs_per_batch, writer, bar)
            if lost:
                log.warning("%d inputs were lost with batches whose actor kept dying; scoring them again "
                            "one per batch", len(lost))
                self.summary.isolated = len(lost)
                lost = self._stream(lost, 1, writer, bar)
            for path in lost:
                err = WorkerDied(f"the scoring process died {self.attempts} times on this input, "
                                 "also with it alone in its batch (crash, out of memory or lost node)")
                self._emit(Result.failure(err, source=path, **self.model_fields).to_dict(), writer, bar)
        finally:
            writer.close()
            bar.close()

    def _stream(self, paths: list[str], inputs_per_batch: int, writer: sink.PartWriter, bar: Progress) -> list[str]:
        """One pass of the Ray Data pipeline over ``paths``; returns those that got no record."""
        ray = self.ray
        wanted = set(paths)
        # One block per batch, so that a task (the unit Ray retries or drops) is one batch.
        blocks = math.ceil(len(paths) / inputs_per_batch)
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        with warnings.catch_warnings():
            # Ray 2.5x/2.6x take max_restarts/max_task_retries for actor pools only as
            # ray_remote_args (deprecated, without a named replacement yet); their
            # defaults are -1, i.e. a poisoned input would be retried forever.
            warnings.filterwarnings("ignore", message=".*ray_remote_args")
            ds = ds.map_batches(
                ScoringActor,
                fn_constructor_kwargs=self.constructor,
                batch_size=inputs_per_batch,
                batch_format="numpy",
                # One task in flight per actor: a dying actor takes only its own batch down.
                compute=ray.data.ActorPoolStrategy(size=self.actors, max_tasks_in_flight_per_actor=1),
                **self.resources,
                **self.retry_options,
            )
        ds.context.max_errored_blocks = -1  # a batch that exhausts its retries is dropped, then re-scored here
        ds.context.enable_progress_bars = False  # the driver keeps its own count
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for source, text in zip(batch["source"], batch["record"]):
                if source not in wanted or source in self.written:  # a retried batch's twin, say
                    log.warning("dropped a record for %s: not asked for, or not the first", source)
                    continue
                record = json.loads(text)
                self.model_fields = {k: record.get(k) for k in ("model", "backend", "threshold", "operating_point")}
                self._emit(record, writer, bar, text)
        return [p for p in paths if p not in self.written]

    def _emit(self, record: dict, writer: sink.PartWriter, bar: Progress, text: str | None = None) -> None:
        self.written.add(record["source"])
        writer.add(text if text is not None else json.dumps(record))
        self.summary.add(record)
        bar.update(1)


def _size_pool(ray, num_actors: int | None, cpus_per_actor: float | None, device: str | None) -> tuple[int, dict]:
    """Actor count and per-actor resources from the cluster's CPUs and GPUs."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 1.0)), int(res.get("GPU", 0))
    if gpus and device != "cpu":
        n = num_actors or gpus
        # Decoding and face detection stay on the CPU: the GPU actors share the cores.
        return n, {"num_gpus": 1, "num_cpus": cpus_per_actor or _share(cpus, n)}
    if num_actors is None:
        cpus_per_actor = cpus_per_actor or 1.0
        return max(1, int(cpus // cpus_per_actor)), {"num_cpus": cpus_per_actor}
    return num_actors, {"num_cpus": cpus_per_actor or _share(cpus, num_actors)}


def _share(cpus: float, n: int) -> float:
    """Whole cores per actor when they go round, else a fraction: a pool whose
    actors cannot all be placed would wait for resources that never come."""
    return max(1.0, float(cpus // n)) if cpus >= n else cpus / n


def _import_ray():
    try:
        import ray
        import ray.data  # the [data] extra, not just ray core
    except ImportError as err:
        raise RayUnavailable(f"scoring with Ray needs Ray Data: pip install 'pycrl[ray]' ({err})") from err
    return ray


def _connect(ray, address: str | None, init_kwargs: dict | None) -> bool:
    """Join or start Ray; True when this call started the session (and must stop it)."""
    if ray.is_initialized():  # the caller's session (a notebook, a test) is used as it is
        if address:
            log.warning("Ray is initialised already: using that session, not %s", address)
        return False
    kwargs = {"logging_level": logging.WARNING, **(init_kwargs or {})}
    if address:
        kwargs["address"] = address
    else:
        kwargs.setdefault("include_dashboard", False)  # a one-machine job needs no web server
    ray.init(**kwargs)
    return True
