"""Camera calibration for size -> weight: how many pixels one centimetre of floor spans.

Two ways to calibrate a camera looking down at the litter:
- `px_per_cm` measured directly (e.g. a tape measure in a test frame), or
- a reference object of known size visible in the frame (`reference_length_px`, `reference_length_cm`,
  e.g. a 60 cm feeder pan or a painted 50 cm mark on the wall base).

The weight estimate is an allometric curve of body length (beak to tail, seen from above):

    weight_g = a * length_cm ** b      with a = 0.0385, b = 3.0 by default

Birds grow roughly isometrically, so weight scales with the cube of length. The constants are set so a
38 cm (top view) broiler at market age weighs ~2.1 kg and a 20 cm three-week bird ~0.31 kg, in line
with published broiler growth tables (Ross 308: ~0.3 kg at 14 days, ~2.1 kg at 35 days) and length
measurements from top-view images. It is an approximation: the curve should be refitted per breed with
a few weighed birds (`fit_allometric`). Because weight ~ length**3, a relative length error e gives
about 3e relative weight error; `weight_band` reports that plus the curve's own error (`model_rel_error`).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class CalibrationConfig(BaseModel):
    """Pixels per centimetre of the floor plane, directly or via a reference object; plus the
    length -> weight curve. Without any calibration, weights are not reported (None)."""

    model_config = ConfigDict(extra="forbid")

    px_per_cm: float | None = Field(default=None, gt=0.0, le=1000.0)
    reference_length_px: float | None = Field(default=None, gt=0.0, le=100_000.0)
    reference_length_cm: float | None = Field(default=None, gt=0.0, le=10_000.0)
    allometric_a: float = Field(default=0.0385, gt=0.0, le=10.0, description="weight_g = a * length_cm ** b")
    allometric_b: float = Field(default=3.0, ge=1.0, le=4.0)
    model_rel_error: float = Field(
        default=0.12, ge=0.0, le=1.0, description="relative error of the curve itself"
    )
    min_weight_g: float = Field(default=20.0, ge=0.0, description="clamp: below this is a detection error")
    max_weight_g: float = Field(default=8000.0, gt=0.0)

    @model_validator(mode="after")
    def _reference_pair(self) -> CalibrationConfig:
        if (self.reference_length_px is None) != (self.reference_length_cm is None):
            raise ValueError("calibration: give both reference_length_px and reference_length_cm, or neither")
        if self.px_per_cm is not None and self.reference_length_px is not None:
            raise ValueError("calibration: give px_per_cm or a reference object, not both")
        if self.min_weight_g >= self.max_weight_g:
            raise ValueError("calibration: min_weight_g must be < max_weight_g")
        return self

    @property
    def pixels_per_cm(self) -> float | None:
        if self.px_per_cm is not None:
            return float(self.px_per_cm)
        if self.reference_length_px is not None and self.reference_length_cm is not None:
            return float(self.reference_length_px) / float(self.reference_length_cm)
        return None

    @property
    def calibrated(self) -> bool:
        return self.pixels_per_cm is not None


def length_cm(length_px: float, calib: CalibrationConfig) -> float | None:
    """Body length in cm from pixels, or None without calibration."""
    ppc = calib.pixels_per_cm
    if ppc is None:
        return None
    if length_px < 0:
        raise ValueError(f"length_px must be >= 0, got {length_px}")
    return float(length_px) / ppc


def weight_from_length_cm(length: float, calib: CalibrationConfig) -> float:
    """Allometric weight (g) of a bird of the given body length (cm), clamped to the configured range."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    w = calib.allometric_a * float(length) ** calib.allometric_b
    return float(min(calib.max_weight_g, max(calib.min_weight_g, w)))


def weight_band(
    length_px: float, calib: CalibrationConfig, length_rel_error: float = 0.0
) -> tuple[float, float, float] | None:
    """(weight_g, low, high) for a bird of length_px, or None without calibration.

    length_rel_error is the relative spread of the length measurement (e.g. IQR/median over frames);
    it is propagated through the power law (dW/W = b dL/L) and combined with the curve's own error.
    """
    lc = length_cm(length_px, calib)
    if lc is None:
        return None
    w = weight_from_length_cm(lc, calib)
    rel = float(np.hypot(calib.allometric_b * max(0.0, length_rel_error), calib.model_rel_error))
    lo = max(0.0, w * (1.0 - rel))
    hi = w * (1.0 + rel)
    return w, lo, hi


def fit_allometric(lengths_cm: np.ndarray, weights_g: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of log w = log a + b log L on weighed birds; returns (a, b)."""
    lengths = np.asarray(lengths_cm, np.float64).reshape(-1)
    weights = np.asarray(weights_g, np.float64).reshape(-1)
    if lengths.shape != weights.shape or lengths.size < 2:
        raise ValueError("fit_allometric needs at least 2 (length, weight) pairs of equal count")
    if np.any(lengths <= 0) or np.any(weights <= 0):
        raise ValueError("fit_allometric: lengths and weights must be > 0")
    b, log_a = np.polyfit(np.log(lengths), np.log(weights), 1)
    return float(np.exp(log_a)), float(b)
