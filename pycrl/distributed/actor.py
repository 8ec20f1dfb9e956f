"""The Ray Data actor: one Detector per process, a batch of paths in, one JSON record per path out.

Kept free of ray imports: Ray only needs the class, and its logic can run
(and be read) without a cluster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pycrl.detector import Detector
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.results import Result

log = logging.getLogger(__name__)


class ScoringActor:
    """Callable class for ``Dataset.map_batches``: builds its detector once, in the actor.

    ``detector_cls(model, **detector_kwargs)`` makes the detector (`pycrl.Detector`
    unless a subclass or factory is given). Each call decodes, detects and scores
    the batch's inputs with ``score_videos`` (decode of the next input overlaps
    inference of the current one) and returns columns ``source``, ``status`` and
    ``record`` (``Result.to_dict()`` as JSON text, so that its nested, optional
    fields cross Ray's Arrow blocks unchanged), in input order.
    """

    def __init__(self, model: Any = DEFAULT_MODEL, detector_kwargs: dict | None = None,
                 detector_cls: Callable[..., Any] | None = None) -> None:
        self.detector = (detector_cls or Detector)(model, **(detector_kwargs or {}))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        results = score_paths(self.detector, paths)
        dicts = [r.to_dict() for r in results]
        return {
            "source": np.array(paths, dtype=object),
            "status": np.array([d["status"] for d in dicts], dtype=object),
            "record": np.array([json.dumps(d) for d in dicts], dtype=object),
        }


def score_paths(detector, paths: list[str]) -> list:
    """One Result per path, in order, whatever happens in between.

    ``score_videos`` already turns bad media into error results; should it
    raise anyway (a bug, a backend failure), the batch is scored again input by
    input so that only the inputs that really fail get error records.
    """
    try:
        results = list(detector.score_videos(paths))
        if [r.source for r in results] == paths:
            return results
    except Exception:  # per-input scoring below records the error where it belongs
        log.exception("scoring a batch of %d failed; scoring its inputs one by one", len(paths))
    out = []
    for path in paths:
        try:
            out.append(detector.score_video(path))
        except Exception as err:  # noqa: BLE001 - the error becomes this input's record
            out.append(Result.failure(err, source=path, model=getattr(detector, "model_id", None),
                                      backend=getattr(detector, "backend", None)))
    return out
