import numpy as np
import pytest

from vision.tracking.association import (
    INF_COST,
    appearance_distance,
    embedding_mask,
    fuse_motion_appearance,
    greedy_assignment,
    iou_distance,
    l2_normalize,
    linear_assignment,
)

ASSIGNERS = [linear_assignment, greedy_assignment]


@pytest.mark.parametrize("assign", ASSIGNERS)
@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (4, 0)])
def test_empty_matrices(assign, shape):
    m, ur, uc = assign(np.zeros(shape), 0.5)
    assert m.shape == (0, 2)
    np.testing.assert_array_equal(ur, np.arange(shape[0]))
    np.testing.assert_array_equal(uc, np.arange(shape[1]))


@pytest.mark.parametrize("assign", ASSIGNERS)
def test_threshold_and_unmatched(assign):
    cost = np.array([[0.1, 0.9], [0.8, 0.95], [0.9, 0.2]])
    m, ur, uc = assign(cost, 0.5)
    np.testing.assert_array_equal(m, [[0, 0], [2, 1]])
    np.testing.assert_array_equal(ur, [1])
    assert uc.size == 0


def test_linear_beats_greedy_when_it_should():
    cost = np.array([[0.1, 0.2], [0.2, 0.9]])
    lm, _, _ = linear_assignment(cost, 1.0)
    gm, _, _ = greedy_assignment(cost, 1.0)
    np.testing.assert_array_equal(lm, [[0, 1], [1, 0]])  # total 0.4
    np.testing.assert_array_equal(gm, [[0, 0], [1, 1]])  # greedy takes 0.1 first


@pytest.mark.parametrize(
    ("cost", "threshold", "expected"),
    [
        # Track 0 fits box 0 exactly; box 1 is a partial box track 0 could also take (0.48) and track 1
        # can only reach box 0 (0.77). Two pairs (total 1.25) must not beat one perfect pair.
        ([[0.0, 0.48], [0.77, np.inf]], 0.8, [[0, 0]]),
        # 1-1 is over the threshold, so it must not push the solver into two marginal pairs (0.9).
        ([[0.1, 0.45], [0.45, 0.9]], 0.5, [[0, 0]]),
        # Both pairs under the threshold and cheaper together: still the joint optimum.
        ([[0.1, 0.2], [0.2, 0.9]], 1.0, [[0, 1], [1, 0]]),
    ],
)
def test_linear_assignment_takes_a_pair_only_where_it_beats_leaving_both_unmatched(cost, threshold, expected):
    m, _, _ = linear_assignment(np.array(cost), threshold)
    np.testing.assert_array_equal(m, np.array(expected).reshape(-1, 2))


def test_all_forbidden_and_inf_are_handled():
    cost = np.full((3, 3), np.inf)
    cost[1, 2] = 0.3
    m, ur, uc = linear_assignment(cost, 0.5)
    np.testing.assert_array_equal(m, [[1, 2]])
    np.testing.assert_array_equal(ur, [0, 2])
    np.testing.assert_array_equal(uc, [0, 1])
    m, _, _ = linear_assignment(np.full((2, 2), INF_COST), 0.5)
    assert m.shape == (0, 2)


def test_nan_cost_raises():
    with pytest.raises(ValueError, match="NaN"):
        linear_assignment(np.array([[np.nan]]), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        linear_assignment(np.zeros(3), 0.5)


def test_identical_boxes_are_matched_one_to_one():
    boxes = np.array([[0, 0, 10, 10]] * 3, np.float32)
    d = iou_distance(boxes, boxes)
    np.testing.assert_allclose(d, 0.0, atol=1e-6)
    m, ur, uc = linear_assignment(d, 0.5)
    assert m.shape == (3, 2) and ur.size == 0 and uc.size == 0
    assert sorted(m[:, 1].tolist()) == [0, 1, 2]


def test_appearance_distance_and_masks():
    t = np.array([[1, 0, 0], [0, 0, 0], [0, 2, 0]], np.float32)
    d = np.array([[3, 0, 0], [0, 1, 0], [np.nan, 0, 0]], np.float32)
    np.testing.assert_array_equal(embedding_mask(t), [True, False, True])
    np.testing.assert_array_equal(embedding_mask(d), [True, True, False])
    norm = l2_normalize(d)
    np.testing.assert_allclose(norm, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    dist, avail = appearance_distance(t, d)
    assert np.isfinite(dist).all()
    np.testing.assert_array_equal(
        avail, [[True, True, False], [False, False, False], [True, True, False]]
    )
    np.testing.assert_allclose(dist, [[0, 1, 1], [1, 1, 1], [1, 0, 1]], atol=1e-6)
    with pytest.raises(ValueError, match="dimensions"):
        appearance_distance(np.ones((1, 3)), np.ones((1, 4)))
    dist, avail = appearance_distance(np.zeros((0, 8)), np.ones((2, 8)))
    assert dist.shape == (0, 2) and avail.shape == (0, 2)


def test_fuse_gating_rules():
    iou_d = np.array([[0.2, 0.95, 0.95, 0.2]])
    app_d = np.array([[0.1, 0.05, 0.3, 0.8]])
    avail = np.array([[True, True, True, True]])
    cost = fuse_motion_appearance(iou_d, app_d, avail, motion_weight=0.5, min_iou=0.1, app_reject=0.5,
                                  app_rescue=0.15)
    assert cost[0, 0] == pytest.approx(0.15)  # overlap + look alike: weighted mean
    assert cost[0, 1] == pytest.approx(0.5)  # no overlap but strong appearance: rescued
    assert cost[0, 2] == INF_COST  # no overlap, appearance not strong enough
    assert cost[0, 3] == INF_COST  # overlap but appearance veto
    # Without appearance the cost is the IoU distance, still subject to min_iou and the gate.
    no_app = fuse_motion_appearance(iou_d, app_d, np.zeros_like(avail), gate_ok=[[True, True, False, False]])
    np.testing.assert_allclose(no_app, [[0.2, INF_COST, INF_COST, INF_COST]])
    with pytest.raises(ValueError, match="shapes"):
        fuse_motion_appearance(iou_d, app_d[:, :2], avail)


def test_linear_assignment_without_cost_limit_takes_the_most_pairs():
    # The sparse-footage matching: two pairs (0-1, 1-0) under the threshold beat one perfect pair.
    m, ur, uc = linear_assignment(np.array([[0.0, 0.48], [0.77, np.inf]]), 0.8, cost_limit=False)
    np.testing.assert_array_equal(m, [[0, 1], [1, 0]])
    assert ur.size == 0 and uc.size == 0
