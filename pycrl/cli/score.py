"""``pycrl score``: score files, folders and globs, here or on a Ray cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from pycrl.detector import Detector
from pycrl.distributed.ray_job import RayUnavailable, score_with_ray
from pycrl.errors import ModelError, OptionError
from pycrl.heatmaps import write_overlays
from pycrl.media.inputs import expand_inputs
from pycrl.model_card import ModelCard
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.options import ScoringOptions, add_arguments, from_arguments
from pycrl.report import write_index, write_report


def register(sub) -> None:
    score = sub.add_parser(
        "score", help="score videos and images for face manipulation",
        description="Decode each input, find and align faces, and score them. One result per input, "
                    "in input order; errors and inputs without faces are results too.",
        epilog="output: one line per input on stdout ('fake 0.912  path  (32 frames, 32 faces)'); "
               "--jsonl adds one JSON object per input (score, label, per-face scores with "
               "timestamps and boxes, compactness, status, timings, model, backend).",
    )
    score.add_argument("paths", nargs="+", metavar="PATH", help="files, folders (searched recursively) or globs")
    score.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"model folder, or {DEFAULT_MODEL!r} (the bundled real-face model; the default)")
    add_arguments(score.add_argument_group("scoring options"))
    score.add_argument("--jsonl", metavar="FILE", help="write one JSON object per input to FILE ('-' for stdout)")
    score.add_argument("--heatmaps", metavar="DIR", help="write PNG overlays of the reconstruction difference per face")
    score.add_argument("--report", metavar="DIR", help="write one self-contained HTML page per input (verdict, score "
                                                       "over time per person, the most suspicious faces beside their "
                                                       "heatmaps, the record) and DIR/index.html")
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
    score.set_defaults(func=run)


def _printable(text: str) -> str:
    """A name as any terminal can print it: bytes that are not UTF-8 (kept by Python as lone
    surrogates) shown as ``\\xNN`` instead of crashing a strict UTF-8 stdout."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _one_line(text: str, limit: int = 500) -> str:
    """A message as one printable line: runtime libraries' errors span several."""
    line = _printable(" ".join(text.split()))
    return line if len(line) <= limit else line[:limit] + "..."


def _human(result) -> str:
    if result.status == "ok":
        faces = len(result.faces)
        line = f"{result.label:<4} {result.score:.3f}  {result.source}  ({result.frames_sampled} frames, {faces} faces)"
        if result.score_rule == "person" and len(result.tracks) > 1:
            people = ", ".join(f"#{t.id} {t.label} {t.score:.3f}" for t in result.tracks if t.counted)
            line += f"\n      people: {people}"
        for notice in result.notices:
            line += f"\n      note: {notice}"
        cred = result.content_credentials
        if cred and cred["state"] not in ("absent", "unsupported"):
            said = f", declares {cred['declares']}" if cred.get("declares") else ""
            line += f"\n      content credentials: {cred['state']}{said} ({cred.get('claim_generator') or '?'})"
    else:
        line = f"{result.status:<7}       {result.source}  ({result.message})"
    return _printable(line)


def _options(args: argparse.Namespace) -> ScoringOptions:
    """The scoring options given on the command line (``--heatmaps`` keeps a 32² map per face,
    ``--report`` a 64² one)."""
    return from_arguments(args, heatmap_size=64 if args.report else 32 if args.heatmaps else 0)


def run(args: argparse.Namespace) -> int:
    if args.ray:
        return _run_ray(args)
    stray = [flag for flag in RAY_OPTIONS if getattr(args, RAY_OPTIONS[flag]) is not None]
    if stray:
        print(f"pycrl score: {', '.join(stray)} need --ray", file=sys.stderr)
        return 2
    try:
        options = _options(args)
    except OptionError as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 2
    inputs, unmatched = expand_inputs(args.paths)
    for pat in unmatched:
        print(f"pycrl score: nothing matches {_printable(repr(pat))}", file=sys.stderr)
    if not inputs:
        print("pycrl score: no inputs", file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else None
    if report is not None:  # made before the model loads: a bad folder fails at once
        try:
            report.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            print(f"pycrl score: cannot write --report {_printable(args.report)}: {err.strerror or err}",
                  file=sys.stderr)
            return 2
    pages: list = []
    jsonl = None
    if args.jsonl:  # opened before the model loads: a bad path fails at once
        try:
            jsonl = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")
        except OSError as err:
            print(f"pycrl score: cannot write --jsonl {_printable(args.jsonl)}: {err.strerror or err}",
                  file=sys.stderr)
            return 2
    try:
        det = Detector(args.model, options)
    except OptionError as err:  # an option the model cannot honour (an operating point it lacks)
        print(f"pycrl score: {err}", file=sys.stderr)
        if jsonl not in (None, sys.stdout):
            jsonl.close()
        return 2
    except Exception as err:  # the model folder, its graph or the backend
        print(f"pycrl score: cannot load the model: {type(err).__name__}: {_one_line(str(err))}", file=sys.stderr)
        if jsonl not in (None, sys.stdout):
            jsonl.close()
        return 1
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
                if report is not None:
                    pages.append((result, write_report(result, report, len(pages))))
                    for face in result.faces:  # the index needs the verdicts, not the pictures
                        face.crop = face.heatmap = None
                bar.write(_human(result), file=human)
                bar.update(1)
    finally:
        bar.close()
        if jsonl not in (None, sys.stdout):
            jsonl.close()
        if report is not None and pages:
            print(f"report: {write_index(pages, report)}", file=sys.stderr)
    print(f"{len(inputs)} inputs: {counts['ok']} scored, {counts['no_face']} without faces, "
          f"{counts['error']} errors  [{det.model_id} on {det.backend}]", file=sys.stderr)
    return 0


# Options of `pycrl score` that only --ray reads (flag -> argparse dest).
RAY_OPTIONS = {"--address": "address", "--dest": "dest", "--format": "format", "--actors": "actors"}


def _ray_options(options: ScoringOptions) -> dict:
    """The options as keywords for the actors' detectors (only those that differ from the defaults)."""
    default = ScoringOptions()
    return {n: getattr(options, n) for n in ScoringOptions.names() if getattr(options, n) != getattr(default, n)}


def _run_ray(args: argparse.Namespace) -> int:
    if args.jsonl or args.heatmaps or args.report:
        print("pycrl score: --jsonl, --heatmaps and --report do not apply with --ray (records go to --dest)",
              file=sys.stderr)
        return 2
    dest = args.dest or "pycrl-scores"
    try:
        options = _options(args)
    except OptionError as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 2
    try:  # an operating point the model lacks is a usage error, found before any actor starts
        ModelCard.read(args.model).decision(options.operating_point, options.threshold)
    except OptionError as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 2
    except ModelError as err:
        print(f"pycrl score: {err}", file=sys.stderr)
        return 1
    try:
        summary = score_with_ray(args.paths, dest, args.model, address=args.address,
                                 output_format=args.format or "jsonl", num_actors=args.actors,
                                 progress=not args.no_progress, **_ray_options(options))
    except (RayUnavailable, ModelError) as err:
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
