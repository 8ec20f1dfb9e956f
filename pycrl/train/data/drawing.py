"""Anti-aliased polygon helpers on float RGB canvases (sub-pixel coordinates)."""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # fractional bits for cv2 drawing, so landmarks keep sub-pixel precision
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def smooth_closed(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """Closed Catmull-Rom curve through ``points``: landmark polygons drawn without corners."""
    p = np.asarray(points, dtype=np.float64)
    p0, p1, p2, p3 = np.roll(p, 1, 0), p, np.roll(p, -1, 0), np.roll(p, -2, 0)
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None, None]
    t2, t3 = t * t, t * t * t
    curve = 0.5 * (
        2 * p1
        + (-p0 + p2) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
    )
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def poly_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Float coverage mask in [0, 1] of a filled polygon, edges anti-aliased."""
    m = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(m, [_fixed(points)], 255, cv2.LINE_AA, _SHIFT)
    return m.astype(np.float32) / 255.0


def paint(canvas: np.ndarray, coverage: np.ndarray, colour, alpha: float = 1.0) -> None:
    """Blend a flat colour into ``canvas`` (float32 HxWx3) where ``coverage`` says, in place."""
    rows = np.flatnonzero(coverage.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(coverage.any(axis=0))
    # work on the covered box only: most shapes are small and full-frame blends dominate the cost
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a = (coverage[box] * alpha)[..., None]
    roi = canvas[box]
    roi *= 1.0 - a
    roi += a * np.asarray(colour, dtype=np.float32)


def fill(canvas: np.ndarray, points: np.ndarray, colour, alpha: float = 1.0) -> np.ndarray:
    """Fill a polygon; returns its coverage mask for later clipping."""
    cov = poly_mask(canvas.shape[:2], points)
    paint(canvas, cov, colour, alpha)
    return cov


def stroke(canvas: np.ndarray, points: np.ndarray, colour, thickness: float, alpha: float = 1.0,
           closed: bool = False) -> None:
    """Draw an anti-aliased polyline."""
    m = np.zeros(canvas.shape[:2], dtype=np.uint8)
    cv2.polylines(m, [_fixed(points)], closed, 255, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)
    paint(canvas, m.astype(np.float32) / 255.0, colour, alpha)


def ellipse_points(centre, axes, angle: float = 0.0, n: int = 32) -> np.ndarray:
    """Points of an ellipse (axes are half-lengths), for drawing through the same path as polygons."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)
