"""What a model folder says about itself: training data, recipe, validation, thresholds.

``record_validation`` stores a ``validate-faces`` report in ``model.json``: the decision
threshold becomes the report's EER point (measured through the inference engine, on
held-out people), the 1 % and 5 % false-positive-rate points are kept beside it, and the
corpus's sources (packages, versions, face and identity counts, licences) are recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from pycrl.fileio import atomic_write_json
from pycrl.model_folder import JSON_NAME, read_json

DECISION_POINT = "eer"


def corpus_record(corpus: str | Path) -> dict:
    """The training-data entry of a model card, from a corpus's summary.json."""
    summary = json.loads((Path(corpus) / "summary.json").read_text())
    return {"corpus": "pycrl train build-faces", "faces": summary["faces"],
            "identities": summary["identities"], "splits": summary["splits"], "sources": summary["sources"],
            "synthetic_fakes": "self-blends, identity swaps between different training people, upsampling "
                               "artefacts: made on the fly from the real faces (pycrl/train/data/forgeries.py)"}


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
    atomic_write_json(folder / JSON_NAME, doc)
    return doc


def markdown_tables(doc: dict) -> str:
    """The model card's training-data and validation tables (the README shows them)."""
    data, val = doc["training_data"], doc["validation"]
    lines = ["| source (package, version) | photos | faces | licence |", "|---|---|---|---|"]
    for name, s in sorted(data["sources"].items()):
        lines.append(f"| {name} (`{s['package']}` {s['version']}, {s['client']}) | {s['photos']} | {s['faces']} | "
                     f"{'; '.join(s['licences'])} |")
    sp = data["splits"]
    lines += ["", f"{data['faces']} faces of {data['identities']} people: training {sp['train']['faces']} faces / "
              f"{sp['train']['identities']} people, validation {sp['val']['faces']} faces / "
              f"{sp['val']['identities']} people (no person in both).", ""]
    names = {"sbi": "(a) real vs self-blends", "swap": "(b) real vs identity swaps",
             "upsample": "(c) real vs upsampling artefacts", "all": "all three families pooled"}
    lines += ["| held-out people, measured through the engine | AUC | 95 % interval (bootstrap over people) | "
              "samples (real / fake, people) |", "|---|---|---|---|"]
    for key in ("sbi", "swap", "upsample", "all"):
        r = val["frame"][key]
        lines.append(f"| frame AUC, {names[key]} | {r['auc']:.3f} | {r['ci95'][0]:.3f}–{r['ci95'][1]:.3f} | "
                     f"{r['real']} / {r['fake']}, {r['people']} |")
    v = val["video"]
    lines.append(f"| video AUC, H.264 pan clips vs face-swapped twins ({v['frames']} frames each) | {v['auc']:.3f} | "
                 f"{v['ci95'][0]:.3f}–{v['ci95'][1]:.3f} | {v['real']} / {v['fake']} clips, {v['people']} |")
    pts = doc["operating_points"]
    lines += ["", "Thresholds stored in `model.json`: " + ", ".join(f"`{k}` {v:.3f}" for k, v in pts.items())
              + f" (decision: `{doc['decision_point']}`)."]
    return "\n".join(lines)
