"""Reports a reviewer reads at a glance: one self-contained HTML page per input, and an index.

A page holds the verdict, a score-over-time plot per person (inline SVG), the most suspicious
face crops beside their reconstruction-difference heatmaps (JPEG data URIs, 256 px), and the
record. Nothing is loaded from anywhere: the page's Content-Security-Policy allows inline styles
and data: images only, and every text taken from an input (its name, messages) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import cv2
import numpy as np

from pycrl.fileio import atomic_write
from pycrl.heatmaps import overlay
from pycrl.results import Result

#: Side of the face pictures on a page, in pixels.
PICTURE = 256
#: The most suspicious faces shown per page.
TOP_FACES = 6
_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:20px;word-break:break-all}.verdict{font-size:28px;font-weight:700;padding:10px 16px;
border-radius:6px;display:inline-block}.fake{background:#fde2e1;color:#a4161a}.real{background:#e3f4e1;
color:#1b5e20}.other{background:#eee;color:#444}table{border-collapse:collapse}td,th{padding:3px 10px;
text-align:left;border-bottom:1px solid #eee}.faces{display:flex;flex-wrap:wrap;gap:18px}.face{font-size:13px}
.face img{width:256px;height:256px;image-rendering:auto;border:1px solid #ccc}pre{background:#f6f6f6;
padding:10px;overflow:auto;max-height:420px;font-size:12px}.note{color:#8a5a00}
"""


def _picture(rgb: np.ndarray, side: int = PICTURE) -> str:
    """``rgb`` scaled to ``side`` pixels as a JPEG data URI (~20 kB; a PNG would be ~150 kB)."""
    big = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(big[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def page_name(index: int, source: str) -> str:
    """A file name for input ``index``: its position, then a tame version of its stem."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:60].strip("._") or "input"
    return f"{index:05d}-{stem}.html"


def _verdict(result: Result) -> str:
    if result.status != "ok":
        return f'<span class="verdict other">{_e(result.status.replace("_", " "))}</span>'
    return (f'<span class="verdict {_e(result.label)}">{_e(result.label)} {result.score:.3f}</span> '
            f"threshold {result.threshold:.3f} (operating point {_e(result.operating_point)})")


def score_plot(result: Result, width: int = 720, height: int = 220) -> str:
    """Score over time, one line per person, with the threshold dashed; '' for a single frame."""
    points = [p for t in result.tracks for p in t.timeline]
    if result.frames_sampled < 2 or not points:
        return ""
    left, right, top, bottom = 44, 12, 10, 28
    end = max(max(p.timestamp for p in points), 1e-6)

    def x(t: float) -> float:
        return left + (width - left - right) * t / end

    def y(s: float) -> float:
        return top + (height - top - bottom) * (1.0 - s)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="score over time per person">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             f'fill="#fafafa" stroke="#ccc"/>']
    for s in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 6}" y="{y(s) + 4:.1f}" font-size="11" text-anchor="end">{s:.1f}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">0 s</text>'
                 f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">{end:.1f} s</text>')
    if result.threshold is not None:
        ty = y(result.threshold)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#555" '
                     f'stroke-dasharray="5,4"/><text x="{width - right - 4}" y="{ty - 4:.1f}" font-size="11" '
                     f'text-anchor="end">threshold</text>')
    for track in result.tracks:
        colour = _COLOURS[track.id % len(_COLOURS)]
        xy = " ".join(f"{x(p.timestamp):.1f},{y(p.score):.1f}" for p in track.timeline)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{xy}"/>')
        for p in track.timeline:
            parts.append(f'<circle cx="{x(p.timestamp):.1f}" cy="{y(p.score):.1f}" r="3" fill="{colour}">'
                         f"<title>person {track.id}, {p.timestamp:.2f} s: {p.score:.3f}</title></circle>")
    parts.append("</svg>")
    legend = " ".join(f'<span style="color:{_COLOURS[t.id % len(_COLOURS)]}">&#9632;</span> person {t.id}: '
                      f"{_e(t.label)} {t.score:.3f} ({t.faces} faces{'' if t.counted else ', not counted'})"
                      for t in result.tracks)
    return "".join(parts) + f"<p>{legend}</p>"


def _faces(result: Result, top: int) -> str:
    shown = sorted((f for f in result.faces if f.crop is not None), key=lambda f: -f.score)[:top]
    if not shown:
        return ""
    cells = []
    for face in shown:
        assert face.crop is not None
        heat = (f'<img alt="reconstruction difference" src="{_picture(overlay(face.crop, face.heatmap))}">'
                if face.heatmap is not None else "")
        cells.append(f'<div class="face"><img alt="face crop" src="{_picture(face.crop)}"> {heat}<br>'
                     f"person {face.track}, frame {face.frame_index} ({face.timestamp:.2f} s): "
                     f"<b>{face.score:.3f}</b></div>")
    return ("<h2>Most suspicious faces</h2><p>Each aligned face beside where the model reconstructs it "
            "badly (red: a large reconstruction difference; the model learnt to reconstruct real faces "
            f'only).</p><div class="faces">{"".join(cells)}</div>')


def render_page(result: Result, *, top: int = TOP_FACES) -> str:
    rows = [("source", result.source), ("status", result.status), ("model", result.model),
            ("backend", result.backend), ("frames sampled", result.frames_sampled),
            ("faces scored", len(result.faces)), ("people", len(result.tracks)),
            ("score rule", result.score_rule), ("aggregation", result.aggregation)]
    if result.message:
        rows.append(("message", result.message))
    cred = result.content_credentials
    if cred:
        said = ", ".join(f"{k.replace('_', ' ')}: {cred[k]}" for k in ("declares", "claim_generator", "signer")
                         if cred.get(k))
        rows.append(("content credentials (C2PA)", f"{cred['state']}" + (f" ({said})" if said else "")
                     + (f"; failures: {', '.join(cred['failures'])}" if cred.get("failures") else "")))
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in result.notices)
    plot = score_plot(result)
    record = json.dumps(result.to_dict(), indent=1)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>pycrl: {_e(result.source)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(result.source)}</h1><p>{_verdict(result)}</p>{notes}"
            + (f"<h2>Score over time</h2>{plot}" if plot else "")
            + _faces(result, top)
            + f"<h2>Details</h2><table>{table}</table><details><summary>The record (JSON)</summary>"
            f"<pre>{_e(record)}</pre></details></body></html>")


def write_report(result: Result, folder: Path, index: int) -> Path:
    """Write the page of input number ``index`` into ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / page_name(index, result.source)
    atomic_write(path, render_page(result))
    return path


def write_index(entries: list[tuple[Result, Path]], folder: Path) -> Path:
    """``index.html``: every input with its verdict, most suspicious first, linking to its page."""
    def key(entry):
        r = entry[0]
        return (r.status != "ok", -(r.score or 0.0))

    rows = []
    for result, page in sorted(entries, key=key):
        score = f"{result.score:.3f}" if result.score is not None else ""
        label = result.label or result.status.replace("_", " ")
        rows.append(f'<tr><td><a href="{_e(page.name)}">{_e(result.source)}</a></td>'
                    f'<td class="{_e(result.label or "other")}">{_e(label)}</td><td>{score}</td>'
                    f"<td>{len(result.tracks)}</td></tr>")
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}"><title>pycrl report</title>'
            f"<style>{_STYLE}</style></head><body><h1>pycrl report: {len(entries)} inputs</h1>"
            f"<table><tr><th>input</th><th>verdict</th><th>score</th><th>people</th></tr>{''.join(rows)}"
            f"</table></body></html>")
    path = folder / "index.html"
    atomic_write(path, text)
    return path
