"""``pycrl train validate-faces``: the model card's validation on held-out real identities."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
what it measures (all on the corpus's held-out identities, through pycrl.Detector):
  frame AUC   real crops against (a) self-blends, (b) identity swaps between two held-out
              people, (c) generator-like upsampling artefacts, each real face drawn --repeats times
  video AUC   H.264 pan clips made from the held-out photos against their face-swapped twins
              (--clips DIR keeps the clips; without it they go to a temporary folder)
  thresholds  EER and 1 % / 5 % false-positive-rate points over all frame families
each AUC with a 95 % bootstrap interval that resamples people, not samples.

examples:
  pycrl train validate-faces --model runs/crl_faces/model --faces data/faces
  pycrl train validate-faces --model runs/crl_faces/model --faces data/faces \\
      --out runs/crl_faces/validation.json --write-model-card
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate-faces", help="held-out-identity validation: per-family frame AUC, video AUC, thresholds",
        description="Validate a model folder on the held-out identities of a build-faces corpus: frame AUC per "
                    "fake family and video AUC on H.264 clips, each with a bootstrap 95 %% interval.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="FOLDER", help="model folder")
    p.add_argument("--faces", required=True, type=Path, metavar="DIR", help="corpus from build-faces")
    p.add_argument("--split", default="val", choices=("val", "train"), help="corpus split (default val)")
    p.add_argument("--repeats", type=int, default=6, help="draws of each real face per family (default 6)")
    p.add_argument("--frames", type=int, default=16, help="frames sampled per clip (default 16)")
    p.add_argument("--clips", type=Path, metavar="DIR", help="keep the validation clips here")
    p.add_argument("--no-video", action="store_true", help="frame families only")
    p.add_argument("--backend", default="auto", help="inference backend (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, metavar="FILE", help="write the report as JSON")
    p.add_argument("--write-model-card", action="store_true",
                   help="store the report, the EER / 1 %% / 5 %% FPR thresholds and the corpus's sources in "
                        "the model's model.json (the decision threshold becomes the EER point)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile

    from pycrl.train.face_validation import validate, write_report

    with tempfile.TemporaryDirectory() as tmp:
        clips = None if args.no_video else (args.clips or Path(tmp) / "clips")
        report = validate(args.model, args.faces, args.split, args.repeats, args.seed, clips, args.frames,
                          args.backend)
    print(json.dumps({"frame": {k: v["auc"] for k, v in report["frame"].items()},
                      "video": report["video"] and report["video"]["auc"]}))
    if args.out:
        write_report(report, args.out)
    if args.write_model_card:
        from pycrl.train.model_card import record_validation

        record_validation(args.model, report, args.faces)
    return 0
