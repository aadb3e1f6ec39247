"""Headcount: instantaneous counts, verified counts over windows, the band, several cameras."""

from __future__ import annotations

import numpy as np
import pytest

from vision.counting import (
    CountingConfig,
    HeadcountCounter,
    HeadcountEstimate,
    combine_headcounts,
    instantaneous_count,
)
from vision.detections import Detections


def dets(track_ids: list[int], bird_ids: list[str], ts: float, cam: str = "cam0") -> Detections:
    n = len(track_ids)
    return Detections(
        xyxy=np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)),
        confidence=np.full(n, 0.9, np.float32),
        class_id=np.zeros(n, np.int64),
        track_id=np.array(track_ids, np.int64),
        bird_id=np.array(bird_ids, dtype=object),
        timestamp=ts,
        camera_id=cam,
    )


def feed(
    counter: HeadcountCounter, frames: list[tuple[list[int], list[str]]], t0: float = 0.0, dt: float = 1.0
) -> None:
    for k, (tids, bids) in enumerate(frames):
        counter.observe(dets(tids, bids, t0 + k * dt))


def test_instantaneous_count_uses_tracked_boxes_when_a_tracker_ran() -> None:
    d = dets([1, -1, 3], ["", "", ""], 0.0)
    assert instantaneous_count(d) == 2
    untracked = dets([-1, -1], ["", ""], 0.0)
    assert instantaneous_count(untracked) == 2
    assert instantaneous_count(Detections.empty()) == 0


def test_reentry_is_not_double_counted() -> None:
    c = HeadcountCounter()
    a, b = "bird-000001", "bird-000002"
    # a and b visible, then a leaves (track 1 ends), then comes back as track 7.
    feed(c, [([1, 2], [a, b])] * 10 + [([2], [b])] * 10 + [([2, 7], [b, a])] * 10)
    est = c.estimate(0.0, 100.0)
    assert est.value == 2
    assert est.bird_ids == frozenset({a, b})
    assert est.instantaneous_max == 2
    assert est.low <= est.value <= est.high


def test_window_selects_only_its_frames_and_min_sightings() -> None:
    c = HeadcountCounter(CountingConfig(min_sightings=3))
    feed(c, [([1], ["bird-000001"])] * 10, t0=0.0)
    feed(c, [([2], ["bird-000002"])] * 10, t0=100.0)
    feed(c, [([3], ["bird-000003"])] * 2, t0=200.0)  # too few sightings to count
    assert c.estimate(0.0, 50.0).bird_ids == {"bird-000001"}
    assert c.estimate(90.0, 150.0).bird_ids == {"bird-000002"}
    assert c.estimate(0.0, 300.0).value == 2
    stale = c.estimate(500.0, 600.0)
    assert stale.stale and stale.value == 0


def test_unresolved_tracks_widen_the_upper_band() -> None:
    c = HeadcountCounter(CountingConfig(min_track_frames=5))
    ids = [f"bird-{i:06d}" for i in range(1, 11)]
    frames = [([*range(1, 11), 50, 51], [*ids, "", ""])] * 20
    feed(c, frames)
    est = c.estimate(0.0, 100.0)
    assert len(est.bird_ids) == 10
    assert est.unresolved_tracks == 2
    assert est.high >= 12  # two long tracks that never got an id may be two more birds
    assert est.instantaneous_max == 12
    assert est.value == est.floor == 12  # and every frame shows 12 birds: the count cannot be lower

    off = HeadcountCounter(CountingConfig(min_track_frames=5, floor_percentile=0.0))
    feed(off, frames)
    assert off.estimate(0.0, 100.0).value == 10


@pytest.mark.parametrize(
    ("frames", "dt", "counted", "why"),
    [
        (2, 4.0, True, "a frame every 4 s: a bird's path breaks into tracks of ~2 frames"),
        (1, 4.0, False, "a single box is a flicker of the detector"),
        (5, 0.1, False, "half a second at 10 fps is a flicker"),
        (10, 0.1, True, "min_track_frames frames"),
        (3, 1.0, True, "3 frames over 2 s"),
    ],
)
def test_what_makes_an_unresolved_track_long_enough(frames: int, dt: float, counted: bool, why: str) -> None:
    c = HeadcountCounter(CountingConfig(min_track_frames=10, min_track_s=2.0, floor_percentile=0.0))
    feed(c, [([1], ["bird-000001"])] * 20, dt=dt)  # one identified bird for the whole window
    feed(c, [([1, 9], ["bird-000001", ""])] * frames, t0=20 * dt, dt=dt)
    est = c.estimate(0.0, 1e4)
    assert est.unresolved_tracks == int(counted), why


