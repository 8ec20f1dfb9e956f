"""Every detector trained with the default model's recipe on the real-face corpus, side by
side on held-out identities: the README's model-selection table.

    pycrl train build-faces --out data/faces
    python benchmarks/compare_faces.py --faces data/faces [--steps 300] [--out runs/compare_faces] [--only CRL,CAE]

Each variant is ``pycrl train fit`` on its config (pycrl/train/configs/*_faces.yaml, or the
default recipe with overrides) for the same number of optimiser steps (batch 32, cosine
schedule over those steps), then
``validate-faces`` on the corpus's held-out people (frame AUC per fake family and video
AUC on H.264 clips, each with a people-bootstrap 95 % interval) and its OpenVINO crops/s
at batch 32 in the same run. A variant whose model folder exists under OUT is validated
again, not retrained: delete OUT/<label> to retrain. Rows go to OUT/compare_faces.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from throughput import crops_per_second  # noqa: E402

CONFIGS = ROOT / "pycrl" / "train" / "configs"
# label, config, overrides: the detectors, then the default recipe's ablations
VARIANTS = [
    ("CRL", "crl_faces.yaml", []),
    ("RECCE", "recce_faces.yaml", []),
    ("Exposing", "exposing_faces.yaml", []),
    ("MASM", "masm_faces.yaml", []),
    ("CAE", "cae_faces.yaml", []),
    ("CRL scratch encoder", "crl_faces.yaml", ["model.encoder=lite", "model.pretrained=false",
                                               "model.frozen_stages=[]"]),
    ("CRL CE only", "crl_faces.yaml", ["loss.recon_weight=0.0", "loss.compact_weight=0.0"]),
    ("CRL 160 px", "crl_faces.yaml", ["data.resolution=160"]),
]


def slug(label: str) -> str:
    return label.lower().replace(" ", "_")


def parameters(folder: Path) -> int:
    from pycrl import weights

    model = weights.load(folder)
    return sum(p.numel() for p in model.inference_module().parameters())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=Path, default=ROOT / "data" / "faces", help="build-faces corpus")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "compare_faces")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per variant (default 300)")
    p.add_argument("--only", help="comma-separated labels")
    p.add_argument("--speed-only", action="store_true",
                   help="re-measure crops/s of the rows already in OUT (on a quiet machine), nothing else")
    args = p.parse_args(argv)
    from pycrl.train.face_validation import validate

    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    results = args.out / "compare_faces.json"
    rows = json.loads(results.read_text()) if results.is_file() else []
    if args.speed_only:
        for row in rows:
            folder = args.out / slug(row["label"]) / "model"
            row["openvino_crops_s"] = round(crops_per_second(folder, row["size"], "openvino"), 1)
        results.write_text(json.dumps(rows, indent=2) + "\n")
        print(table(rows))
        return 0
    for label, config, overrides in VARIANTS:
        if wanted and label not in wanted:
            continue
        run = args.out / slug(label)
        folder = run / "model"
        if not (folder / "model.json").is_file():
            cmd = [sys.executable, "-m", "pycrl.cli", "train", "fit", "--config", str(CONFIGS / config), "--out", str(run),
                   f"train.max_steps={args.steps}", "train.time_limit_minutes=null", "train.eval_every=100",
                   "train.progress=false",
                   f"data.train.root={args.faces}", f"data.val.root={args.faces}", *overrides]
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)
        report = validate(folder, args.faces, clips_dir=run / "clips")
        size = int(json.loads((folder / "model.json").read_text())["input_size"][-1])
        row = {"label": label, "config": config, "overrides": overrides, "steps": args.steps,
               "frame": report["frame"], "video": report["video"], "size": size,
               "params": parameters(folder), "openvino_crops_s": round(crops_per_second(folder, size, "openvino"), 1)}
        (run / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
        rows = [r for r in rows if r["label"] != label] + [row]
        results.write_text(json.dumps(rows, indent=2) + "\n")
        print(json.dumps({k: row[k] for k in ("label", "openvino_crops_s")} |
                         {f: row["frame"][f]["auc"] for f in row["frame"]} | {"video": row["video"]["auc"]}),
              flush=True)
    print(table(rows))
    return 0


def _cell(r: dict) -> str:
    return f"{r['auc']:.3f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"


def table(rows: list[dict]) -> str:
    lines = ["| variant | self-blend | identity swap | upsampling | video (H.264 clips) | params | "
             "OpenVINO crops/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        f = r["frame"]
        lines.append(f"| {r['label']} ({r['size']}²) | {_cell(f['sbi'])} | {_cell(f['swap'])} | "
                     f"{_cell(f['upsample'])} | {_cell(r['video'])} | {r['params'] / 1e6:.1f} M | "
                     f"{r['openvino_crops_s']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
