"""Every detector on the synthetic task, side by side: the README's comparison table.

    python benchmarks/compare_detectors.py [--synth DIR] [--out runs/compare] [--only crl,cae]

For each detector it trains the synthetic config its learning test uses (the same
``pycrl train fit`` command, two minutes at most on this machine), reads the validation
AUC from the model folder, then measures CPU throughput of the exported graph on OpenVINO
(the default CPU backend) and torch eager, in the same run. It also builds each detector's
full configuration (pycrl/train/configs/<name>.yaml, random weights) to report its size and CPU
throughput at its own resolution. Synthetic numbers only: not comparable to FF++ results.

The table goes to stdout (markdown) and ``OUT/compare.json``. A detector whose model folder
already exists under OUT is measured again, not retrained: delete OUT to retrain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]
from throughput import crops_per_second  # noqa: E402
from train_cli import fit_synthetic, make_synthetic  # noqa: E402

CONFIGS = ROOT / "pycrl" / "train" / "configs"
# label, synthetic config + overrides (as the learning tests run them), full config + overrides
DETECTORS = [
    ("CRL", "crl_tiny_synthetic.yaml", ["data.resolution=96", "train.max_steps=360", "train.epochs=40",
                                        "train.eval_every=60", "train.threads=2", "train.select_metric=auc"],
     "crl.yaml", []),
    ("RECCE", "crl_tiny_synthetic.yaml", ["model.joint_gr=false", "model.diff_gate=false", "loss.name=recce",
                                          "loss.recipe=paper"], "recce.yaml", []),
    ("Exposing", "exposing_synthetic.yaml", [], "exposing.yaml", []),
    # CLIP ViT-L/14 at random: the size and speed do not depend on the user's CLIP weights
    ("MASM", "masm_synthetic.yaml", [], "masm.yaml", ["model.backbone_cfg.pretrained=null"]),
    ("CAE", "cae_synthetic.yaml", [], "cae.yaml", []),
]
BATCH = 32


def inference_parameters(module) -> int:
    return sum(p.numel() for p in module.inference_module().parameters())


def full_model(config: str, overrides: list):
    from pycrl.models import create_model
    from pycrl.train.config import constructor_args, load_config

    cfg = load_config(CONFIGS / config, overrides)
    name, args = constructor_args(cfg["model"])
    model = create_model(name, **args).eval()
    size = int(cfg["data"]["resolution"])
    model.pycrl_meta = {**model.default_meta, "input_size": [3, size, size]}
    return model, size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", type=Path, help="an existing make-synthetic folder (else one is built)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "compare")
    p.add_argument("--only", help="comma-separated labels, e.g. CRL,CAE")
    p.add_argument("--skip-full", action="store_true", help="skip the full-configuration columns")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    synth = args.synth or make_synthetic(args.out / "synth")
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for label, config, overrides, full, full_overrides in DETECTORS:
        if wanted and label not in wanted:
            continue
        run_dir = args.out / label.lower()
        if (run_dir / "model" / "model.json").is_file():  # trained by an earlier run of this script
            from pycrl import weights

            folder, model = run_dir / "model", weights.load(run_dir / "model")
            training = model.pycrl_meta["provenance"]["training"]
        else:
            folder, model, training = fit_synthetic(CONFIGS / config, synth, run_dir, *overrides)
        val = training["metrics"]["val"]
        size = int(model.pycrl_meta["input_size"][-1])
        row = {"detector": label, "config": config, "val_auc": val["auc"], "val_video_auc": val["video_auc"],
               "train_seconds": training["seconds_this_session"],
               "size": size, "params": inference_parameters(model),
               "openvino": crops_per_second(folder, size, "openvino"),
               "torch": crops_per_second(folder, size, "torch")}
        if not args.skip_full:
            big, big_size = full_model(full, full_overrides)
            row.update(full_config=full, full_size=big_size, full_params=inference_parameters(big),
                       full_openvino=crops_per_second(big, big_size, "openvino", rounds=2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| detector | val AUC (frame / video) | params | CPU crops/s OpenVINO / torch | "
          "full config: params, CPU crops/s OpenVINO |")
    print("|---|---|---|---|---|")
    for r in rows:
        full = (f"{r['full_params'] / 1e6:.1f} M at {r['full_size']}², {r['full_openvino']:.1f}"
                if "full_params" in r else "-")
        print(f"| {r['detector']} | {r['val_auc']:.3f} / {r['val_video_auc']:.3f} | "
              f"{r['params'] / 1e6:.2f} M at {r['size']}² | {r['openvino']:.0f} / {r['torch']:.0f} | {full} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