def test_ambiguous_enrolments_lower_the_band() -> None:
    class Info:
        def __init__(self, first: float, elim: bool) -> None:
            self.first_seen = first
            self.enrol_nearest_sim = 0.0
            self.enrolled_by_elimination = elim

    c = HeadcountCounter()
    feed(c, [([1, 3], ["bird-000001", "bird-000003"])] * 10 + [([2], ["bird-000002"])] * 10)
    infos = {"bird-000001": Info(0.0, False), "bird-000002": Info(0.0, True), "bird-000003": Info(-50.0, True)}
    est = c.estimate(0.0, 100.0, birds=infos)
    # Only bird 2 was enrolled inside this window by elimination: it may duplicate another bird.
    assert est.suspect_ids == {"bird-000002"}
    assert (est.low, est.value) == (2, 3)


def test_ids_held_only_on_guesses_lower_the_band() -> None:
    """An id a look-alike got only as a guess (identity_confidence < 0.5) may be a bird already counted
    under its own id; one held at least once with confidence is not suspect."""
    c = HeadcountCounter(CountingConfig(floor_percentile=0.0))
    a, b, g = "bird-000001", "bird-000002", "bird-000003"

    def visit(t0: float, b_conf: float) -> None:
        for k in range(10):
            d = dets([1, 2, 3], [a, b, g], t0 + k)
            conf = np.array([0.9, b_conf if k == 9 else 0.3, 0.3], np.float32)  # g is never sure
            c.observe(Detections(xyxy=d.xyxy, confidence=d.confidence, class_id=d.class_id, track_id=d.track_id,
                                 bird_id=d.bird_id, identity_confidence=conf, timestamp=d.timestamp,
                                 camera_id=d.camera_id))

    visit(0.0, 0.6)  # b is sure once in this visit
    visit(100.0, 0.3)  # and only guessed in this one
    est = c.estimate(0.0, 50.0)
    assert est.suspect_ids == {g}
    assert (est.low, est.value) == (2, 3)
    assert c.estimate(90.0, 150.0).suspect_ids == {b, g}
    assert c.estimate(0.0, 150.0).suspect_ids == {g}


def test_two_cameras_seeing_the_same_bird_count_it_once() -> None:
    c0, c1 = HeadcountCounter(camera_id="cam0"), HeadcountCounter(camera_id="cam1")
    feed(c0, [([1, 2], ["bird-000001", "bird-000002"])] * 10)
    feed(c1, [([5, 6], ["bird-000002", "bird-000003"])] * 10)
    total = combine_headcounts([c0.estimate(0, 100), c1.estimate(0, 100)])
    assert total.value == 3
    assert total.low <= total.value <= total.high
    assert combine_headcounts([HeadcountEstimate(0, 0, 0, stale=True)]).stale
    with pytest.raises(ValueError):
        combine_headcounts([])


def test_lookalike_ids_never_seen_together_count_as_the_fewest_birds() -> None:
    # Twins A and B got three ids: X, Y (seen together: two birds) and Z, which only ever appears when
    # one of them is away. Z could be either twin: the fewest birds that explain it is 2, not 3.
    looks = {
        "bird-000001": frozenset({"bird-000002", "bird-000003"}),
        "bird-000002": frozenset({"bird-000001", "bird-000003"}),
        "bird-000003": frozenset({"bird-000001", "bird-000002"}),
    }
    x, y, z, other = "bird-000001", "bird-000002", "bird-000003", "bird-000009"
    c = HeadcountCounter(CountingConfig(floor_percentile=0.0))
    frames = [([1, 2, 9], [x, y, other])] * 10 + [([3, 9], [z, other])] * 10 + [([4, 9], [x, other])] * 10
    for k, (tids, bids) in enumerate(frames):
        c.observe(dets(tids, bids, float(k)), lookalikes=looks)
    est = c.estimate(0.0, 100.0, lookalikes=looks)
    assert len(est.bird_ids) == 4 and est.value == 3
    assert est.high >= 4 and est.low <= est.value
    assert c.estimate(0.0, 100.0).value == 4  # without look-alike information nothing is merged
    # Once Z is seen next to X and Y at the same time, it is provably a third bird.
    for k in range(5):
        c.observe(dets([1, 2, 3], [x, y, z], 40.0 + k), lookalikes=looks)
    assert c.estimate(0.0, 100.0, lookalikes=looks).value == 4


