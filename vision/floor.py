"""A camera's image -> the pen's floor plan: one shared coordinate frame (centimetres) for every camera.

Each camera gets a plane homography from at least four floor points whose pixel positions the installer
reads off a test frame and whose plan positions (cm, any origin the farm picks, the same for every camera)
are measured with a tape: pen corners, feeder feet, painted marks. Points on the floor only: the mapping
is exact for things lying on the floor (a carcass) and off by the height of anything standing.

Pure functions over arrays, float64 (a homography fitted in float32 loses centimetres across a pen).
``image_xy`` (N, 2) pixels; ``floor_xy_cm`` (N, 2) centimetres on the plan; ``h_image_to_floor`` (3, 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
MIN_POINTS = 4


def _points(arr: Any, name: str) -> F64:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds a non-finite value")
    return a


def _normaliser(xy: F64) -> F64:
    """Similarity moving the points' centroid to 0 and their mean distance to sqrt(2) (Hartley)."""
    c = xy.mean(axis=0)
    d = float(np.mean(np.hypot(*(xy - c).T)))
    s = np.sqrt(2.0) / d if d > 0 else 1.0
    return np.array([[s, 0.0, -s * c[0]], [0.0, s, -s * c[1]], [0.0, 0.0, 1.0]])


def fit_homography(image_xy: Any, floor_xy_cm: Any) -> F64:
    """The (3, 3) homography taking image pixels to floor centimetres, by normalised DLT (least squares
    over N >= 4 pairs). Raises ValueError when fewer than 4 pairs are given, or when they do not fix a
    plane mapping (three or more of them on one line, repeated points)."""
    src = _points(image_xy, "image_xy")
    dst = _points(floor_xy_cm, "floor_xy_cm")
    if len(src) != len(dst):
        raise ValueError(f"image_xy has {len(src)} points but floor_xy_cm has {len(dst)}")
    if len(src) < MIN_POINTS:
        raise ValueError(f"a floor homography needs at least {MIN_POINTS} point pairs, got {len(src)}")
    ts, td = _normaliser(src), _normaliser(dst)
    s = np.column_stack([src, np.ones(len(src))]) @ ts.T
    d = np.column_stack([dst, np.ones(len(dst))]) @ td.T
    rows = []
    for (x, y, _), (u, v, _) in zip(s, d, strict=True):
        rows.append([-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u])
        rows.append([0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v])
    _, sv, vt = np.linalg.svd(np.asarray(rows))
    # A well-posed fit leaves exactly one null direction: a second small singular value means the
    # points leave the mapping free (collinear or repeated points).
    if sv[7] <= 1e-9 * sv[0]:
        raise ValueError("floor points do not fix a homography: give 4 or more points, no 3 of them on one line")
    hn = vt[-1].reshape(3, 3)
    h: F64 = np.linalg.inv(td) @ hn @ ts
    if abs(h[2, 2]) < 1e-12:
        raise ValueError("floor points map a pixel to infinity: check that they are all on the floor in view")
    h = h / h[2, 2]
    det = float(np.linalg.det(h[:2, :2]))
    if not np.isfinite(det) or abs(det) < 1e-12:
        raise ValueError("floor points give a degenerate homography (no 3 of them may be on one line)")
    return h


def image_to_floor(h_image_to_floor: Any, image_xy: Any) -> F64:
    """Image points (N, 2) -> floor points (N, 2) in cm. Points on or beyond the horizon give NaN."""
    h = np.asarray(h_image_to_floor, dtype=np.float64)
    if h.shape != (3, 3):
        raise ValueError(f"h_image_to_floor must have shape (3, 3), got {h.shape}")
    xy = _points(image_xy, "image_xy")
    p = np.column_stack([xy, np.ones(len(xy))]) @ h.T
    w = p[:, 2:3]
    out = np.full((len(xy), 2), np.nan)
    ok = np.abs(w[:, 0]) > 1e-12
    out[ok] = p[ok, :2] / w[ok]
    return out


def reprojection_error_cm(h_image_to_floor: Any, image_xy: Any, floor_xy_cm: Any) -> F64:
    """Per pair: distance (cm) between the mapped image point and its measured floor point."""
    got = image_to_floor(h_image_to_floor, image_xy)
    want = _points(floor_xy_cm, "floor_xy_cm")
    if len(got) != len(want):
        raise ValueError(f"image_xy has {len(got)} points but floor_xy_cm has {len(want)}")
    return np.hypot(*(got - want).T)
