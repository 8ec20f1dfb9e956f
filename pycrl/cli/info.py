"""``pycrl info``: what this installation can run, and why not the rest."""

from __future__ import annotations

import argparse
import json

from pycrl.environment import report


def register(sub) -> None:
    info = sub.add_parser("info", help="versions, backends and devices usable here (and why others are not)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