def _birds(n: int, first_tid: int = 1) -> tuple[list[int], list[str]]:
    return list(range(first_tid, first_tid + n)), [f"bird-{i:06d}" for i in range(first_tid, first_tid + n)]


EMPTY: tuple[list[int], list[str]] = ([], [])
B8 = _birds(8)


@pytest.mark.parametrize(
    ("name", "frames", "cfg", "value", "high_max"),
    [
        # (frames of (track ids, bird ids), config overrides, expected value, largest acceptable high)
        ("no detections at all", [EMPTY] * 20, {}, 0, 0),
        ("one frame", [B8], {"min_sightings": 1}, 8, 8 + 4),
        # The median frame shows no bird: coverage ~0, q -> 1; the old formula gave ~8 million.
        ("coverage zero", [B8] + [EMPTY] * 9, {"min_sightings": 1}, 8, 8 + 4),
        ("coverage tiny", [B8] + [EMPTY] * 3 + [_birds(1)] * 6, {"min_sightings": 1}, 8, 8 + 4),
        ("full coverage", [B8] * 30, {}, 8, 8),
        ("cap off", [B8] + [EMPTY] * 9, {"min_sightings": 1, "max_missed_fraction": 0.0}, 8, 8),
    ],
)
def test_headcount_band_stays_bounded(
    name: str, frames: list[tuple[list[int], list[str]]], cfg: dict[str, float], value: int, high_max: int
) -> None:
    c = HeadcountCounter(CountingConfig(**cfg))  # type: ignore[arg-type]
    feed(c, frames, t0=100.0, dt=30.0)
    est = c.estimate(100.0, 100.0 + 30.0 * len(frames))
    assert est.value == value, name
    assert est.low <= est.value <= est.high <= high_max, (name, est.as_dict())
    assert est.expected_missed <= CountingConfig(**cfg).max_missed_fraction * est.value + 1e-9  # type: ignore[arg-type]


def test_headcount_high_is_bounded_by_value_unresolved_tracks_and_the_missed_cap() -> None:
    # 10 identified birds in a few frames, 6 long tracks that never got an id, most frames empty.
    c = HeadcountCounter(CountingConfig(min_sightings=1, min_track_frames=2))
    tids, bids = _birds(10)
    frames = [(tids + list(range(100, 106)), bids + [""] * 6)] * 3 + [EMPTY] * 20
    feed(c, frames, t0=0.0, dt=30.0)
    est = c.estimate(0.0, 30.0 * len(frames))
    assert est.value == 16  # the floor: one frame shows 16 boxes
    assert est.unresolved_tracks == 6
    assert est.high <= est.value + est.unresolved_tracks + int(np.ceil(0.5 * est.value))
    both = combine_headcounts([est, est])
    assert both.high <= both.value + both.unresolved_tracks + int(np.ceil(0.5 * both.value))


def test_coverage_below_one_widens_the_band_with_many_looks_less_than_with_few() -> None:
    few, many = HeadcountCounter(CountingConfig(min_sightings=1)), HeadcountCounter(CountingConfig(min_sightings=1))
    # Half of the birds in each frame (alternating halves): coverage 0.5.
    a, b = _birds(5), _birds(5, first_tid=6)
    feed(few, [a, b], t0=0.0, dt=30.0)
    feed(many, [a, b] * 20, t0=0.0, dt=30.0)
    e_few, e_many = few.estimate(0.0, 60.0), many.estimate(0.0, 1200.0)
    assert e_few.value == e_many.value == 10
    assert 0.0 < e_many.expected_missed < e_few.expected_missed <= 5.0
