"""Camera calibration: how many pixels one centimetre of floor spans (size -> weight), and optionally
where the camera's floor lies on the pen's plan (`floor_points`, see `vision.floor`).

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

from vision.floor import fit_homography, reprojection_error_cm

FLOOR_POINT_MAX_ERROR_CM = 20.0


class FloorPoint(BaseModel):
    """One floor mark: where it is in this camera's image (pixels) and on the pen's plan (cm)."""

    model_config = ConfigDict(extra="forbid")

    image_xy: tuple[float, float] = Field(description="pixels in this camera's frame (x right, y down)")
    floor_cm: tuple[float, float] = Field(description="cm on the pen's plan, one frame shared by all cameras")


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
    floor_points: list[FloorPoint] = Field(
        default_factory=list,
        max_length=64,
        description="4 or more floor marks (image pixels -> plan cm): where this camera's floor lies on the "
        "pen's plan, so cameras can tell they see the same spot (one carcass in two views is one death)",
    )

    @model_validator(mode="after")
    def _floor(self) -> CalibrationConfig:
        if self.floor_points:
            self.floor_homography()  # fits and checks now: a bad set fails at load, naming the point
        return self

    def floor_homography(self) -> np.ndarray | None:
        """(3, 3) image -> plan (cm) homography from floor_points, or None without them. Raises
        ValueError for a set that fixes no mapping or holds a point off the fit by more than
        FLOOR_POINT_MAX_ERROR_CM (a mistyped or mismeasured mark)."""
        if not self.floor_points:
            return None
        image = [p.image_xy for p in self.floor_points]
        plan = [p.floor_cm for p in self.floor_points]
        try:
            h = fit_homography(image, plan)
        except ValueError as exc:
            raise ValueError(f"calibration.floor_points: {exc}") from exc
        err = reprojection_error_cm(h, image, plan)
        worst = int(np.argmax(err))
        if err[worst] > FLOOR_POINT_MAX_ERROR_CM:
            raise ValueError(
                f"calibration.floor_points.{worst}: maps {err[worst]:.0f} cm away from its floor_cm "
                f"{list(plan[worst])} (more than {FLOOR_POINT_MAX_ERROR_CM:g} cm): a mistyped or mismeasured mark?"
            )
        return h

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
