"""``pycrl train bundle-model``: a trained model folder made into a shippable one.

Copies the weights and model.json, names the model, validates it on the corpus's held-out
people through the inference engine (``validate-faces``), writes that report, the operating
points and the training data into model.json, and exports the ONNX graph that inference-only
installs (no torch) run. This is how ``pycrl/assets/default`` is made.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

EPILOG = """\
example (the bundled default model):
  pycrl train bundle-model --model runs/crl_faces/model --faces data/faces \\
      --name crl-faces --out pycrl/assets/default
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bundle-model", help="validate, record and export a trained model folder for shipping",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="trained model folder (pycrl train fit)")
    p.add_argument("--faces", required=True, type=Path, help="the build-faces corpus it was trained on")
    p.add_argument("--out", required=True, type=Path, help="destination model folder (replaced)")
    p.add_argument("--name", required=True, help="model name recorded in model.json and in every result")
    p.add_argument("--clips", type=Path, help="keep the validation clips here")
    p.add_argument("--split", default="val", choices=("val", "train"), help="corpus split validated (default val)")
    p.add_argument("--repeats", type=int, default=6, help="draws of each face per fake family (default 6)")
    p.add_argument("--frames", type=int, default=16, help="frames sampled per validation clip (default 16)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile

    from pycrl.export import export_onnx
    from pycrl.model_folder import JSON_NAME
    from pycrl.train.face_validation import validate, write_report
    from pycrl.train.model_card import record_validation

    if args.out.resolve() == args.model.resolve():
        print("error: --out must differ from --model")
        return 2
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for name in (JSON_NAME, "model.safetensors"):
        shutil.copy2(args.model / name, args.out / name)
        (args.out / name).chmod(0o644)
    doc = json.loads((args.out / JSON_NAME).read_text())
    doc["name"] = args.name
    (args.out / JSON_NAME).write_text(json.dumps(doc, indent=2) + "\n")
    export_onnx(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        report = validate(args.out, args.faces, args.split, args.repeats, clips_dir=args.clips or Path(tmp) / "clips",
                          frames=args.frames)
    record_validation(args.out, report, args.faces)
    write_report(report, args.model.parent / "validation.json")
    shutil.rmtree(args.out / "openvino", ignore_errors=True)  # a per-machine cache, rebuilt on load
    print(json.dumps({"frame": {k: v["auc"] for k, v in report["frame"].items()},
                      "video": report["video"]["auc"], "decision_threshold": report["operating_points"]["eer"]}))
    return 0
