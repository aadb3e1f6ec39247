from __future__ import annotations

import numpy as np
import pytest

from vision.backends.letterbox import letterbox, letterbox_params, unletterbox_xyxy
from vision.nms import batched_nms, nms


@pytest.mark.parametrize(
    ("boxes", "scores", "iou", "expected"),
    [
        ([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], [0.9, 0.8, 0.7], 0.5, [0, 2]),
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.8, 0.9], 0.5, [1]),
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8], 0.5, [0, 1]),  # IoU 1/3 < 0.5: both kept
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8], 0.3, [0]),  # IoU 1/3 > 0.3: suppressed
        ([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.5, 0.5], 0.5, [0]),  # identical boxes
        ([[0, 0, 0, 0], [0, 0, 0, 0]], [0.9, 0.8], 0.5, [0, 1]),  # degenerate: zero area never suppresses
    ],
)
def test_nms_table(boxes: list, scores: list, iou: float, expected: list) -> None:
    keep = nms(np.array(boxes, np.float32), np.array(scores, np.float32), iou)
    assert keep.tolist() == expected


def test_nms_empty_and_bad_threshold() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(np.zeros((1, 4)), np.zeros(1), 1.5)


def test_batched_nms_is_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 0]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]


@pytest.mark.parametrize(
    ("size_wh", "input_wh", "scale", "pad_x", "pad_y"),
    [
        ((640, 360), (320, 320), 0.5, 0.0, 70.0),
        ((360, 640), (320, 320), 0.5, 70.0, 0.0),
        ((320, 320), (320, 320), 1.0, 0.0, 0.0),
        ((1280, 720), (640, 640), 0.5, 0.0, 140.0),
    ],
)
def test_letterbox_params_table(size_wh: tuple, input_wh: tuple, scale: float, pad_x: float, pad_y: float) -> None:
    p = letterbox_params(size_wh, input_wh)
    assert p.scale == pytest.approx(scale) and p.pad_x == pytest.approx(pad_x) and p.pad_y == pytest.approx(pad_y)


def test_letterbox_round_trip_boxes() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:200, 300:400] = 255
    img, p = letterbox(frame, (320, 320))
    assert img.shape == (320, 320, 3)
    ys, xs = np.nonzero(img[:, :, 0] == 255)
    box_in = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = unletterbox_xyxy(box_in, p)
    np.testing.assert_allclose(back[0], [300, 100, 400, 200], atol=2.0)
    with pytest.raises(ValueError, match="BGR"):
        letterbox(np.zeros((10, 10)), (32, 32))
