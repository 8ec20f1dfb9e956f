"""``python -m train <command>``: one sub-command per module.

Each command module defines ``register(subparsers)``, which adds its sub-parser and sets
``func`` (called with the parsed arguments, returning an exit code). Adding a command is
two lines: import its module and list it in ``COMMANDS``. Command modules import heavy
packages (torch, cv2) inside ``func``, so ``--help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys

from train import (
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
  python -m train build-faces --out data/faces
  python -m train make-synthetic --out data/synth --identities 40 --frames-per-id 8
  python -m train make-synthetic --help
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="pycrl training tools: data generation, training and evaluation of deepfake detectors.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
