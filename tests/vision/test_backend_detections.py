from __future__ import annotations

import numpy as np
import pytest

from vision.detections import NO_TRACK, Detections


def _dets(n: int) -> Detections:
    xyxy = np.array([[i, i, i + 10, i + 20] for i in range(n)], np.float32)
    return Detections(xyxy=xyxy, confidence=np.linspace(0.5, 0.9, n), class_id=np.zeros(n))


def test_defaults_and_dtypes() -> None:
    d = _dets(3)
    assert d.xyxy.dtype == np.float32 and d.class_id.dtype == np.int64
    assert d.track_id is not None and list(d.track_id) == [NO_TRACK] * 3
    assert len(d) == 3
    np.testing.assert_allclose(d.area, [200, 200, 200])
    np.testing.assert_allclose(d.center_xy[1], [6, 11])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": np.zeros((2, 3))}, "xyxy must have shape"),
        ({"confidence": np.zeros(3)}, "confidence has 3 rows"),
        ({"class_id": np.zeros(1)}, "class_id has 1 rows"),
        ({"track_id": np.zeros(5)}, "track_id has 5 rows"),
        ({"embedding": np.zeros((3, 8))}, "embedding must have shape"),
        ({"bird_id": ["a"]}, "bird_id has 1 rows"),
        ({"identity_confidence": [0.1]}, "identity_confidence has 1 rows"),
    ],
)
def test_shape_errors_name_the_field(kwargs: dict, message: str) -> None:
    base = {"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": np.zeros(2)}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Detections(**base)


def test_empty_and_selection() -> None:
    e = Detections.empty(camera_id="c1", frame_index=4)
    assert len(e) == 0 and e.xyxy.shape == (0, 4) and e.camera_id == "c1"
    d = _dets(4).with_meta(embedding=np.eye(4, dtype=np.float32), bird_id=["a", "b", "c", "d"])
    sub = d[d.confidence > 0.7]
    assert len(sub) == 2 and list(sub.bird_id) == ["c", "d"]
    assert sub.embedding is not None and sub.embedding.shape == (2, 4)
    one = d[1]
    assert len(one) == 1 and one.bird_id is not None and one.bird_id[0] == "b"
    assert len(d[[0, 3]]) == 2


def test_merge_keeps_rows_and_optional_fields() -> None:
    a, b = _dets(2), _dets(3)
    m = Detections.merge([a, b])
    assert len(m) == 5 and m.embedding is None
    m2 = Detections.merge([a.with_meta(embedding=np.ones((2, 2))), b.with_meta(embedding=np.ones((3, 2)))])
    assert m2.embedding is not None and m2.embedding.shape == (5, 2)
    assert len(Detections.merge([])) == 0


def test_embedded_marks_the_rows_that_carry_a_vector() -> None:
    xyxy = np.array([[0, 0, 10, 10]] * 3, np.float32)
    conf, cls = np.ones(3, np.float32), np.zeros(3, np.int64)
    emb = np.zeros((3, 4), np.float32)
    emb[0, 1] = 1.0  # a unit vector; row 1 all zeros; row 2 near zero (garbage)
    emb[2, 0] = 0.1
    assert Detections(xyxy=xyxy, confidence=conf, class_id=cls, embedding=emb).embedded.tolist() == [True, False, False]
    assert Detections(xyxy=xyxy, confidence=conf, class_id=cls).embedded.tolist() == [False, False, False]
    assert Detections.empty().embedded.shape == (0,)
