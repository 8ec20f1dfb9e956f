"""What a model folder says about itself: training data, recipe, validation, thresholds.

``record_validation`` stores a ``validate-faces`` report in ``model.json``: the decision
threshold becomes the report's EER point (measured through the inference engine, on
held-out people), the 1 % and 5 % false-positive-rate points are kept beside it, and the
corpus's sources (packages, versions, face and identity counts, licences) are recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pycrl.model_folder import JSON_NAME, read_json

DECISION_POINT = "eer"


def corpus_record(corpus: str | Path) -> dict:
    """The training-data entry of a model card, from a corpus's summary.json."""
    summary = json.loads((Path(corpus) / "summary.json").read_text())
    return {"corpus": "python -m train build-faces", "faces": summary["faces"],
            "identities": summary["identities"], "splits": summary["splits"], "sources": summary["sources"],
            "synthetic_fakes": "self-blends, identity swaps between different training people, upsampling "
                               "artefacts: made on the fly from the real faces (train/data/forgeries.py)"}


def record_validation(model: str | Path, report: dict, corpus: str | Path | None = None) -> dict:
    """Write the report, thresholds and (with ``corpus``) the training data into model.json."""
    folder = Path(model)
    doc = read_json(folder)
    points = report["operating_points"]
    doc["decision_threshold"] = float(points[DECISION_POINT]["threshold"])
    doc["decision_point"] = DECISION_POINT
    doc["operating_points"] = {k: float(v["threshold"]) for k, v in points.items()}
    doc["validation"] = {k: report[k] for k in ("split", "repeats", "backend", "frame", "video",
                                                 "operating_points_note") if k in report}
    if corpus is not None:
        doc["training_data"] = corpus_record(corpus)
    path = folder / JSON_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return doc
