"""``pycrl export``: a model folder's ONNX graph, or a Triton model repository."""

from __future__ import annotations

import argparse
import sys

from pycrl.errors import ExportError
from pycrl.export import export_onnx
from pycrl.export.triton import export_triton
from pycrl.model_folder import DEFAULT_MODEL


def register(sub) -> None:
    export = sub.add_parser(
        "export", help="build a model folder's ONNX graph, or a Triton model repository",
        description="--format onnx (default): (re)build MODEL's ONNX graph, the one every backend runs.\n"
                    "--format triton: write a Triton Inference Server model repository at --out:\n"
                    "  NAME_preprocess  DALI: decode encoded face crops, resize, normalise as pycrl does\n"
                    "  NAME_net         the ONNX graph on ONNX Runtime, or a TensorRT engine that you\n"
                    "                   build on the serving GPU (--triton-backend tensorrt)\n"
                    "  NAME             the ensemble clients call: encoded crops in, prob/feat/... out\n"
                    "and a README.md on starting Triton (docker) and sending crops (tritonclient).\n"
                    "Exporting needs neither Triton nor DALI nor a GPU.",
        epilog="examples:\n"
               "  pycrl export models/recce-ffpp --force\n"
               "  pycrl export default --format triton --out triton-repo\n"
               "  pycrl export models/recce-ffpp --format triton --out /srv/models --triton-backend tensorrt\n"
               "  pycrl export default --format triton --out repo --triton-device cpu --overwrite",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("model", help=f"model folder ({DEFAULT_MODEL!r}, the bundled model, with --format triton)")
    export.add_argument("--format", default="onnx", choices=["onnx", "triton"],
                        help="onnx: the graph only (default); triton: a Triton model repository")
    export.add_argument("--out", default=None,
                        help="onnx: graph path (default MODEL/model.onnx); triton: repository folder (required)")
    export.add_argument("--opset", type=int, default=17)
    export.add_argument("--force", action="store_true", help="rebuild even when the cached graph is current")
    triton = export.add_argument_group("--format triton")
    triton.add_argument("--name", default=None, help="ensemble name clients call (default: the model's name)")
    triton.add_argument("--triton-backend", dest="backend", choices=["onnxruntime", "tensorrt"], default=None,
                        help="onnxruntime (default): serve model.onnx; tensorrt: tensorrt_plan config, the "
                             "engine is built on the serving GPU with trtexec (command in README.md)")
    triton.add_argument("--triton-device", dest="device", choices=["gpu", "cpu"], default=None,
                        help="gpu (default): KIND_GPU, DALI decodes on the GPU; cpu: a host without GPU")
    triton.add_argument("--max-batch-size", type=int, default=None, help="largest batch Triton forms (default 32)")
    triton.add_argument("--max-queue-delay-us", type=int, default=None,
                        help="how long the dynamic batcher may wait to fill a batch (default 500)")
    triton.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out, replacing this model's three folders and "
                             "README.md (other models stay)")
    export.set_defaults(func=run)


# Options of `pycrl export` that only --format triton reads (flag -> argparse dest,
# which is also the export_triton keyword).
TRITON_OPTIONS = {"--name": "name", "--triton-backend": "backend", "--triton-device": "device",
                  "--max-batch-size": "max_batch_size", "--max-queue-delay-us": "max_queue_delay_us",
                  "--overwrite": "overwrite"}


def _export_triton(args: argparse.Namespace) -> int:
    if not args.out:
        print("pycrl export: --format triton needs --out DIR (the model repository to write)", file=sys.stderr)
        return 2
    # Options left unset keep export_triton's defaults.
    options = {d: getattr(args, d) for d in TRITON_OPTIONS.values() if getattr(args, d) not in (None, False)}
    try:
        repo = export_triton(args.model, args.out, opset=args.opset, force=args.force, **options)
    except (ValueError, FileNotFoundError, FileExistsError) as err:  # bad model, options or destination
        print(f"pycrl export: {err}", file=sys.stderr)
        return 2
    except (ExportError, OSError) as err:
        print(f"pycrl export: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(repo.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    if args.format == "triton":
        return _export_triton(args)
    stray = [flag for flag, dest in TRITON_OPTIONS.items() if getattr(args, dest) not in (None, False)]
    if stray:
        print(f"pycrl export: {', '.join(stray)} apply to --format triton only", file=sys.stderr)
        return 2
    try:
        out = export_onnx(args.model, args.out, opset=args.opset, force=args.force)
    except (ValueError, FileNotFoundError) as err:
        print(f"pycrl export: {err}", file=sys.stderr)
        return 2
    except (ExportError, ImportError) as err:  # tracing needs torch: pip install 'pycrl[train]'
        print(f"pycrl export: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    state = "written" if out.rebuilt else "up to date"
    # outputs is None when an inference-only install reuses a graph it cannot re-export.
    outputs = ", ".join(out.outputs) if out.outputs is not None else "not recorded"
    print(f"{out.path}  ({state}; outputs {outputs}; input {out.input_shape})")
    return 0
