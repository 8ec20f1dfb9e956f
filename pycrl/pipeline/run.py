"""`Pipeline`: the stages run in order, for one input or many."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pycrl.media import Frame
from pycrl.model_card import Decision
from pycrl.pipeline.aggregate import Aggregate
from pycrl.pipeline.decode import Decode
from pycrl.pipeline.faces import FaceStage
from pycrl.pipeline.item import Item
from pycrl.pipeline.score import ScoreStage
from pycrl.provenance import Credentials
from pycrl.results import FaceScore, Result


class Pipeline:
    """decode -> faces -> score -> aggregate.

    `prepare` (decode and faces) is the CPU-heavy half and is safe to run in several threads
    at once; `finish` (score and aggregate) runs the network. `run_many` overlaps the two:
    worker threads prepare the next inputs while the network scores the current one.
    """

    def __init__(self, decode: Decode, faces: FaceStage, score: ScoreStage, aggregate: Aggregate,
                 *, workers: int = 2, window: int | None = None,
                 credentials: Callable[[Any], Credentials | None] | None = None):
        self.decode, self.faces, self.score, self.aggregate = decode, faces, score, aggregate
        #: reads an input's content credentials beside its pixels (None: not read)
        self.credentials = credentials
        self.workers = workers
        #: inputs prepared ahead of the network (default twice the workers)
        self.window = window or 2 * workers

    def prepare(self, source: Any) -> Item:
        """Decode the sampled frames and align their faces; a failure is kept in ``item.error``.

        A face stage with ``batch`` (and ``batch_frames``) gets up to that many frames per call,
        so a detector network runs once over them; only that many decoded frames are held."""
        item = Item(str(source))
        if self.credentials is not None:
            t0 = time.perf_counter()
            try:
                item.credentials = self.credentials(source)
            except Exception as err:  # the manifest is evidence beside the score: never fatal
                item.credentials = Credentials("error", message=f"{type(err).__name__}: {err}")
            item.add_time("credentials", time.perf_counter() - t0)
        batch = getattr(self.faces, "batch", None)
        chunk = max(1, int(getattr(self.faces, "batch_frames", 1))) if batch is not None else 1
        try:
            frames = iter(self.decode(source))
            pending: list[Frame] = []
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                item.add_time("decode", time.perf_counter() - t0)
                if frame is not None:
                    item.frames_sampled += 1
                    item.frame_indices.append(frame.index)
                    pending.append(frame)
                if pending and (frame is None or len(pending) >= chunk):
                    t0 = time.perf_counter()
                    found = batch([f.image for f in pending]) if batch is not None else [self.faces(pending[0].image)]
                    for done, faces in zip(pending, found):
                        for face in faces:
                            x0, y0, x1, y1 = (float(v) for v in face.box)
                            item.faces.append(FaceScore(done.index, float(done.time), (x0, y0, x1, y1),
                                                        float("nan"), crop=face.crop, points=face.points))
                            item.crops.append(face.crop)
                    pending = []
                    item.add_time("detect", time.perf_counter() - t0)
                if frame is None:
                    break
        except Exception as err:  # one bad input never stops the others
            item.error = err
        return item

    def finish(self, item: Item, decision: Decision | None = None) -> Result:
        """Score a prepared item's faces and aggregate them into its result (decided at
        ``decision``, default the pipeline's)."""
        if item.error is not None:
            return self.aggregate.failure(item, item.error, decision)
        if not item.crops:
            return self.aggregate.no_face(item, decision)
        try:
            t0 = time.perf_counter()
            scores = self.score(item.crops)
            item.timings["infer"] = time.perf_counter() - t0
        except Exception as err:
            return self.aggregate.failure(item, err, decision)
        return self.aggregate(item, scores, decision)

    def run(self, source: Any, decision: Decision | None = None) -> Result:
        return self.finish(self.prepare(source), decision)

    def run_many(self, sources: Iterable, prefetch: int | None = None) -> Iterator[Result]:
        """Results in input order. Up to ``prefetch`` inputs (default ``self.window``) are
        prepared ahead; memory is bounded by that window (only aligned crops are kept, never
        all frames)."""
        window = prefetch or self.window
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pycrl-prep") as pool:
            pending: deque[Future] = deque()
            for src in sources:
                pending.append(pool.submit(self._timed_prepare, src))
                if len(pending) >= window:
                    yield self.finish(pending.popleft().result())
            while pending:
                yield self.finish(pending.popleft().result())

    def _timed_prepare(self, source: Any) -> Item:
        t0 = time.perf_counter()
        item = self.prepare(source)
        item.timings["prepare_wall"] = time.perf_counter() - t0
        return item
