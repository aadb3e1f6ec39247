"""Box geometry: pure, vectorised functions over numpy arrays.

Names carry layouts and shapes:

- ``xyxy``   (N, 4): corners ``x1, y1, x2, y2`` in pixels.
- ``xywh``   (N, 4): top-left corner plus size ``x, y, w, h`` (MOTChallenge style).
- ``cxcywh`` (N, 4): centre plus size ``cx, cy, w, h``.
- ``cxcyah`` (N, 4): centre, aspect ``w / h`` and height ``cx, cy, a, h`` (Kalman style).
- ``size_wh``: ``(width, height)`` of a frame.

Every function takes array-likes, validates the shape (raising ``ValueError`` naming the argument)
and returns float32. An empty input ``(0, 4)`` (or any zero-size array) gives an empty output of the
right shape. Boxes with ``x2 < x1`` or ``y2 < y1`` count as zero-area: their IoU with anything is 0,
never NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

__all__ = [
    "box_area",
    "box_ioa",
    "box_ioa_batch",
    "box_iou_batch",
    "centers_in",
    "centers_xy",
    "clip_xyxy",
    "cxcyah_to_xyxy",
    "cxcywh_to_xyxy",
    "inside_frame",
    "pairwise_center_distance",
    "scale_xyxy",
    "xywh_to_xyxy",
    "xyxy_to_cxcyah",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]


def _boxes(arr: Any, name: str) -> FloatArray:
    """(N, 4) float32 view of ``arr``; zero-size input becomes (0, 4)."""
    try:
        out = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to a float32 array: {exc}") from exc
    if out.size == 0:
        return out.reshape(0, 4)
    if out.ndim != 2 or out.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {out.shape}")
    return out


def _pair(value: Any, name: str) -> tuple[float, float]:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 2)
    if arr.shape[0] != 2:
        raise ValueError(f"{name} must be a scalar or a pair (x, y), got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(arr[0]), float(arr[1])


def box_area(xyxy: Any) -> FloatArray:
    """(N, 4) -> (N,) areas; inverted boxes have area 0."""
    b = _boxes(xyxy, "xyxy")
    wh = np.clip(b[:, 2:4] - b[:, 0:2], 0.0, None)
    return (wh[:, 0] * wh[:, 1]).astype(np.float32)


def _intersection(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, M) intersection areas of every box of ``a`` with every box of ``b``."""
    # Per-coordinate (N, 1) x (1, M) broadcasting: about 5x faster than (N, M, 2) slabs.
    iw = np.minimum(a[:, 2:3], b[:, 2].reshape(1, -1)) - np.maximum(a[:, 0:1], b[:, 0].reshape(1, -1))
    ih = np.minimum(a[:, 3:4], b[:, 3].reshape(1, -1)) - np.maximum(a[:, 1:2], b[:, 1].reshape(1, -1))
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    iw *= ih
    return iw


def box_iou_batch(xyxy_a: Any, xyxy_b: Any) -> FloatArray:
    """(N, 4), (M, 4) -> (N, M) intersection over union; 0 where the union is empty."""
    a = _boxes(xyxy_a, "xyxy_a")
    b = _boxes(xyxy_b, "xyxy_b")
    inter = _intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_ioa_batch(xyxy_a: Any, xyxy_b: Any) -> FloatArray:
    """(N, 4), (M, 4) -> (N, M) intersection over the area of each ``a`` box (how much of a is covered).

    A zero-area ``a`` box gives 0. Not symmetric: ``box_ioa_batch(a, b) != box_ioa_batch(b, a).T``.
    """
    a = _boxes(xyxy_a, "xyxy_a")
    b = _boxes(xyxy_b, "xyxy_b")
    inter = _intersection(a, b)
    area_a = np.broadcast_to(box_area(a)[:, None], inter.shape)
    out = np.zeros_like(inter)
    np.divide(inter, area_a, out=out, where=area_a > 0)
    return out.astype(np.float32)


box_ioa = box_ioa_batch  # the name DEVELOPERS.md's contract uses


def xyxy_to_cxcywh(xyxy: Any) -> FloatArray:
    b = _boxes(xyxy, "xyxy")
    wh = b[:, 2:4] - b[:, 0:2]
    return np.concatenate([b[:, 0:2] + wh / 2, wh], axis=1).astype(np.float32)


def cxcywh_to_xyxy(cxcywh: Any) -> FloatArray:
    b = _boxes(cxcywh, "cxcywh")
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1).astype(np.float32)


