"""Camera calibration (pixels per cm, reference object) and the length -> weight curve."""

from __future__ import annotations

import numpy as np
import pytest

from vision.calibration import CalibrationConfig, fit_allometric, length_cm, weight_band, weight_from_length_cm


@pytest.mark.parametrize(
    ("calib", "px", "cm"),
    [
        (CalibrationConfig(px_per_cm=2.0), 76.0, 38.0),
        (CalibrationConfig(reference_length_px=300.0, reference_length_cm=60.0), 100.0, 20.0),
        (CalibrationConfig(), 100.0, None),
    ],
)
def test_length_from_pixels(calib: CalibrationConfig, px: float, cm: float | None) -> None:
    assert length_cm(px, calib) == (pytest.approx(cm) if cm is not None else None)


def test_broiler_curve_matches_growth_tables() -> None:
    calib = CalibrationConfig()
    assert weight_from_length_cm(38.0, calib) == pytest.approx(2110, rel=0.02)  # market-age broiler
    assert weight_from_length_cm(20.0, calib) == pytest.approx(308, rel=0.02)
    assert weight_from_length_cm(0.0, calib) == calib.min_weight_g  # clamped, not zero


def test_weight_band_widens_with_length_spread() -> None:
    calib = CalibrationConfig(px_per_cm=2.0)
    w, lo, hi = weight_band(70.0, calib)  # type: ignore[misc]
    w2, lo2, hi2 = weight_band(70.0, calib, length_rel_error=0.05)  # type: ignore[misc]
    assert lo < w < hi and w == w2
    assert lo2 < lo and hi2 > hi
    assert weight_band(70.0, CalibrationConfig()) is None


def test_fit_recovers_a_power_law() -> None:
    lengths = np.array([15.0, 20.0, 30.0, 40.0])
    a, b = fit_allometric(lengths, 0.05 * lengths**2.9)
    assert a == pytest.approx(0.05, rel=1e-6) and b == pytest.approx(2.9, rel=1e-6)
    with pytest.raises(ValueError):
        fit_allometric(np.array([1.0]), np.array([1.0]))


def test_config_rejects_half_a_reference_or_both_methods() -> None:
    with pytest.raises(ValueError, match="reference"):
        CalibrationConfig(reference_length_px=10.0)
    with pytest.raises(ValueError, match="not both"):
        CalibrationConfig(px_per_cm=2.0, reference_length_px=10.0, reference_length_cm=5.0)
    with pytest.raises(ValueError):
        CalibrationConfig(px_per_cm=-1.0)
