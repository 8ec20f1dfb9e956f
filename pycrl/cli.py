"""The `pycrl` command line."""

from __future__ import annotations

import argparse
import json
import sys

from pycrl.model_folder import DEFAULT_MODEL

EPILOG = """\
examples:
  pycrl score clip.mp4 photo.jpg          score files with the bundled default model
  pycrl score uploads/ --jsonl out.jsonl  a folder (recursively), one JSON line per input
  pycrl score '*.mp4' --model my-model/ --heatmaps maps/
                                          your model folder; PNG overlays of what reconstructs badly
  pycrl score uploads/ --ray --dest scores/
                                          on a local Ray instance (all cores), resumable: a re-run
                                          skips inputs already in scores/ (pip install 'pycrl[ray]')
  pycrl score @paths.txt --ray --address auto --dest /shared/scores --format parquet
                                          on a running Ray cluster; paths listed one per line
  pycrl info                              what this installation can run, and why not the rest
  pycrl import-deepfakebench ckpt_best.pth --detector recce --out models/recce-ffpp
                                          a DeepfakeBench checkpoint as a pycrl model folder
  pycrl export models/recce-ffpp          (re)build the folder's ONNX graph (needs torch)
  pycrl export default --format triton --out triton-repo
                                          a Triton Inference Server model repository (DALI
                                          preprocessing + network + ensemble; see its README.md)

exit status: 0 when every input was processed (an unreadable file or a video
without faces is a result, not a failure), 2 for usage errors, 1 when the
model or backend cannot be loaded.
"""

MEDIA_SUFFIXES = {
    ".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp",
    ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif",
}


def _cmd_info(args: argparse.Namespace) -> int:
    from pycrl.environment import report

    rep = report()
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"pycrl {rep['pycrl']}  (Python {rep['python']}, {rep['platform']})")
    width = max(len(c["name"]) for c in rep["capabilities"])
    for cap in rep["capabilities"]:
        mark = "yes" if cap["usable"] else "no "
        version = f" {cap['version']}" if cap["version"] else ""
        print(f"  {cap['name']:<{width}}  {mark}{version}  {cap['detail']}")
    return 0


def expand_inputs(patterns: list[str]) -> tuple[list[str], list[str]]:
    """Files as given, folders walked recursively for media files, globs expanded.

    Returns (inputs, patterns that matched nothing). A named file is kept even
    when it does not exist or has an odd suffix: it then gets an error result.
    """
    import glob
    from pathlib import Path

    found, unmatched = [], []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            hits = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES)
        elif any(ch in pat for ch in "*?["):
            hits = sorted(h for h in glob.glob(pat, recursive=True) if Path(h).is_file())
        else:
            hits = [pat]
        if not hits:
            unmatched.append(pat)
        found.extend(hits)
    return found, unmatched


def _human(result) -> str:
    if result.status == "ok":
        faces = len(result.faces)
        return f"{result.label:<4} {result.score:.3f}  {result.source}  ({result.frames_sampled} frames, {faces} faces)"
    return f"{result.status:<7}       {result.source}  ({result.message})"


def _detector_options(args: argparse.Namespace) -> dict:
    """`pycrl.Detector` keyword arguments from the score options (the model aside)."""
    return dict(backend=args.backend, device=args.device, batch_size=args.batch_size, frames=args.frames,
                sampling=args.sampling, faces=args.faces, aggregation=args.aggregation, threshold=args.threshold,
                precision=args.precision, heatmap_size=32 if args.heatmaps else 0, workers=args.workers,
                decoder=args.decoder)


