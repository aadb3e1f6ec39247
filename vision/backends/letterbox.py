"""Letterbox resize (keep aspect, pad to a square-ish input) and its inverse on boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LetterboxParams:
    scale: float
    pad_x: float
    pad_y: float
    size_wh: tuple[int, int]  # original frame size


def letterbox_params(size_wh: tuple[int, int], input_wh: tuple[int, int]) -> LetterboxParams:
    w, h = size_wh
    iw, ih = input_wh
    if w <= 0 or h <= 0:
        raise ValueError(f"letterbox: frame size must be positive, got {size_wh}")
    scale = min(iw / w, ih / h)
    new_w, new_h = round(w * scale), round(h * scale)
    return LetterboxParams(scale=scale, pad_x=(iw - new_w) / 2, pad_y=(ih - new_h) / 2, size_wh=(w, h))


def letterbox(
    frame_bgr: np.ndarray, input_wh: tuple[int, int], pad_value: int = 114, *, out: np.ndarray | None = None
) -> tuple[np.ndarray, LetterboxParams]:
    """Resize frame into input_wh keeping aspect ratio, padding with grey as ultralytics does.

    out: an (ih, iw, 3) uint8 buffer to write into (a video stream reuses one: no allocation per frame);
    a new array when None."""
    import cv2

    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"letterbox: frame must be (H, W, 3) BGR, got shape {frame_bgr.shape}")
    h, w = frame_bgr.shape[:2]
    p = letterbox_params((w, h), input_wh)
    new_w, new_h = round(w * p.scale), round(h * p.scale)
    iw, ih = input_wh
    if out is None:
        out = np.empty((ih, iw, 3), dtype=np.uint8)
    elif out.shape != (ih, iw, 3) or out.dtype != np.uint8:
        raise ValueError(f"letterbox: out must be uint8 of shape {(ih, iw, 3)}, got {out.dtype} {out.shape}")
    top, left = round(p.pad_y - 0.1), round(p.pad_x - 0.1)
    # Only the borders are padding: paint them, and resize straight into the middle.
    out[:top] = pad_value
    out[top + new_h :] = pad_value
    out[top : top + new_h, :left] = pad_value
    out[top : top + new_h, left + new_w :] = pad_value
    inner = out[top : top + new_h, left : left + new_w]
    if (new_w, new_h) == (w, h):
        inner[...] = frame_bgr
    else:
        cv2.resize(frame_bgr, (new_w, new_h), dst=inner, interpolation=cv2.INTER_LINEAR)
    return out, p


def unletterbox_xyxy(xyxy: np.ndarray, p: LetterboxParams) -> np.ndarray:
    """Map boxes from letterboxed input pixels back to the original frame, clipped to it."""
    out = xyxy.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - p.pad_x) / p.scale
    out[:, [1, 3]] = (out[:, [1, 3]] - p.pad_y) / p.scale
    w, h = p.size_wh
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out
