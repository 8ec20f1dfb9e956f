"""``pycrl import-deepfakebench``: a DeepfakeBench checkpoint as a pycrl model folder."""

from __future__ import annotations

import argparse
import sys

from pycrl.export import export_onnx


def register(sub) -> None:
    imp = sub.add_parser("import-deepfakebench", help="turn a DeepfakeBench checkpoint into a pycrl model folder",
                         description="Loads with strict key and shape checks (a 'module.' prefix from DDP "
                                     "training is accepted) and never unpickles code.")
    imp.add_argument("checkpoint", help="DeepfakeBench .pth (torch.save of the state dict) or .safetensors")
    imp.add_argument("--detector", required=True, choices=["recce", "xception", "efficientnetb4"])
    imp.add_argument("--out", required=True, help="model folder to write")
    imp.add_argument("--name", default=None, help="model id recorded in results")
    imp.add_argument("--threshold", type=float, default=0.5,
                     help="decision threshold (DeepfakeBench reports ACC at 0.5; calibrate on your data)")
    imp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from pycrl import weights  # needs torch, an optional extra
    except ImportError as err:
        print(f"pycrl import-deepfakebench needs torch (pip install 'pycrl[train]'): {err}", file=sys.stderr)
        return 1
    try:
        model = weights.import_deepfakebench(args.checkpoint, detector=args.detector)
    except (ValueError, FileNotFoundError) as err:  # CheckpointError is a ValueError
        print(f"pycrl import-deepfakebench: {err}", file=sys.stderr)
        return 2
    meta = {"name": args.name or f"{args.detector}-deepfakebench", "decision_threshold": args.threshold,
            "provenance": {"imported_from": str(args.checkpoint), "source": "DeepfakeBench"}}
    folder = weights.save(model, args.out, meta)
    export_onnx(folder)
    print(f"{folder}: {args.detector} imported; score with: pycrl score VIDEO --model {folder}")
    return 0
