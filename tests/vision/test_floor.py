"""Floor plan homographies (vision.floor) and the floor_points of a camera's calibration."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from vision.calibration import CalibrationConfig
from vision.floor import fit_homography, image_to_floor, reprojection_error_cm

# An oblique camera's image -> floor mapping (perspective: the far rows of the image span more floor).
H_TRUE = np.array([[2.5, 1.5, -640.0], [0.0, 6.7, -1320.0], [0.0, 0.0077, 1.0]])
IMAGE_XY = np.array([[128, 198], [512, 198], [590, 331], [50, 331], [320, 260], [200, 300]], np.float64)


def _truth(xy: np.ndarray) -> np.ndarray:
    p = np.column_stack([xy, np.ones(len(xy))]) @ H_TRUE.T
    return p[:, :2] / p[:, 2:3]


@pytest.mark.parametrize(
    ("n_points", "noise_cm", "max_error_cm"),
    [
        (4, 0.0, 1e-6),  # four marks fix the mapping exactly
        (6, 0.0, 1e-6),
        (6, 1.0, 4.0),  # tape-measure noise: a least-squares fit, no point far off
    ],
)
def test_fit_recovers_the_floor_mapping(n_points: int, noise_cm: float, max_error_cm: float) -> None:
    rng = np.random.default_rng(0)
    image = IMAGE_XY[:n_points]
    floor = _truth(image) + rng.normal(0, noise_cm, (n_points, 2))
    h = fit_homography(image, floor)
    probe = np.array([[300.0, 250.0], [400.0, 320.0], [150.0, 210.0]])
    assert np.abs(image_to_floor(h, probe) - _truth(probe)).max() <= max_error_cm
    assert reprojection_error_cm(h, image, floor).max() <= max_error_cm


@pytest.mark.parametrize(
    ("image", "floor", "message"),
    [
        ([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]], "at least 4 point pairs"),
        ([[0, 0], [1, 0], [0, 1], [1, 1]], [[0, 0], [1, 0], [0, 1]], "has 4 points but floor_xy_cm has 3"),
        ([[0, 0], [10, 0], [20, 0], [0, 10]], [[0, 0], [10, 0], [20, 0], [0, 10]], "no 3 of them on one line"),
        ([[0, 0], [0, 0], [10, 10], [0, 10]], [[0, 0], [0, 0], [10, 10], [0, 10]], "no 3 of them on one line"),
        ([[0, 0, 1]], [[0, 0]], "image_xy must have shape (N, 2)"),
        ([[0, np.nan], [1, 0], [0, 1], [1, 1]], [[0, 0], [1, 0], [0, 1], [1, 1]], "image_xy holds a non-finite"),
    ],
)
def test_fit_refuses_point_sets_that_fix_no_mapping(image: list, floor: list, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_homography(image, floor)


def test_points_on_the_horizon_map_to_nan_and_shapes_are_checked() -> None:
    # The vanishing line of H_TRUE: 0.0077 * y + 1 = 0.
    out = image_to_floor(H_TRUE, [[100.0, -1.0 / 0.0077], [100.0, 100.0]])
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    assert image_to_floor(H_TRUE, np.zeros((0, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match=r"h_image_to_floor must have shape \(3, 3\)"):
        image_to_floor(np.eye(2), [[0.0, 0.0]])


def _marks(floor: np.ndarray) -> list[dict[str, list[float]]]:
    return [{"image_xy": list(i), "floor_cm": list(f)} for i, f in zip(IMAGE_XY, floor, strict=True)]


def test_calibration_fits_floor_points_at_load_and_names_a_mismeasured_mark() -> None:
    floor = _truth(IMAGE_XY)
    cal = CalibrationConfig(floor_points=_marks(floor))  # type: ignore[arg-type]
    h = cal.floor_homography()
    assert h is not None and np.abs(image_to_floor(h, IMAGE_XY) - floor).max() < 1e-6
    assert CalibrationConfig().floor_homography() is None
    bad = floor.copy()
    bad[4] += (150.0, 0.0)  # a mark written 1.5 m off
    with pytest.raises(ValidationError, match=r"calibration.floor_points.4: maps \d+ cm away"):
        CalibrationConfig(floor_points=_marks(bad))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="calibration.floor_points: a floor homography needs at least 4"):
        CalibrationConfig(floor_points=_marks(floor)[:3])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="extra"):
        CalibrationConfig(floor_points=[{"image_xy": [0, 0], "floor_cm": [0, 0], "z": 1}])  # type: ignore[list-item]
