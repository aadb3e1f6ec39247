"""Metric code against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    DetectionAccumulator,
    average_precision,
    box_iou,
    calibrate_threshold,
    match_image,
    open_set_rates,
    reid_ranking,
)

GT = np.array([[0, 0, 10, 10]], np.float32)


def _summary(preds, conf, cls, gt=GT, gt_cls=(0,), nc=1):
    acc = DetectionAccumulator(nc)
    acc.add(np.asarray(preds, np.float32).reshape(-1, 4), np.asarray(conf), np.asarray(cls),
            np.asarray(gt, np.float32), np.asarray(gt_cls))
    return acc.summary()


def test_box_iou_hand_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])


def test_perfect_prediction_scores_one():
    s = _summary([[0, 0, 10, 10]], [0.9], [0])
    assert s["mAP50"] == pytest.approx(1.0)
    assert s["mAP50-95"] == pytest.approx(1.0)
    assert s["precision"] == pytest.approx(1.0) and s["recall"] == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_ap():
    # FP at 0.9, TP at 0.8: recall [0, 1], precision [0, 0.5] -> envelope 0.5 everywhere
    s = _summary([[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])
    assert s["mAP50"] == pytest.approx(0.5)


def test_false_positive_ranked_last_keeps_ap():
    s = _summary([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0])
    assert s["mAP50"] == pytest.approx(1.0)


def test_iou_06_counts_at_three_of_ten_thresholds():
    # [0,0,10,10] vs [0,0,10,16.6667]: IoU = 100/166.67 = 0.6 -> TP at 0.50, 0.55, 0.60 only
    s = _summary([[0, 0, 10, 10 / 0.6]], [0.9], [0])
    assert s["mAP50"] == pytest.approx(1.0)
    assert s["mAP50-95"] == pytest.approx(0.3)


def test_missed_ground_truth_caps_recall():
    # two GT, one found: recall tops at 0.5; COCO samples recall 0.00..0.50 -> 51 of 101 points
    gt = np.array([[0, 0, 10, 10], [40, 40, 50, 50]], np.float32)
    s = _summary([[0, 0, 10, 10]], [0.9], [0], gt=gt, gt_cls=(0, 0))
    assert s["mAP50"] == pytest.approx(51 / 101)
    assert s["recall"] == pytest.approx(0.5)


def test_wrong_class_is_a_false_positive_and_classes_average():
    gt = np.array([[0, 0, 10, 10], [40, 40, 50, 50]], np.float32)
    # class 0 found, class 1 predicted as class 0 at its location -> class 1 AP 0, class 0 AP from 1 TP + 1 FP
    s = _summary([[0, 0, 10, 10], [40, 40, 50, 50]], [0.9, 0.8], [0, 0], gt=gt, gt_cls=(0, 1), nc=2)
    assert s["mAP50"] == pytest.approx((1.0 + 0.0) / 2)


def test_one_prediction_matches_one_ground_truth_only():
    tp = match_image(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), np.array([0.9, 0.8]), np.array([0, 0]), GT,
                     np.array([0]))
    assert tp[:, 0].tolist() == [True, False]


def test_average_precision_empty_curve_is_zero():
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def test_out_of_range_ground_truth_class_is_rejected():
    with pytest.raises(ValueError, match="out of range"):
        _summary([], [], [], gt_cls=(3,), nc=1)


def test_reid_ranking_hand_case():
    # gallery: a1 a2 b1 on the unit circle; query a sits between a1 and b1, closer to b1
    g = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float64)
    gid = ["a", "a", "b"]
    q = np.array([[0.2, 0.98], [1, 0.01]])
    r = reid_ranking(q, ["a", "a"], g, gid)
    # query 0 ranking: b1 (0.98), a2 (0.904), a1 (0.2) -> first hit at rank 2; AP = (1/2 + 2/3) / 2
    # query 1 ranking: a1, a2, b1 -> rank 1, AP = 1
    assert r["rank1"] == pytest.approx(0.5)
    assert r["rank5"] == pytest.approx(1.0)
    assert r["mAP"] == pytest.approx(((0.5 + 2 / 3) / 2 + 1.0) / 2)
    assert r["queries"] == 2


def test_reid_ranking_skips_queries_without_gallery_identity():
    r = reid_ranking(np.eye(2), ["a", "zz"], np.eye(2), ["a", "b"])
    assert r["queries"] == 1 and r["rank1"] == 1.0


def test_open_set_rates_hand_case():
    g = np.array([[1.0, 0.0]])
    q = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # known a (sim 1), unknown (sim 0), unknown (sim 0.6)
    r = open_set_rates(q, ["a", "x", "y"], g, ["a"], threshold=0.7)
    assert r["unknown_queries"] == 2 and r["unknown_rejection_rate"] == pytest.approx(1.0)
    assert r["known_accept_correct_rate"] == pytest.approx(1.0)
    r = open_set_rates(q, ["a", "x", "y"], g, ["a"], threshold=0.5)
    assert r["unknown_rejection_rate"] == pytest.approx(0.5)


def test_calibrate_threshold_separates_pairs():
    e = np.array([[1, 0], [0.95, 0.31], [0, 1], [0.31, 0.95]])
    t = calibrate_threshold(e, ["a", "a", "b", "b"])
    # same pairs have sim ~0.95, different pairs <= ~0.6
    assert 0.6 < t <= 0.95
