import numpy as np
import pytest

from vision.detections import Detections
from vision.tracking import FlockTracker, FlockTrackerConfig, IouTracker, Tracker, make_tracker

DT = 0.1


def box(cx, cy, s=30.0):
    return [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]


def dets(boxes, t, emb=None, conf=None, **meta):
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.full(n, 0.9, np.float32) if conf is None else np.asarray(conf, np.float32),
        class_id=np.zeros(n, np.int64),
        embedding=None if emb is None else np.atleast_2d(np.asarray(emb, np.float32)),
        timestamp=t,
        **meta,
    )


def unit(seed, dim=32):
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def noisy(v, rng, sigma=0.03):
    w = v + rng.normal(0, sigma, v.shape)
    return (w / np.linalg.norm(w)).astype(np.float32)


def ids_by_row(out, n_in, in_boxes):
    """track id for each input row (or None when the row is not in the output)."""
    res = [None] * n_in
    for r in range(len(out)):
        j = int(np.flatnonzero((np.asarray(in_boxes, np.float32) == out.xyxy[r]).all(axis=1))[0])
        res[j] = int(out.track_id[r])
    return res


def test_registry_and_protocol():
    assert isinstance(make_tracker("flockid"), FlockTracker)
    assert isinstance(make_tracker("iou"), IouTracker)
    assert isinstance(make_tracker("flockid", min_hits=3), Tracker)
    with pytest.raises(ValueError, match=r"flockid.*iou"):
        make_tracker("sort")
    with pytest.raises(ValueError, match="not_a_field"):
        make_tracker("flockid", not_a_field=1)
    with pytest.raises(ValueError, match="min_hits"):
        make_tracker("flockid", min_hits=0)
    with pytest.raises(ValueError, match="low_thresh"):
        FlockTrackerConfig(low_thresh=0.6, high_thresh=0.5)


@pytest.mark.parametrize("name", ["flockid", "iou"])
def test_empty_frames_and_no_tracks(name):
    tr = make_tracker(name)
    out = tr.update(Detections.empty(timestamp=0.0))
    assert len(out) == 0 and out.track_id.shape == (0,)
    tr.update(dets([box(50, 50)], 0.1))
    out = tr.update(dets([box(51, 50)], 0.2))  # confirmed after two hits at the latest
    assert len(out) == 1 and out.track_id[0] >= 1
    out = tr.update(Detections.empty(timestamp=0.3))
    assert len(out) == 0


def test_all_low_confidence_start_nothing():
    tr = FlockTracker()
    for f in range(5):
        out = tr.update(dets([box(50, 50), box(200, 50)], f * DT, conf=[0.3, 0.05]))
        assert len(out) == 0
    assert tr.active_tracks() == []


def test_identical_boxes_get_distinct_ids():
    tr = FlockTracker()
    out = tr.update(dets([box(50, 50)] * 3, 0.0))
    assert sorted(out.track_id.tolist()) == [1, 2, 3]
    out = tr.update(dets([box(50, 50)] * 3, DT))
    assert sorted(out.track_id.tolist()) == [1, 2, 3]


def test_output_preserves_rows_and_metadata():
    tr = FlockTracker()
    emb = np.stack([unit(1), unit(2)])
    d = dets([box(50, 50), box(200, 50)], 0.0, emb=emb, conf=[0.9, 0.8], frame_index=7, camera_id="barn-2",
             extra={"k": 1})
    out = tr.update(d)
    assert out.frame_index == 7 and out.camera_id == "barn-2" and out.extra == {"k": 1}
    np.testing.assert_array_equal(out.xyxy, d.xyxy)
    np.testing.assert_array_equal(out.embedding, emb)
    np.testing.assert_allclose(out.confidence, [0.9, 0.8])
    assert out.track_id.tolist() == [1, 2]
    assert d.track_id.tolist() == [-1, -1]  # the input is not modified


def test_tentative_tracks_need_min_hits_after_first_frame():
    tr = FlockTracker(min_hits=3)
    assert len(tr.update(Detections.empty(timestamp=0.0))) == 0
    got = [len(tr.update(dets([box(100 + 3 * f, 100)], f * DT))) for f in range(1, 5)]
    assert got == [0, 0, 1, 1]
    assert [e.kind for e in tr.pop_events()] == ["confirmed"]


