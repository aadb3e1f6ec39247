"""64-bit DCT perceptual hash of a frame (pHash), so replayed footage can be spotted by the API.

`phash(frame)` -> 16 lowercase hex digits; `hamming(a, b)` -> differing bits. Re-encoded or slightly
rescaled copies of a frame stay within a few bits; different scenes differ by ~32.
"""

from __future__ import annotations

import numpy as np


def phash(frame: np.ndarray) -> str:
    import cv2

    if frame.ndim == 3:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 2:
        gray = frame
    else:
        raise ValueError(f"phash: frame must be (H, W) or (H, W, 3), got shape {frame.shape}")
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    coeffs = cv2.dct(small)[:8, :8].reshape(-1)
    # The DC term carries only brightness; leaving it out of the median keeps the hash about structure.
    median = float(np.median(coeffs[1:]))
    bits = coeffs > median
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    if len(a) != 16 or len(b) != 16:
        raise ValueError(f"hamming: expected two 16-hex-digit hashes, got {a!r} and {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()
