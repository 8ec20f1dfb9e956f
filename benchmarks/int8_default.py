"""INT8 post-training quantisation (NNCF) of the default model: accuracy on held-out people
and crops/s against the bf16 graph the package runs, in one run.

    pycrl train build-faces --out data/faces --offline
    pip install nncf
    python benchmarks/int8_default.py --faces data/faces [--calibration 300]

Calibration uses the corpus's *training* people only (their reals and on-the-fly fakes of each
family, through the upload degradations); accuracy is measured on the validation people, as the
model card's numbers are (same samples, same bootstrap over people). Speed: batch 32 at the
model's input size, LATENCY hint, medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", required=True, help="the corpus written by pycrl train build-faces")
    p.add_argument("--calibration", type=int, default=300, help="calibration crops (training people)")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    import nncf
    import openvino as ov

    import pycrl
    from pycrl.model_card import ModelCard
    from pycrl.train.data.forgeries import FAMILIES
    from pycrl.train.face_validation import bootstrap_auc, frame_samples

    corpus = Path(args.faces)
    card = ModelCard.read("default")
    det = pycrl.Detector("default", backend="openvino")
    calib = np.concatenate([frame_samples(corpus, "train", f, 2, 1)[0] for f in FAMILIES])
    rng = np.random.default_rng(0)
    calib = calib[rng.permutation(len(calib))[: args.calibration]]
    x_calib = det.prepare(calib)
    core = ov.Core()
    model = core.read_model(str(card.folder / "model.onnx"))
    t0 = time.perf_counter()
    quantised = nncf.quantize(model, nncf.Dataset([x_calib[i: i + 1] for i in range(len(x_calib))]),
                              subset_size=len(x_calib))
    seconds = time.perf_counter() - t0
    compiled = {"bf16": core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_PRECISION_HINT": "bf16"}),
                "int8": core.compile_model(quantised, "CPU", {"PERFORMANCE_HINT": "LATENCY"})}

    def probs(name: str, x: np.ndarray) -> np.ndarray:
        net = compiled[name]
        out = [net({0: x[i: i + 32]})[net.output("prob")] for i in range(0, len(x), 32)]
        return np.concatenate(out).reshape(-1)

    report: dict = {"calibration_crops": len(x_calib), "quantise_seconds": round(seconds, 1), "frame_auc": {}}
    for family in FAMILIES:
        images, y, people = frame_samples(corpus, "val", family, 6, 0)
        x = det.prepare(images)
        report["frame_auc"][family] = {k: bootstrap_auc(y, probs(k, x), people) for k in compiled}
    batch = np.random.default_rng(0).uniform(-1, 1, (32, 3, card.side, card.side)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in compiled}
    for net in compiled.values():
        net({0: batch})
    for _ in range(args.rounds):
        for k, net in compiled.items():
            t = time.perf_counter()
            net({0: batch})
            times[k].append(time.perf_counter() - t)
    report["crops_per_s"] = {k: round(32 / statistics.median(v), 1) for k, v in times.items()}
    det.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