def _cmd_score(args: argparse.Namespace) -> int:
    if args.ray:
        return _cmd_score_ray(args)
    stray = [flag for flag in RAY_OPTIONS if getattr(args, RAY_OPTIONS[flag]) is not None]
    if stray:
        print(f"pycrl score: {', '.join(stray)} need --ray", file=sys.stderr)
        return 2
    inputs, unmatched = expand_inputs(args.paths)
    for pat in unmatched:
        print(f"pycrl score: nothing matches {pat!r}", file=sys.stderr)
    if not inputs:
        print("pycrl score: no inputs", file=sys.stderr)
        return 2
    from pycrl.detector import Detector
    from pycrl.heatmaps import write_overlays

    try:
        det = Detector(args.model, **_detector_options(args))
    except ValueError as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        print(f"pycrl score: cannot load the model: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    from pathlib import Path

    from tqdm import tqdm

    jsonl = None
    if args.jsonl:
        jsonl = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")
    human = sys.stderr if jsonl is sys.stdout else sys.stdout
    counts = {"ok": 0, "no_face": 0, "error": 0}
    bar = tqdm(total=len(inputs), unit="file", disable=args.no_progress or None, file=sys.stderr)
    try:
        with det:
            for result in det.score_videos(inputs):
                counts[result.status] += 1
                if jsonl is not None:
                    jsonl.write(json.dumps(result.to_dict()) + "\n")
                    jsonl.flush()
                if args.heatmaps and result.status == "ok":
                    write_overlays(result, Path(args.heatmaps))
                bar.write(_human(result), file=human)
                bar.update(1)
    finally:
        bar.close()
        if jsonl not in (None, sys.stdout):
            jsonl.close()
    print(f"{len(inputs)} inputs: {counts['ok']} scored, {counts['no_face']} without faces, "
          f"{counts['error']} errors  [{det.model_id} on {det.backend}]", file=sys.stderr)
    return 0


# Options of `pycrl score` that only --ray reads (flag -> argparse dest).
RAY_OPTIONS = {"--address": "address", "--dest": "dest", "--format": "format", "--actors": "actors"}


def _cmd_score_ray(args: argparse.Namespace) -> int:
    if args.jsonl or args.heatmaps:
        print("pycrl score: --jsonl and --heatmaps do not apply with --ray (records go to --dest)", file=sys.stderr)
        return 2
    from pycrl.distributed.ray_job import RayUnavailable, score_with_ray
    from pycrl.model_folder import ModelFolderError

    dest = args.dest or "pycrl-scores"
    try:
        summary = score_with_ray(args.paths, dest, args.model, address=args.address,
                                 output_format=args.format or "jsonl", num_actors=args.actors,
                                 progress=not args.no_progress, **_detector_options(args))
    except (RayUnavailable, ModelFolderError) as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:  # no inputs, bad options or destination
        print(f"pycrl score: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the cluster, the model in the actors, the destination lock
        print(f"pycrl score --ray: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(summary.format(), file=sys.stderr)
    print(f"records: {dest}/part-*.{summary.output_format}  (summary: {dest}/summary.json)", file=sys.stderr)
    return 0


# Options of `pycrl export` that only --format triton reads (flag -> argparse dest,
# which is also the export_triton keyword).
TRITON_OPTIONS = {"--name": "name", "--triton-backend": "backend", "--triton-device": "device",
                  "--max-batch-size": "max_batch_size", "--max-queue-delay-us": "max_queue_delay_us",
                  "--overwrite": "overwrite"}


def _export_triton(args: argparse.Namespace) -> int:
    if not args.out:
        print("pycrl export: --format triton needs --out DIR (the model repository to write)", file=sys.stderr)
        return 2
    from pycrl.runtime import ExportError
    from pycrl.runtime.triton import export_triton

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


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format == "triton":
        return _export_triton(args)
    stray = [flag for flag, dest in TRITON_OPTIONS.items() if getattr(args, dest) not in (None, False)]
    if stray:
        print(f"pycrl export: {', '.join(stray)} apply to --format triton only", file=sys.stderr)
        return 2
    try:
        from pycrl.runtime import export_onnx
    except ImportError as err:
        print(f"pycrl export: {err}", file=sys.stderr)
        return 1
    try:
        out = export_onnx(args.model, args.out, opset=args.opset, force=args.force)
    except (ValueError, FileNotFoundError) as err:
        print(f"pycrl export: {err}", file=sys.stderr)
        return 2
    state = "written" if out.rebuilt else "up to date"
    print(f"{out.path}  ({state}; outputs {', '.join(out.outputs)}; input {out.input_shape})")
    return 0


def _cmd_import_deepfakebench(args: argparse.Namespace) -> int:
    try:
        from pycrl import weights
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
    from pycrl.runtime import export_onnx

    export_onnx(folder)
    print(f"{folder}: {args.detector} imported; score with: pycrl score VIDEO --model {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycrl",
        description="Deepfake detection with Compact Reconstruction Learning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    score = sub.add_parser(
        "score", help="score videos and images for face manipulation",
        description="Decode each input, find and align faces, and score them. One result per input, "
                    "in input order; errors and inputs without faces are results too.",
        epilog="output: one line per input on stdout ('fake 0.912  path  (32 frames, 32 faces)'); "
               "--jsonl adds one JSON object per input (score, label, per-face scores with "
               "timestamps and boxes, compactness, status, timings, model, backend).",
    )
    score.add_argument("paths", nargs="+", metavar="PATH", help="files, folders (searched recursively) or globs")
    score.add_argument("--model", default=DEFAULT_MODEL, help=f"model folder, or {DEFAULT_MODEL!r} (the bundled real-face model; the default)")
    score.add_argument("--backend", default="auto", choices=["auto", "openvino", "onnxruntime", "torch", "tensorrt"])
    score.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    score.add_argument("--precision", default="auto", help="auto | f32 | bf16 | fp16 (backend permitting)")
    score.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    score.add_argument("--sampling", default="uniform", choices=["uniform", "keyframes"],
                       help="uniform: evenly over the whole video (the protocol); keyframes: key frames only, faster")
    score.add_argument("--decoder", default="auto", choices=["auto", "pyav", "dali"],
                       help="video decoder: auto = DALI on a CUDA device when installed, else PyAV")
    score.add_argument("--faces", default="largest", choices=["largest", "all"], help="faces scored per frame")
    score.add_argument("--aggregation", default="mean", choices=["mean", "max", "topk-mean"],
                       help="video score from frame scores (default mean, the protocol)")
    score.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the model's)")
    score.add_argument("--batch-size", type=int, default=32)
    score.add_argument("--workers", type=int, default=2, help="threads decoding and detecting ahead of the network")
    score.add_argument("--jsonl", metavar="FILE", help="write one JSON object per input to FILE ('-' for stdout)")
    score.add_argument("--heatmaps", metavar="DIR", help="write PNG overlays of the reconstruction difference per face")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    scale = score.add_argument_group(
        "scale out with Ray (pip install 'pycrl[ray]')",
        "--ray scores on a pool of Ray actors, each holding one detector and reading whole files by path "
        "(on a multi-node cluster the paths must be on a shared filesystem). Records go to --dest as part "
        "files, one per input, written atomically; running the same command again skips inputs already "
        "recorded there, so an interrupted job resumes. A PATH of the form @FILE names a text file listing "
        "files, folders or globs, one per line.")
    scale.add_argument("--ray", action="store_true", help="score with Ray Data instead of in this process")
    scale.add_argument("--address", default=None, metavar="ADDR",
                     help="Ray cluster: 'auto' (started here with `ray start`) or ray://HOST:10001; "
                          "default: start a local instance on this machine")
    scale.add_argument("--dest", default=None, metavar="DIR", help="destination folder (default pycrl-scores)")
    scale.add_argument("--format", default=None, choices=["jsonl", "parquet"], help="record format (default jsonl)")
    scale.add_argument("--actors", type=int, default=None, metavar="N",
                     help="actors in the pool (default: one per GPU, else one per CPU core)")
    score.set_defaults(func=_cmd_score)

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
    export.set_defaults(func=_cmd_export)

    imp = sub.add_parser("import-deepfakebench", help="turn a DeepfakeBench checkpoint into a pycrl model folder",
                         description="Loads with strict key and shape checks (a 'module.' prefix from DDP "
                                     "training is accepted) and never unpickles code.")
    imp.add_argument("checkpoint", help="DeepfakeBench .pth (torch.save of the state dict) or .safetensors")
    imp.add_argument("--detector", required=True, choices=["recce", "xception", "efficientnetb4"])
    imp.add_argument("--out", required=True, help="model folder to write")
    imp.add_argument("--name", default=None, help="model id recorded in results")
    imp.add_argument("--threshold", type=float, default=0.5,
                     help="decision threshold (DeepfakeBench reports ACC at 0.5; calibrate on your data)")
    imp.set_defaults(func=_cmd_import_deepfakebench)

    info = sub.add_parser("info", help="versions, backends and devices usable here (and why others are not)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
