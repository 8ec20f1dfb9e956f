"""``pycrl train evaluate``: DeepfakeBench's test metrics of a model folder on a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
data (--data):
  a DeepfakeBench JSON file   frames listed per split; --rgb-dir is the folder their relative
                              paths start from (default: the JSON folder's parent, as
                              make-synthetic writes it)
  a folder                    DIR/real/ and DIR/fake/ holding images, frame folders or videos

metrics: frame AUC (the DeepfakeBench headline), EER, AP, ACC at 0.5, ACC at the model's
decision threshold, video AUC (mean frame probability per video), and counts. The model
folder's input size and mean/std are used for preprocessing.

examples:
  pycrl train evaluate --model runs/crl/model \\
      --data datasets/dataset_json/Celeb-DF-v2.json --rgb-dir datasets/rgb --split test
  pycrl train evaluate --model runs/crl/model --data data/synth/dataset_json/Synthetic.json \\
      --split val --out runs/crl/val_metrics.json
  pycrl train evaluate --model runs/crl/model --data clips/ --frame-num 16   # clips/real, clips/fake
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a dataset with a model folder: AUC, EER, AP, ACC, video AUC",
        description="Evaluate a model folder (written by `pycrl train fit` or pycrl.weights.save) "
                    "on a DeepfakeBench JSON split or a real/ fake/ folder; prints and writes JSON metrics.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="FOLDER", help="model folder (model.json + model.safetensors)")
    p.add_argument("--data", required=True, metavar="PATH", help="DeepfakeBench JSON file or real/ fake/ folder")
    p.add_argument("--rgb-dir", metavar="DIR", help="root of the JSON's relative frame paths")
    p.add_argument("--dataset", metavar="NAME", help="dataset id inside the JSON (e.g. FF-DF_c40); default: file stem")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="JSON split (default test)")
    p.add_argument("--compression", metavar="C", help="FF++ compression level (default c23)")
    p.add_argument("--frame-num", type=int, default=32, metavar="N",
                   help="frames per video, spread with linspace (default 32, DeepfakeBench's; 0 = all)")
    p.add_argument("--label-keys", nargs="+", metavar="KEY",
                   help="keep only videos under these label keys (e.g. FF-real FF-DF)")
    p.add_argument("--self-blend", action="store_true", help="use the reals only, each with a self-blended fake")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="default 64")
    p.add_argument("--workers", type=int, default=2, metavar="W", help="data loading processes (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's)")
    p.add_argument("--threshold", type=float, metavar="T", help="decision threshold for acc_at_threshold "
                                                                  "(default: the model folder's)")
    p.add_argument("--out", metavar="FILE", help="write the metrics JSON here too")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def source_from_args(args: argparse.Namespace) -> dict:
    path = Path(args.data)
    frames = args.frame_num or None
    if path.suffix.lower() == ".json":
        source = {"type": "deepfakebench", "json": str(path), "split": args.split, "frame_num": frames,
                  "rgb_dir": args.rgb_dir or str(path.resolve().parent.parent)}
        if args.dataset:
            source["dataset"] = args.dataset
        if args.compression:
            source["compression"] = args.compression
        if args.label_keys:
            source["label_keys"] = list(args.label_keys)
    else:
        source = {"type": "folder", "root": str(path), "frames_per_video": frames}
    if args.self_blend:
        source["self_blend"] = True
    return source


def run(args: argparse.Namespace) -> int:
    from pycrl.train.engine.evaluation import evaluate_folder
    from pycrl.train.engine.logs import json_safe

    options = dict(split=args.split, batch_size=args.batch_size, workers=args.workers, device=args.device,
                   threshold=args.threshold, threads=args.threads, progress=not args.no_progress)
    try:
        report = evaluate_folder(args.model, source_from_args(args), **options)
    except (OSError, ValueError, KeyError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    m = report["metrics"]
    print(f"{report['architecture']} on {args.data} ({args.split}): "
          f"{m['n_frames']} frames ({m['n_real']} real, {m['n_fake']} fake), {m.get('n_videos', '?')} videos")
    for key in ("auc", "eer", "ap", "acc", "acc_at_threshold", "video_auc"):
        if key in m:
            print(f"  {key:<17} {m[key]:.4f}")
    text = json.dumps(json_safe(report), indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0