@pytest.mark.parametrize("assignment", ["hungarian", "greedy"])
def test_keeps_id_through_short_occlusion_without_appearance(assignment):
    tr = FlockTracker(assignment=assignment)
    ids = []
    for f in range(40):
        x = 100 + 8 * f  # 80 px/s
        visible = not 15 <= f < 22  # 0.7 s occlusion
        out = tr.update(dets([box(x, 100), box(600, 400)] if visible else [box(600, 400)], f * DT))
        if visible:
            ids.append(ids_by_row(out, 2, [box(x, 100), box(600, 400)])[0])
    assert len(set(ids)) == 1
    kinds = [e.kind for e in tr.pop_events()]
    assert "lost" in kinds and "recovered" in kinds


def test_low_confidence_boxes_keep_a_track_alive():
    tr = FlockTracker()
    seen = []
    for f in range(20):
        conf = 0.3 if 5 <= f < 15 else 0.9  # half-hidden bird scores low
        out = tr.update(dets([box(100 + 2 * f, 100)], f * DT, conf=[conf]))
        seen.append(out.track_id.tolist())
    assert all(s == [1] for s in seen)


def test_crossing_birds_do_not_swap_with_appearance():
    # Two birds walk towards each other, fully overlap and turn back: a constant-velocity motion
    # model alone expects them to pass; appearance must keep the ids.
    rng = np.random.default_rng(0)
    ea, eb = unit(10), unit(11)
    tr = FlockTracker()
    first = None
    for f in range(60):
        t = f * DT
        off = abs(150 - 10 * f) if f < 30 else 150.0  # meet at f = 15 and turn back
        boxes = [box(300 - off, 200), box(300 + off, 200)]
        out = tr.update(dets(boxes, t, emb=np.stack([noisy(ea, rng), noisy(eb, rng)])))
        ids = ids_by_row(out, 2, boxes)
        if None in ids:
            continue
        if first is None:
            first = ids
        assert ids == first, f"swap at frame {f}"
    assert first is not None and first[0] != first[1]


def test_reentry_after_minutes_gets_old_id_by_appearance():
    rng = np.random.default_rng(1)
    bird, other, stranger = unit(20), unit(21), unit(22)
    tr = FlockTracker(lost_buffer_s=2.0, gallery_s=600.0)
    t = 0.0
    for f in range(20):  # both visible for 2 s
        t = f * DT
        out = tr.update(dets([box(100 + f, 100), box(500, 300)], t, emb=[noisy(bird, rng), noisy(other, rng)]))
    bird_id, other_id = ids_by_row(out, 2, [box(119, 100), box(500, 300)])
    # The bird leaves; 'other' stays. 3 minutes later the bird re-enters at the far side of the frame,
    # together with a stranger that has never been seen.
    for f in range(1, 30):
        tr.update(dets([box(500, 300)], t + f * DT, emb=[noisy(other, rng)]))
    events = [e.kind for e in tr.pop_events()]
    assert events.count("lost") == 1 and events.count("dormant") == 1
    assert [g.track_id for g in tr.gallery_tracks()] == [bird_id]
    t_back = t + 180.0
    ids = []
    for f in range(5):
        boxes = [box(900, 500), box(500, 300), box(100, 500)]
        out = tr.update(dets(boxes, t_back + f * DT, emb=[noisy(bird, rng), noisy(other, rng), noisy(stranger, rng)]))
        ids.append(ids_by_row(out, 3, boxes))
    assert ids[-1][0] == bird_id
    assert ids[-1][1] == other_id
    assert ids[-1][2] not in (bird_id, other_id, None)
    assert any(e.kind == "reidentified" and e.track_id == bird_id for e in tr.pop_events())
    assert tr.gallery_tracks() == []
    info = {i.track_id: i for i in tr.active_tracks()}[bird_id]
    assert info.first_seen == 0.0 and info.hits == 20 + 5  # history carried over from before the gap
    assert info.age_s == pytest.approx(t_back + 4 * DT)


def test_lookalike_reentry_is_ambiguous_and_gets_a_new_id():
    rng = np.random.default_rng(2)
    a = unit(30)
    b = noisy(a, rng, sigma=0.01)  # look-alike sibling
    tr = FlockTracker(lost_buffer_s=1.0)
    for f in range(10):
        tr.update(dets([box(100, 100), box(400, 100)], f * DT, emb=[noisy(a, rng, 0.005), noisy(b, rng, 0.005)]))
    for f in range(10, 40):
        tr.update(dets([], f * DT, emb=np.zeros((0, 32))))
    assert len(tr.gallery_tracks()) == 2
    out = None
    for f in range(3):
        out = tr.update(dets([box(250, 300)], 100.0 + f * DT, emb=[noisy(a, rng, 0.005)]))
    assert out is not None and out.track_id.tolist() == [3]


