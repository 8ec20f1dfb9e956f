"""``pycrl train <command>``: one sub-command per module.

Each command module defines ``register(subparsers)``, which adds its sub-parser and sets
``func`` (called with the parsed arguments, returning an exit code). Adding a command is
two lines: import its module and list it in ``COMMANDS``. Command modules import heavy
packages (torch, cv2) inside ``func``, so ``--help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys

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


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Every training command as a sub-command of ``parser`` (``pycrl train`` and ``python -m pycrl.train``)."""
    sub = parser.add_subparsers(dest="train_command", metavar="<command>", required=True)
    for module in COMMANDS:
        module.register(sub)


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
