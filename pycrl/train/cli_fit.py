"""``pycrl train fit``: train a detector from a YAML config and write a model folder."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
overrides (after all --options): dotted keys, YAML values
  optim.lr=1e-4  data.batch_size=16  train.epochs=2  model.num_classes=1  train.amp=off
  data.train.json=/data/dataset_json/FaceForensics++.json  data.train.rgb_dir=/data/rgb

data sources (data.train, data.val, data.test; data.train may be a list of them):
  {type: deepfakebench, json: J.json, rgb_dir: DIR, split: train, frame_num: 32, compression: c23,
   label_keys: [FF-real, FF-DF]}                      label_keys: keep only these label keys
  {type: folder, root: DIR, frames_per_video: 32}     DIR/real and DIR/fake (images, frame folders, videos)
  + self_blend: true                                  use the reals only, each with a fresh self-blended fake
  The best weights and the decision threshold are chosen on data.val; data.test is only scored.

what it writes under output.dir (OUT):
  OUT/config.yaml               the resolved config
  OUT/log.jsonl                 one JSON object per logged step and per evaluation
  OUT/checkpoints/last.pt       everything needed to resume (written after each validation)
  OUT/checkpoints/best.pt       weights of the best validation so far (train.select_metric)
  OUT/model/                    the model folder: weights + model.json with the decision
                                threshold chosen on val, mean/std, input size, real centre,
                                training provenance (config, data, val and test metrics)

examples:
  # RECCE as in the paper (flooded CE + reconstruction + metric loss) on DeepfakeBench JSON
  pycrl train fit --config recce \\
      data.train.json=datasets/dataset_json/FaceForensics++.json data.train.rgb_dir=datasets/rgb \\
      data.val.json=datasets/dataset_json/FaceForensics++.json data.val.rgb_dir=datasets/rgb

  # the same network with DeepfakeBench's loss (cross-entropy only)
  pycrl train fit --config recce loss.recipe=deepfakebench output.dir=runs/recce-dfb

  # a two-minute CRL smoke run on synthetic faces
  pycrl train make-synthetic --out data/synth --identities 40 --frames-per-id 8
  pycrl train fit --config crl_tiny_synthetic

  # continue an interrupted run, or train it longer (the saved LR schedule continues as it
  # was: a cosine period is fixed when the run starts, so plan it with scheduler.t_max)
  pycrl train fit --config crl --resume train.epochs=20

  # check what a config resolves to without training
  pycrl train fit --config crl --print-config loss.compact_mode=pairwise
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="train a detector from a YAML config (checkpoints, resume, model folder at the end)",
        description="Train a detector as a YAML config says: model and loss by registry name, datasets "
                    "(DeepfakeBench JSON, folders, self-blended fakes), optimiser and schedule. The best "
                    "weights on the validation split are exported as a model folder.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, metavar="NAME|FILE",
                   help="a shipped config by name (crl, crl_faces, recce, exposing, masm, cae, their _faces and "
                        "_synthetic variants, crl_tiny_synthetic) or a YAML file (which may 'base:' on a shipped one)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted-key overrides, e.g. optim.lr=1e-4")
    p.add_argument("--out", metavar="DIR", help="shortcut for output.dir=DIR")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt (output.resume=auto)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pycrl.train.config import ConfigError, dump_config, load_config

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output.dir={args.out}")
    if args.resume:
        overrides.append("output.resume=auto")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"fit: config error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0

    from pycrl.train.engine import fit

    try:
        summary = fit(cfg)
    except (ValueError, OSError) as exc:  # bad data layout, missing files, an existing run
        print(f"fit: error: {exc}", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0


def print_summary(summary: dict) -> None:
    from pycrl.train.engine.logs import json_safe

    best = summary["best"]
    print(f"best {best['metric']} on val: {best['value']:.4f} (step {best['step']}), "
          f"threshold {best['threshold']['value']:.4f} ({best['threshold']['mode']})")
    if summary["test"]:
        print(f"test: {json.dumps(json_safe({k: summary['test'][k] for k in ('auc', 'eer', 'ap', 'acc')}))}")
    print(f"model folder: {summary['model_dir']}")