def test_pipeline_style_late_embeddings_reidentify():
    """Embeddings computed after tracking (the pipeline's order) reach the gallery via update_appearance."""
    rng = np.random.default_rng(3)
    bird = unit(40)
    tr = FlockTracker(lost_buffer_s=1.0)
    out = None
    for f in range(10):
        out = tr.update(dets([box(100, 100)], f * DT))
        out.embedding = noisy(bird, rng)[None, :]
        tr.update_appearance(out)
    old_id = int(out.track_id[0])
    for f in range(10, 30):
        tr.update(dets([], f * DT))
    assert [g.track_id for g in tr.gallery_tracks()] == [old_id]
    tr.update(dets([box(700, 400)], 60.0))  # tentative: not output, so not embedded
    out = tr.update(dets([box(700, 400)], 60.1))
    new_id = int(out.track_id[0])
    assert new_id != old_id
    out.embedding = noisy(bird, rng)[None, :]
    tr.update_appearance(out)
    ev = [e for e in tr.pop_events() if e.kind in ("reidentified", "removed")]
    assert [(e.kind, e.track_id, e.previous_id) for e in ev[-2:]] == [
        ("reidentified", old_id, new_id),
        ("removed", new_id, None),
    ]
    assert [r.track_id for r in tr.removed_tracks_since_last_call()] == [new_id]
    assert tr.update(dets([box(701, 400)], 60.2)).track_id.tolist() == [old_id]


def test_sparse_and_missing_embeddings_are_fine():
    rng = np.random.default_rng(4)
    e = [unit(50), unit(51)]
    tr = FlockTracker()
    for f in range(30):
        boxes = [box(100 + 3 * f, 100), box(400 - 3 * f, 300)]
        if f % 3 == 0:
            emb = None
        elif f % 3 == 1:
            emb = np.stack([noisy(e[0], rng), np.zeros(32, np.float32)])  # only one box embedded
        else:
            emb = np.zeros((2, 0), np.float32)  # zero-width: nothing embedded
        out = tr.update(dets(boxes, f * DT, emb=emb))
        assert sorted(out.track_id.tolist()) == [1, 2]
    infos = tr.active_tracks()
    assert [i.track_id for i in infos] == [1, 2]
    assert infos[0].embedding is not None and infos[0].embedding.shape == (32,)
    assert float(infos[0].embedding @ e[0]) > 0.95
    assert infos[1].embedding is None  # never embedded


def test_lost_tracks_are_removed_after_the_buffer():
    tr = FlockTracker(lost_buffer_s=1.0)
    for f in range(5):
        tr.update(dets([box(100, 100)], f * DT))
    for f in range(5, 25):
        tr.update(dets([], f * DT))
        if f * DT - 0.4 <= 1.0:
            assert [i.state for i in tr.active_tracks()] == (["lost"] if f > 4 else ["confirmed"])
    assert tr.active_tracks() == []
    removed = tr.removed_tracks_since_last_call()
    assert [r.track_id for r in removed] == [1] and removed[0].state == "removed"
    assert removed[0].hits == 5
    assert tr.removed_tracks_since_last_call() == []
    assert [e.kind for e in tr.pop_events()] == ["confirmed", "lost", "removed"]


def test_gallery_expires():
    rng = np.random.default_rng(5)
    tr = FlockTracker(lost_buffer_s=0.5, gallery_s=10.0)
    for f in range(5):
        tr.update(dets([box(100, 100)], f * DT, emb=[noisy(unit(60), rng)]))
    tr.update(dets([], 1.5))
    assert len(tr.gallery_tracks()) == 1
    tr.update(dets([], 20.0))
    assert tr.gallery_tracks() == []
    assert [r.track_id for r in tr.removed_tracks_since_last_call()] == [1]


def test_deterministic_and_reset():
    def run(tr):
        rng = np.random.default_rng(6)
        outs = []
        n = 12
        xy = rng.uniform(0, 500, (n, 2))
        for f in range(30):
            xy = xy + rng.normal(0, 3, (n, 2))
            keep = rng.random(n) > 0.2
            boxes = [box(x, y) for x, y in xy[keep]]
            emb = rng.normal(size=(len(boxes), 16))
            outs.append(tr.update(dets(boxes, f * DT, emb=emb)).track_id.tolist())
        return outs, [(e.kind, e.track_id) for e in tr.pop_events()]

    tr = FlockTracker()
    first = run(tr)
    tr.reset()
    assert tr.active_tracks() == [] and tr.now is None
    assert run(tr) == first
    assert run(FlockTracker()) == first


