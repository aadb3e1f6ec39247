import numpy as np
import pytest

from vision import geometry as g

IOU_TABLE = [
    # a, b, expected IoU
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
    ([0, 0, 10, 10], [5, 5, 15, 15], 25 / 175),
    ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
    ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
    ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),  # contained
    ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # degenerate: no NaN
    ([5, 5, 5, 9], [0, 0, 10, 10], 0.0),  # zero width
    ([10, 10, 0, 0], [0, 0, 10, 10], 0.0),  # inverted
]


@pytest.mark.parametrize(("a", "b", "expected"), IOU_TABLE)
def test_iou_table(a, b, expected):
    got = g.box_iou_batch([a], [b])
    assert got.shape == (1, 1)
    assert got.dtype == np.float32
    assert got[0, 0] == pytest.approx(expected, abs=1e-6)
    assert g.box_iou_batch([b], [a])[0, 0] == pytest.approx(expected, abs=1e-6)


def test_iou_batch_matches_pairwise():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 50, (7, 4)).astype(np.float32)
    b = rng.uniform(0, 50, (5, 4)).astype(np.float32)
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    m = g.box_iou_batch(a, b)
    assert m.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            assert m[i, j] == pytest.approx(g.box_iou_batch(a[i : i + 1], b[j : j + 1])[0, 0], abs=1e-6)
    assert np.isfinite(m).all() and (m >= 0).all() and (m <= 1).all()


IOA_TABLE = [
    ([2, 2, 4, 4], [0, 0, 10, 10], 1.0),  # small box fully covered
    ([0, 0, 10, 10], [2, 2, 4, 4], 0.04),
    ([0, 0, 10, 10], [5, 0, 15, 10], 0.5),
    ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),  # zero-area a
]


@pytest.mark.parametrize(("a", "b", "expected"), IOA_TABLE)
def test_ioa_table(a, b, expected):
    assert g.box_ioa_batch([a], [b])[0, 0] == pytest.approx(expected, abs=1e-6)
    assert g.box_ioa is g.box_ioa_batch


def test_empty_inputs_give_empty_shapes():
    e = np.zeros((0, 4))
    one = [[0, 0, 1, 1]]
    assert g.box_iou_batch(e, one).shape == (0, 1)
    assert g.box_iou_batch(one, e).shape == (1, 0)
    assert g.box_ioa_batch(e, e).shape == (0, 0)
    assert g.box_area([]).shape == (0,)
    assert g.xyxy_to_cxcywh(e).shape == (0, 4)
    assert g.centers_xy(e).shape == (0, 2)
    assert g.pairwise_center_distance(e, one).shape == (0, 1)


AREA_TABLE = [([0, 0, 10, 5], 50.0), ([1, 1, 1, 9], 0.0), ([5, 5, 0, 0], 0.0), ([0.5, 0.5, 1.5, 2.5], 2.0)]


@pytest.mark.parametrize(("box", "area"), AREA_TABLE)
def test_box_area(box, area):
    assert g.box_area([box])[0] == pytest.approx(area)


CONVERSIONS = [
    # xyxy, cxcywh, xywh, cxcyah
    ([0, 0, 10, 20], [5, 10, 10, 20], [0, 0, 10, 20], [5, 10, 0.5, 20]),
    ([10, 20, 40, 30], [25, 25, 30, 10], [10, 20, 30, 10], [25, 25, 3.0, 10]),
    ([-5, -5, 5, 5], [0, 0, 10, 10], [-5, -5, 10, 10], [0, 0, 1.0, 10]),
]


@pytest.mark.parametrize(("xyxy", "cxcywh", "xywh", "cxcyah"), CONVERSIONS)
def test_conversions_table_and_round_trip(xyxy, cxcywh, xywh, cxcyah):
    b = np.array([xyxy], np.float32)
    np.testing.assert_allclose(g.xyxy_to_cxcywh(b), [cxcywh], atol=1e-5)
    np.testing.assert_allclose(g.xyxy_to_xywh(b), [xywh], atol=1e-5)
    np.testing.assert_allclose(g.xyxy_to_cxcyah(b), [cxcyah], atol=1e-5)
    np.testing.assert_allclose(g.cxcywh_to_xyxy(g.xyxy_to_cxcywh(b)), b, atol=1e-4)
    np.testing.assert_allclose(g.xywh_to_xyxy(g.xyxy_to_xywh(b)), b, atol=1e-4)
    np.testing.assert_allclose(g.cxcyah_to_xyxy(g.xyxy_to_cxcyah(b)), b, atol=1e-4)
    for fn in (g.xyxy_to_cxcywh, g.xyxy_to_xywh, g.xyxy_to_cxcyah, g.cxcywh_to_xyxy):
        assert fn(b).dtype == np.float32


def test_zero_height_aspect_is_finite():
    out = g.xyxy_to_cxcyah([[0, 5, 10, 5]])
    assert np.isfinite(out).all()
    assert out[0, 2] == 0.0


