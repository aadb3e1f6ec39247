"""Frame fingerprints, so the API can spot replayed footage.

Two 64-bit DCT hashes, both 16 lowercase hex digits on the wire (`FrameFingerprint.phash`):

- `phash(frame)`: the classic whole-frame perceptual hash. Stateless, but for a fixed farm camera
  the static background dominates it: honest frames hours apart often hash within 3 bits, so it
  cannot tell "the same footage again" from "the same barn, new moments". Kept for tools and tests.
- `MotionFingerprint`: what the edge sends. Per camera it learns the background slowly (an
  exponential average with time constant `tau_s` of source time) and hashes the frame with that
  background removed, i.e. the birds where they are now. Bands at the top and bottom are blanked
  because DVR timestamp overlays live there: a replay with a re-drawn clock must still match.

Measured on `datasets.synth` footage (8-40 birds, day and IR night, bursts 40 min apart): of
23,760 honest sampled frame pairs >= 1 h apart, 15 are within 6 bits (median 32); replayed frames
(re-encoded as JPEG q35 with a new overlay, or upscaled) stay within 6. The API's replay rule
(`api.services.alerts.replay_run`) then needs a run of them at one time shift.
`tests/edge/test_edge_fingerprint.py` keeps the separation from regressing.
"""

from __future__ import annotations

import math

import numpy as np

_SIDE = 64  # the frame is reduced to _SIDE x _SIDE grey before hashing
_HASH_HEX = 16
_MIN_ENERGY = 0.05  # mean |residual| in grey levels below which there is nothing to hash


def _bits_hex(coeffs: np.ndarray) -> str:
    """8x8 low-frequency DCT block -> 64 bits, each "above the median of the AC terms"."""
    flat = coeffs[:8, :8].reshape(-1)
    # The DC term carries only overall brightness; leaving it out of the median keeps the hash about structure.
    median = float(np.median(flat[1:]))
    value = 0
    for bit in flat > median:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def _gray(frame: np.ndarray, where: str) -> np.ndarray:
    import cv2

    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)  # type: ignore[no-any-return]
    if frame.ndim == 2:
        return frame
    raise ValueError(f"{where}: frame must be (H, W) or (H, W, 3), got shape {frame.shape}")


def phash(frame: np.ndarray) -> str:
    """Whole-frame 64-bit pHash (see the module docstring for why the edge does not send it)."""
    import cv2

    small = cv2.resize(_gray(frame, "phash"), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    return _bits_hex(cv2.dct(small))


class MotionFingerprint:
    """Background-removed 64-bit DCT hash of one camera's frames.

    Call `update(frame, ts)` for every processed frame (it learns the background; cheap: one
    resize), and `fingerprint()` for the latest frame when a sample is wanted (one 64x64 DCT).
    Everything is a function of the frames and their source timestamps, so the same footage fed
    again reproduces the same hashes once the background has caught up (a few `tau_s`).
    """

    def __init__(self, *, tau_s: float = 600.0, band: float = 0.1) -> None:
        if not (tau_s > 0 and math.isfinite(tau_s)):
            raise ValueError(f"MotionFingerprint: tau_s must be a positive number of seconds, got {tau_s}")
        if not 0.0 <= band < 0.5:
            raise ValueError(f"MotionFingerprint: band must be in [0, 0.5), got {band}")
        self.tau_s = float(tau_s)
        self.band = round(band * _SIDE)
        self._bg: np.ndarray | None = None
        self._last_ts: float | None = None
        self._residual: np.ndarray | None = None

    def reset(self) -> None:
        self._bg = self._last_ts = self._residual = None

    def update(self, frame: np.ndarray, ts: float) -> None:
        import cv2

        small = cv2.resize(_gray(frame, "MotionFingerprint.update"), (_SIDE, _SIDE),
                           interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._bg is None or self._last_ts is None:
            self._bg = small.copy()
            alpha = 0.0
        else:
            # Source time, not frame count: the hash must not depend on the processing rate.
            alpha = 1.0 - math.exp(-max(float(ts) - self._last_ts, 0.0) / self.tau_s)
        residual = small - self._bg
        if self.band:
            residual[: self.band] = 0.0
            residual[_SIDE - self.band:] = 0.0
        self._residual = residual
        self._bg += alpha * (small - self._bg)
        self._last_ts = float(ts)

    @property
    def energy(self) -> float:
        """Mean absolute residual of the latest frame (grey levels): how much is moving."""
        return float(np.mean(np.abs(self._residual))) if self._residual is not None else 0.0

    def fingerprint(self) -> str | None:
        """Hash of the latest frame, or None when nothing differs from the background (the first
        frame of a run, a perfectly still scene): an all-equal residual would hash to a constant."""
        import cv2

        if self._residual is None:
            raise ValueError("MotionFingerprint.fingerprint: call update(frame, ts) first")
        if self.energy < _MIN_ENERGY:
            return None
        return _bits_hex(cv2.dct(self._residual))


def hamming(a: str, b: str) -> int:
    if len(a) != _HASH_HEX or len(b) != _HASH_HEX:
        raise ValueError(f"hamming: expected two 16-hex-digit hashes, got {a!r} and {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()
