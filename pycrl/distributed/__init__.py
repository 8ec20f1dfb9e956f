"""Scoring many inputs on a Ray cluster (one machine or many), resumably.

    from pycrl.distributed import score_with_ray
    summary = score_with_ray(["videos/"], "scores/", frames=32)   # a local Ray instance
    summary = score_with_ray(["@paths.txt"], "scores/", address="auto", output_format="parquet")
    print(summary.format())

Work travels as file paths, never as decoded frames: each Ray actor holds one
`pycrl.Detector` and decodes, detects and scores whole inputs itself. Results
land in the destination folder as JSON Lines or Parquet part files, one record
per input in the schema of `pycrl.Result.to_dict()`; a re-run with the same
destination skips what is already there.

Ray is an optional extra (``pip install 'pycrl[ray]'``) and is imported only
when a job starts; this package itself imports without it.
"""

from __future__ import annotations

from pycrl.distributed.ray_job import RayUnavailable, WorkerDied, score_with_ray
from pycrl.distributed.resume import read_records
from pycrl.distributed.sink import DestinationBusy
from pycrl.distributed.summary import JobSummary
from pycrl.media.inputs import collect_inputs

__all__ = ["DestinationBusy", "JobSummary", "RayUnavailable", "WorkerDied", "collect_inputs", "read_records",
           "score_with_ray"]