def test_random_round_trip():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (100, 2))
    wh = rng.uniform(1, 200, (100, 2))
    b = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    np.testing.assert_allclose(g.cxcyah_to_xyxy(g.xyxy_to_cxcyah(b)), b, atol=1e-2)
    np.testing.assert_allclose(g.cxcywh_to_xyxy(g.xyxy_to_cxcywh(b)), b, atol=1e-3)


CLIP_TABLE = [
    ([-5, -5, 5, 5], (100, 50), [0, 0, 5, 5]),
    ([90, 40, 120, 60], (100, 50), [90, 40, 100, 50]),
    ([10, 10, 20, 20], (100, 50), [10, 10, 20, 20]),
    ([-20, 60, -10, 70], (100, 50), [0, 50, 0, 50]),
]


@pytest.mark.parametrize(("box", "size_wh", "expected"), CLIP_TABLE)
def test_clip(box, size_wh, expected):
    np.testing.assert_allclose(g.clip_xyxy([box], size_wh), [expected])


INSIDE_TABLE = [
    ([10, 10, 20, 20], (100, 50), 0.0, True),
    ([0, 0, 100, 50], (100, 50), 0.0, True),  # touching the edges is still inside
    ([0, 0, 100, 50], (100, 50), 2.0, False),
    ([1, 10, 20, 20], (100, 50), 2.0, False),  # left
    ([10, 1, 20, 20], (100, 50), 2.0, False),  # top
    ([80, 10, 99, 20], (100, 50), 2.0, False),  # right
    ([80, 30, 90, 49], (100, 50), 2.0, False),  # bottom
    ([2, 2, 98, 48], (100, 50), 2.0, True),
    ([-5, 10, 20, 20], (100, 50), 0.0, False),
]


@pytest.mark.parametrize(("box", "size_wh", "margin", "expected"), INSIDE_TABLE)
def test_inside_frame(box, size_wh, margin, expected):
    assert g.inside_frame([box], size_wh, margin).tolist() == [expected]
    assert g.inside_frame([], size_wh, margin).shape == (0,)


CENTERS_IN_TABLE = [
    ([10, 10, 20, 20], [[0, 0, 30, 30]], True),
    ([10, 10, 20, 20], [[15, 15, 30, 30]], True),  # the centre on a region's corner counts
    ([10, 10, 40, 40], [[0, 0, 20, 20]], False),  # overlapping, but the centre is outside
    ([50, 50, 60, 60], [[0, 0, 20, 20], [50, 50, 100, 100]], True),  # any region
    ([50, 50, 60, 60], [], False),  # no regions
]


@pytest.mark.parametrize(("box", "regions", "expected"), CENTERS_IN_TABLE)
def test_centers_in(box, regions, expected):
    assert g.centers_in([box], regions).tolist() == [expected]
    assert g.centers_in([], regions).shape == (0,)


def test_centers_in_names_a_bad_region():
    with pytest.raises(ValueError, match="regions_xyxy"):
        g.centers_in([[0, 0, 1, 1]], [[0, 0, 1]])


SCALE_TABLE = [
    ([10, 20, 30, 40], 2.0, [20, 40, 60, 80]),
    ([10, 20, 30, 40], (0.5, 2.0), [5, 40, 15, 80]),
]


@pytest.mark.parametrize(("box", "scale", "expected"), SCALE_TABLE)
def test_scale(box, scale, expected):
    np.testing.assert_allclose(g.scale_xyxy([box], scale), [expected])


def test_centers_and_distance():
    a = [[0, 0, 10, 10], [10, 10, 20, 20]]
    b = [[0, 0, 10, 10], [30, 40, 50, 60]]
    np.testing.assert_allclose(g.centers_xy(a), [[5, 5], [15, 15]])
    d = g.pairwise_center_distance(a, b)
    assert d.shape == (2, 2)
    np.testing.assert_allclose(d, [[0, np.hypot(35, 45)], [np.hypot(10, 10), np.hypot(25, 35)]], rtol=1e-6)


BAD_SHAPES = [np.zeros((3,)), np.zeros((2, 3)), np.zeros((2, 4, 1)), [[1, 2, 3, 4, 5]]]


@pytest.mark.parametrize("bad", BAD_SHAPES)
def test_bad_shapes_raise_naming_argument(bad):
    with pytest.raises(ValueError, match="xyxy_a"):
        g.box_iou_batch(bad, [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="xyxy"):
        g.box_area(bad)


@pytest.mark.parametrize(
    ("fn", "arg", "match"),
    [
        (g.clip_xyxy, (0, 10), "size_wh"),
        (g.clip_xyxy, (1, 2, 3), "size_wh"),
        (g.scale_xyxy, -1.0, "scale_xy"),
        (g.scale_xyxy, (1.0, float("nan")), "scale_xy"),
    ],
)
def test_bad_parameters_raise(fn, arg, match):
    with pytest.raises(ValueError, match=match):
        fn([[0, 0, 1, 1]], arg)


def test_non_numeric_raises():
    with pytest.raises(ValueError, match="xyxy"):
        g.box_area([["a", "b", "c", "d"]])