def xyxy_to_xywh(xyxy: Any) -> FloatArray:
    b = _boxes(xyxy, "xyxy")
    return np.concatenate([b[:, 0:2], b[:, 2:4] - b[:, 0:2]], axis=1).astype(np.float32)


def xywh_to_xyxy(xywh: Any) -> FloatArray:
    b = _boxes(xywh, "xywh")
    return np.concatenate([b[:, 0:2], b[:, 0:2] + b[:, 2:4]], axis=1).astype(np.float32)


def xyxy_to_cxcyah(xyxy: Any) -> FloatArray:
    """Aspect is ``w / h``; a zero-height box gets aspect 0 (not inf) so it stays finite."""
    b = _boxes(xyxy, "xyxy")
    wh = b[:, 2:4] - b[:, 0:2]
    aspect = np.zeros(b.shape[0], np.float32)
    np.divide(wh[:, 0], wh[:, 1], out=aspect, where=wh[:, 1] != 0)
    return np.stack([b[:, 0] + wh[:, 0] / 2, b[:, 1] + wh[:, 1] / 2, aspect, wh[:, 1]], axis=1).astype(
        np.float32
    )


def cxcyah_to_xyxy(cxcyah: Any) -> FloatArray:
    b = _boxes(cxcyah, "cxcyah")
    w = b[:, 2] * b[:, 3]
    h = b[:, 3]
    return np.stack([b[:, 0] - w / 2, b[:, 1] - h / 2, b[:, 0] + w / 2, b[:, 1] + h / 2], axis=1).astype(
        np.float32
    )


def clip_xyxy(xyxy: Any, size_wh: Any) -> FloatArray:
    """Clip corners into ``[0, w] x [0, h]``; ``size_wh`` is the frame's ``(width, height)``."""
    b = _boxes(xyxy, "xyxy")
    w, h = _pair(size_wh, "size_wh")
    if w <= 0 or h <= 0:
        raise ValueError(f"size_wh must be positive (width, height), got {size_wh!r}")
    out = b.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, w)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, h)
    return out


def inside_frame(xyxy: Any, size_wh: Any, margin_px: float = 0.0) -> npt.NDArray[np.bool_]:
    """(N,) True where a box lies at least ``margin_px`` inside every edge of the ``(width, height)``
    frame: boxes cut by the border show only part of the object."""
    b = _boxes(xyxy, "xyxy")
    w, h = _pair(size_wh, "size_wh")
    m = float(margin_px)
    return (b[:, 0] >= m) & (b[:, 1] >= m) & (b[:, 2] <= w - m) & (b[:, 3] <= h - m)


def scale_xyxy(xyxy: Any, scale_xy: Any) -> FloatArray:
    """Multiply x coordinates by ``sx`` and y by ``sy`` (e.g. boxes of a resized frame -> original).

    ``scale_xy`` is a scalar (same for both axes) or ``(sx, sy)``; both must be positive.
    """
    b = _boxes(xyxy, "xyxy")
    sx, sy = _pair(scale_xy, "scale_xy")
    if sx <= 0 or sy <= 0:
        raise ValueError(f"scale_xy must be positive, got {scale_xy!r}")
    return (b * np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)


def centers_xy(xyxy: Any) -> FloatArray:
    """(N, 4) -> (N, 2) box centres."""
    b = _boxes(xyxy, "xyxy")
    return ((b[:, 0:2] + b[:, 2:4]) / 2).astype(np.float32)


def centers_in(xyxy: Any, regions_xyxy: Any) -> npt.NDArray[np.bool_]:
    """(N, 4), (M, 4) -> (N,) True where a box's centre lies inside (or on the edge of) any region."""
    c = centers_xy(_boxes(xyxy, "xyxy"))
    r = _boxes(regions_xyxy, "regions_xyxy")
    if len(c) == 0 or len(r) == 0:
        return np.zeros(len(c), bool)
    x, y = c[:, 0:1], c[:, 1:2]
    inside = (x >= r[None, :, 0]) & (x <= r[None, :, 2]) & (y >= r[None, :, 1]) & (y <= r[None, :, 3])
    return np.asarray(inside.any(axis=1), bool)


def pairwise_center_distance(xyxy_a: Any, xyxy_b: Any) -> FloatArray:
    """(N, 4), (M, 4) -> (N, M) Euclidean distance between box centres in pixels."""
    ca = centers_xy(_boxes(xyxy_a, "xyxy_a"))
    cb = centers_xy(_boxes(xyxy_b, "xyxy_b"))
    diff = ca[:, None, :] - cb[None, :, :]
    return np.sqrt((diff * diff).sum(axis=-1)).astype(np.float32)