def test_timestamps():
    tr = FlockTracker(lost_buffer_s=0.25, frame_interval_s=0.1)
    for _ in range(3):  # default timestamp 0.0 on every frame: frame_interval_s apart
        tr.update(dets([box(100, 100)], 0.0))
    assert tr.now == pytest.approx(0.2)
    for _ in range(4):
        tr.update(dets([], 0.0))
    assert tr.removed_tracks_since_last_call()  # buffer counted in stream time
    with pytest.raises(ValueError, match="backwards"):
        tr.update(dets([], -1.0))
    with pytest.raises(ValueError, match="Detections"):
        tr.update(np.zeros((1, 4)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-finite"):
        tr.update(dets([[0, 0, np.nan, 1]], 5.0))


def test_kalman_output_boxes_are_smoothed():
    rng = np.random.default_rng(7)
    tr_det, tr_kf = FlockTracker(), FlockTracker(output_boxes="kalman")
    err_det, err_kf = [], []
    for f in range(60):
        true = np.array(box(100 + 5 * f, 100), np.float32)
        noisy_box = true + rng.normal(0, 2.0, 4).astype(np.float32)
        a = tr_det.update(dets([noisy_box], f * DT))
        b = tr_kf.update(dets([noisy_box], f * DT))
        if f > 20:
            err_det.append(np.abs(a.xyxy[0] - true).mean())
            err_kf.append(np.abs(b.xyxy[0] - true).mean())
    assert np.mean(err_kf) < np.mean(err_det)


def test_embedding_dimension_change_raises():
    tr = FlockTracker()
    tr.update(dets([box(1, 1)], 0.0, emb=np.ones((1, 8))))
    with pytest.raises(ValueError, match="dimension"):
        tr.update(dets([box(1, 1)], 0.1, emb=np.ones((1, 16))))


def test_iou_tracker_baseline():
    tr = IouTracker(max_age_s=0.3)
    ids = []
    for f in range(10):
        out = tr.update(dets([box(100 + 2 * f, 100), box(300, 300)], f * DT))
        ids.append(out.track_id.tolist())
    assert all(i == [1, 2] for i in ids)
    for f in range(10, 15):
        tr.update(dets([box(300, 300)], f * DT))
    out = tr.update(dets([box(120, 100), box(300, 300)], 1.5))
    assert out.track_id.tolist() == [3, 2]  # the baseline cannot bridge a 0.5 s gap


def test_embedding_wanted_flags_new_and_crowded_boxes_only():
    tr = FlockTracker()
    assert tr.embedding_wanted(dets([box(100, 100)], 0.0)).tolist() == [True]  # no tracks yet
    for f in range(3):
        tr.update(dets([box(100, 100), box(300, 100), box(318, 100)], f * DT))
    now, events = tr.now, len(tr.active_tracks())
    probe = dets(
        [box(100, 100), box(600, 400), box(309, 100), box(101, 100)],
        3 * DT,
        conf=[0.9, 0.9, 0.9, 0.05],
    )
    # alone on its track: no; new bird: yes; between two tracks: yes; below low_thresh: never.
    assert tr.embedding_wanted(probe).tolist() == [False, True, True, False]
    assert tr.now == now and len(tr.active_tracks()) == events  # nothing changed
    with pytest.raises(ValueError, match="ambiguity_iou"):
        tr.embedding_wanted(probe, ambiguity_iou=2.0)
    # With a budget of one crop, the new bird (no track at all) goes first.
    assert tr.embedding_wanted(probe, max_boxes=1).tolist() == [False, True, False, False]
    assert not tr.embedding_wanted(probe, max_boxes=0).any()


def test_frames_seconds_apart_use_the_sparse_motion_model():
    tr = make_tracker("flockid", meas_std=0.35, accel_std=0.5, sparse_meas_std=0.15, sparse_accel_std=2.0)
    box = np.array([[100.0, 100.0, 140.0, 140.0]], np.float32)
    for t in (0.0, 0.1, 0.2):
        tr.update(Detections(xyxy=box, confidence=np.array([0.9]), class_id=np.array([0]), timestamp=t))
    assert (tr.kf.meas_std, tr.kf.accel_std) == (0.35, 0.5)
    tr.update(Detections(xyxy=box, confidence=np.array([0.9]), class_id=np.array([0]), timestamp=4.2))
    assert (tr.kf.meas_std, tr.kf.accel_std) == (0.15, 2.0)
    tr.reset()
    assert tr.kf.meas_std == 0.35
