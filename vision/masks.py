"""Detection masks: regions of a camera's view where detections are ignored (a DVR's burnt-in clock and
camera name, a neighbour's pen seen through the fence). A static overlay that the detector takes for a
bird never moves, so health signals would call it dead; masking it is part of setting up a camera.

Regions are boxes in fractions of the frame, ``(x0, y0, x1, y1)`` with 0 <= x0 < x1 <= 1 (same for y),
so they survive a change of stream resolution. A detection whose centre lies in a region is dropped
before tracking."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from vision.geometry import FloatArray


def _check(region: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = region
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError(f"a mask is (x0, y0, x1, y1) in fractions of the frame with 0 <= x0 < x1 <= 1 and "
                         f"0 <= y0 < y1 <= 1, got {region}")
    return region


MaskXyxyn = Annotated[tuple[float, float, float, float], AfterValidator(_check)]


def masks_to_pixels(masks_xyxyn: list[tuple[float, float, float, float]], size_wh: tuple[int, int]) -> FloatArray:
    """(M, 4) pixel boxes of the masks in a frame of ``(width, height)``."""
    w, h = size_wh
    out = np.asarray(masks_xyxyn, np.float32).reshape(-1, 4) * np.array([w, h, w, h], np.float32)
    return out.astype(np.float32)
