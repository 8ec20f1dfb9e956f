"""``pycrl train make-synthetic``: a synthetic deepfake dataset in the DeepfakeBench layout."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
what it writes (OUT is the rgb_dir; NAME defaults to Synthetic):
  OUT/NAME/real/frames/<id>/<idx>.png           one real video per identity (+ landmarks/*.npy)
  OUT/NAME/FakeSBI/frames/<id>/<idx>.png        self-blended fakes (+ masks/, landmarks/)
  OUT/NAME/FakeSwap/frames/<tgt>_<src>/...      face swaps between identities of the same split
                                                (a split of one identity borrows a donor face seen nowhere else)
  OUT/dataset_json/NAME.json                    DeepfakeBench JSON, pycrl/train/val/test split by identity
  OUT/videos/<split>/{real,fake}/*.mp4          with --videos: whole clips, plain folder layout
  OUT/meta.json                                 the options used and the counts

  Label keys are NAME_real (0), NAME_FakeSBI (1) and NAME_FakeSwap (1). Val and test
  identities never appear in train. The same --seed gives the same PNG bytes. The faces are
  procedural drawings: good for tests, demos and pipeline checks, not for accuracy claims.

examples:
  # 40 identities, 8 frames each; 4 go to val and 4 to test (10 % each by default)
  pycrl train make-synthetic --out data/synth --identities 40 --frames-per-id 8

  # a tiny set with explicit held-out identities and MP4 clips of 16 frames
  pycrl train make-synthetic --out /tmp/tiny --identities 5 --frames-per-id 4 \\
      --val-identities 1 --test-identities 1 --videos --clip-frames 16

  # load it
  python -c "from pycrl.train.data import DeepfakeBenchDataset as D; \\
      print(len(D('data/synth/dataset_json/Synthetic.json', rgb_dir='data/synth', split='train')))"
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-synthetic", help="write a synthetic face dataset (DeepfakeBench layout, optional MP4 clips)",
        description="Write procedural faces with self-blended and face-swapped fakes, in the DeepfakeBench "
                    "layout (PNG frames + JSON), split pycrl/train/val/test by identity.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (becomes the rgb_dir)")
    p.add_argument("--identities", type=int, required=True, metavar="N", help="number of identities (real videos)")
    p.add_argument("--frames-per-id", type=int, required=True, metavar="K", help="PNG frames kept per video")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--val-identities", type=int, default=None, metavar="M",
                   help="identities held out for val (default 10%%, at least 1 from 3 identities on)")
    p.add_argument("--test-identities", type=int, default=None, metavar="T",
                   help="identities held out for test (default as for val)")
    p.add_argument("--name", default="Synthetic", help="dataset name: JSON file stem and label-key prefix")
    p.add_argument("--clip-frames", type=int, default=None, metavar="L",
                   help="length of each clip; the K PNG frames are spread over it with linspace (default 4*K)")
    p.add_argument("--videos", action="store_true", help="also write whole clips as MP4 (plain folder layout)")
    p.add_argument("--fps", type=int, default=25, help="frame rate of the MP4 clips (default 25)")
    p.add_argument("--workers", type=int, default=1, help="processes to render with (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name in DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pycrl.train.data.synthetic_writer import SyntheticSpec, write_synthetic_dataset

    spec = SyntheticSpec(out=args.out, identities=args.identities, frames_per_id=args.frames_per_id,
                         seed=args.seed, val_identities=args.val_identities, test_identities=args.test_identities,
                         name=args.name, clip_frames=args.clip_frames, videos=args.videos, fps=args.fps)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        def progress(total):
            return tqdm(total=total, desc="identities", unit="id", file=sys.stderr)
    try:
        summary = write_synthetic_dataset(spec, workers=args.workers, overwrite=args.overwrite, progress=progress)
    except (ValueError, FileExistsError) as exc:
        print(f"make-synthetic: error: {exc}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{s} {len(ids)}" for s, ids in summary["splits"].items())
    print(f"wrote {summary['frames']} frames of {spec.identities} identities ({sizes})")
    print(f"  rgb_dir: {summary['rgb_dir']}")
    print(f"  json:    {summary['json']}")
    if summary["video_dir"]:
        print(f"  videos:  {summary['video_dir']}/<split>/{{real,fake}}/*.mp4")
    return 0
