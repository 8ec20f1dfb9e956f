"""The `pycrl` command line: one module per sub-command, each with its `register`."""

from __future__ import annotations

import argparse

from pycrl.cli import export, import_deepfakebench, info, score, serve, train

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
  pycrl serve --port 8000                 the same as an HTTP service (pip install 'pycrl[serve]');
                                          curl --data-binary @clip.mp4 localhost:8000/v1/score
  pycrl train fit --config crl_faces      train a detector (pip install 'pycrl[train]'; configs by name)
  pycrl info                              what this installation can run, and why not the rest
  pycrl import-deepfakebench ckpt_best.pth --detector recce --out models/recce-ffpp
                                          a DeepfakeBench checkpoint as a pycrl model folder
  pycrl export models/recce-ffpp          (re)build the folder's ONNX graph (needs torch)
  pycrl export default --format triton --out triton-repo
                                          a Triton Inference Server model repository (DALI
                                          preprocessing + network + ensemble; see its README.md)

exit status: 0 when every input was processed (an unreadable file or a video
without faces is a result, not a failure), 2 for usage errors (an unknown or
out-of-range option, no inputs), 1 when the model or backend cannot be loaded
(with and without --ray).
"""

#: The sub-commands, in the order ``pycrl --help`` lists them.
COMMANDS = (score, serve, train, export, import_deepfakebench, info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycrl",
        description="Deepfake detection with Compact Reconstruction Learning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
