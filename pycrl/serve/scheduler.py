"""A bounded queue, a fixed pool of scoring threads sharing one model, and the jobs they run.

Admission is the only place memory could grow with load, so it is bounded: a request is
admitted only while fewer than ``queue_size`` wait; otherwise `Overloaded` (the service's 429).
Uploads wait as files on disk, never as bytes in memory.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pycrl.errors import PycrlError
from pycrl.model_card import Decision
from pycrl.results import Result

log = logging.getLogger("pycrl.serve")


class Overloaded(PycrlError):
    """Every queue slot is taken: try again later."""


class ShuttingDown(PycrlError):
    """The service is stopping and admits nothing new."""


@dataclass
class Task:
    """One input to score: a file (an upload spooled to disk, or a server-local path)."""

    path: Path
    name: str  #: what the record's ``source`` says (the upload's name, or the path as given)
    decision: Decision | None
    owned: bool  #: an upload spooled by the service: deleted once scored
    job: "Job | None" = None  #: the job this task runs for (asynchronous requests)
    future: Future = field(default_factory=Future)
    admitted: float = field(default_factory=time.monotonic)

    def discard(self) -> None:
        if self.owned:
            try:
                os.unlink(self.path)
            except OSError:
                pass


@dataclass
class Job:
    id: str
    name: str
    state: str = "queued"  #: queued -> running -> done | failed
    created: float = field(default_factory=time.time)
    finished: float | None = None
    result: dict | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state, "source": self.name, "created": self.created}
        if self.finished is not None:
            out["finished"] = self.finished
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


class Scheduler:
    """Scoring threads fed from a bounded queue.

    ``run(task)`` is what a thread does with a task (the pipeline, in the service), and
    ``observe(task, result, waited)`` is told of every result (the metrics)."""

    def __init__(self, run: Callable[[Task], Result], *, workers: int, queue_size: int,
                 job_ttl_s: float, max_jobs: int, observe: Callable[[Task, Result, float], None] | None = None):
        self._run, self._observe = run, observe
        self._queue: queue.Queue[Task | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._job_ttl, self._max_jobs = job_ttl_s, max_jobs
        self._accepting = True
        self._running = 0
        self._threads = [threading.Thread(target=self._work, name=f"pycrl-score-{i}", daemon=True)
                         for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    # -- admission ------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Tasks waiting (not yet picked up by a scoring thread)."""
        return self._queue.qsize()

    @property
    def busy(self) -> int:
        return self._running

    def full(self) -> bool:
        return self._queue.full()

    def submit(self, task: Task) -> Future:
        """Admit ``task`` or raise `Overloaded` / `ShuttingDown` (its file is then discarded)."""
        if not self._accepting:
            task.discard()
            raise ShuttingDown("the service is shutting down")
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            task.discard()
            raise Overloaded("every queue slot is taken") from None
        return task.future

    def submit_job(self, task: Task) -> Job:
        job = task.job = Job(secrets.token_urlsafe(16), task.name)
        with self._lock:
            self._expire()
            self._jobs[job.id] = job
        try:
            future = self.submit(task)
        except PycrlError:
            with self._lock:
                self._jobs.pop(job.id, None)
            raise
        future.add_done_callback(lambda f: self._job_done(job, f))
        return job

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire()
            return self._jobs.get(job_id)

    def _job_done(self, job: Job, future: Future) -> None:
        with self._lock:
            job.finished = time.time()
            err = future.exception()
            if err is None:
                job.state, job.result = "done", future.result().to_dict()
            else:
                job.state, job.error = "failed", f"{type(err).__name__}: {err}"
        log.log(logging.INFO if job.state == "done" else logging.WARNING, "job %s %s (%s)", job.id, job.state,
                job.error or job.name)

    def _expire(self) -> None:
        """Forget finished jobs older than the TTL, and the oldest finished ones past ``max_jobs``."""
        now = time.time()
        for jid in [j.id for j in self._jobs.values() if j.finished is not None and now - j.finished > self._job_ttl]:
            del self._jobs[jid]
        finished = [j.id for j in self._jobs.values() if j.finished is not None]
        for jid in finished[: max(0, len(self._jobs) - self._max_jobs + 1)]:
            del self._jobs[jid]

    # -- scoring threads --------------------------------------------------------

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            if not task.future.set_running_or_notify_cancel():
                task.discard()
                continue
            if task.job is not None:
                task.job.state = "running"
            with self._lock:
                self._running += 1
            waited = time.monotonic() - task.admitted
            try:
                result = self._run(task)
            except BaseException as err:  # the pipeline turns input errors into records; this is a bug
                log.exception("scoring %s failed", task.name)
                task.future.set_exception(err)
            else:
                if self._observe is not None:
                    self._observe(task, result, waited)
                task.future.set_result(result)
            finally:
                task.discard()
                with self._lock:
                    self._running -= 1

    # -- shutdown -----------------------------------------------------------------

    def shutdown(self, grace_s: float) -> None:
        """Admit nothing more, fail what still waits (visibly: its job says so), let the
        inputs being scored finish within ``grace_s``."""
        self._accepting = False
        failed = 0
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task.future.set_exception(ShuttingDown("the service shut down before this input was scored"))
                task.discard()
                failed += 1
        if failed:
            log.warning("shutdown: %d queued inputs failed without being scored", failed)
        deadline = time.monotonic() + grace_s
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=max(0.1, deadline - time.monotonic()))
            except queue.Full:  # refilled by a request admitted while stopping: it is failed below
                break
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        if alive:
            log.warning("shutdown: %d inputs still being scored after %.0f s are abandoned", alive, grace_s)
