"""The `pycrl` command line."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  pycrl info                 what this installation can run, and why not the rest
  pycrl info --json          the same as one JSON object, for scripts
"""


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycrl",
        description="Deepfake detection with Compact Reconstruction Learning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
