"""The in-memory synthetic world: determinism, ground truth consistency, behaviour and scripted events."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from datasets.synth import FlockWorld, HealthEvent, Removal, Tamper, WorldConfig
from datasets.synth.birds import lookalike_pairs_from_traits, make_flock

SMALL = dict(size_wh=(320, 180), birds=14)


def _take(world: FlockWorld, n: int | None = None) -> list:
    return list(world.frames(limit=n))


def test_same_seed_same_pixels_and_gt() -> None:
    a = _take(FlockWorld(WorldConfig(seed=3, frames=12, **SMALL)))
    b = _take(FlockWorld(WorldConfig(seed=3, frames=12, **SMALL)))
    assert len(a) == len(b) == 12
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.image, fb.image)
        assert np.array_equal(fa.gt.bird_id, fb.gt.bird_id)
        assert np.array_equal(fa.gt.xyxy, fb.gt.xyxy)
        assert np.array_equal(fa.gt.visibility, fb.gt.visibility)
    c = _take(FlockWorld(WorldConfig(seed=4, frames=12, **SMALL)))
    assert not np.array_equal(a[5].image, c[5].image)


def test_frame_fields_and_gt_consistency() -> None:
    cfg = WorldConfig(seed=11, frames=40, birds=30, size_wh=(400, 240), night_fraction=0.5)
    frames = _take(FlockWorld(cfg))
    w, h = cfg.size_wh
    seen_vis = []
    for f in frames:
        assert f.image.shape == (h, w, 3) and f.image.dtype == np.uint8
        assert f.camera_id == "cam0"
        g = f.gt
        n = len(g)
        for arr in (g.xyxy, g.visible_xyxy):
            assert arr.shape == (n, 4) and arr.dtype == np.float32
        assert g.bird_id.dtype == np.int64 and np.all(g.bird_id >= 1)
        assert np.all((g.visibility >= 0) & (g.visibility <= 1))
        box = g.xyxy[g.in_view]
        # Boxes lie inside the frame and are not empty.
        assert np.all(box[:, 0] >= 0) and np.all(box[:, 1] >= 0)
        assert np.all(box[:, 2] <= w) and np.all(box[:, 3] <= h)
        assert np.all(box[:, 2] > box[:, 0]) and np.all(box[:, 3] > box[:, 1])
        # Out of view: no box, no visibility.
        assert np.all(g.visibility[~g.in_view] == 0)
        assert np.all(g.xyxy[~g.in_view] == 0)
        # Visible pixels lie inside the full box (to a pixel: both go through the lens model);
        # something visible <=> a visible box.
        vis_rows = g.in_view & (g.visibility > 0)
        vb, fb = g.visible_xyxy[vis_rows], g.xyxy[vis_rows]
        assert np.all(vb[:, :2] >= fb[:, :2] - 1.0) and np.all(vb[:, 2:] <= fb[:, 2:] + 1.0)
        assert np.all(vb[:, 2] > vb[:, 0])
        # The visible box cannot hold more pixels than visibility * full box allows to be missing.
        seen_vis.extend(g.visibility[g.in_view].tolist())
        assert set(g.state.tolist()) <= {"ok", "sick", "dead"}
    seen = np.asarray(seen_vis)
    assert (seen < 0.5).mean() > 0.05 and (seen > 0.9).mean() > 0.2
    assert any(f.is_night for f in frames) and not all(f.is_night for f in frames)
    # Night frames are infra-red greyscale.
    night = next(f for f in frames if f.is_night).image.astype(int)
    assert np.abs(night[..., 0] - night[..., 1]).max() == 0 or np.abs(night[..., 0] - night[..., 1]).mean() < 2
    times = [f.time_s for f in frames]
    assert np.allclose(np.diff(times), 1 / cfg.fps)
    assert np.allclose(np.diff([f.timestamp for f in frames]), 1 / cfg.fps)


def test_dead_birds_do_not_move_and_sick_birds_are_slow() -> None:
    cfg = WorldConfig(seed=5, frames=120, birds=20, size_wh=(320, 180), dead_birds=2, sick_birds=2,
                      dead_window_s=(0.5, 1.0), sick_window_s=(0.0, 0.2), shake=False, leave_rate_per_hour=0)
    world = FlockWorld(cfg)
    dead_ids = [b.bird_id for b in world.birds if b.health[-1][1] == "dead"]
    assert len(dead_ids) == 2
    sick_ids = [b.bird_id for b in world.birds if b.health[-1][1] == "sick"]
    ok_ids = [b.bird_id for b in world.birds if len(b.health) == 1]
    positions: dict[int, list[np.ndarray]] = {i: [] for i in dead_ids}
    states = []
    path = {"sick": 0.0, "ok": 0.0}
    prev = world.sim.pos.copy()
    for f in world.frames():
        step = np.hypot(*(world.sim.pos - prev).T)
        prev = world.sim.pos.copy()
        if f.time_s > 1.0:
            path["sick"] += float(step[np.asarray(sick_ids) - 1].mean())
            path["ok"] += float(step[np.asarray(ok_ids) - 1].mean())
            sick_rows = np.isin(f.gt.bird_id, sick_ids) & f.gt.in_view
            assert set(f.gt.pose[sick_rows].tolist()) <= {"sick"}
        if f.time_s > 1.5:
            for i in dead_ids:
                positions[i].append(world.sim.pos[i - 1].copy())
                r = np.nonzero(f.gt.bird_id == i)[0][0]
                assert f.gt.state[r] == "dead" and f.gt.lying[r]
        states.append(set(f.gt.state.tolist()))
    for i in dead_ids:
        p = np.asarray(positions[i])
        assert np.allclose(p, p[0]), f"dead bird {i} moved"
    assert "sick" in states[-1] and "dead" in states[-1]
    assert path["sick"] < 0.5 * path["ok"], f"sick birds are not lethargic: {path}"


def test_endless_world_for_a_fake_camera() -> None:
    world = FlockWorld(WorldConfig(frames=None, birds=6, size_wh=(160, 96), sick_birds=1))
    frames = list(world.frames(limit=7))
    assert [f.index for f in frames] == list(range(7))
    assert any(len(b.health) > 1 for b in world.birds)


def test_growth_is_monotonic_and_size_follows_weight() -> None:
    birds = make_flock(6, "uniform", 1)
    for b in birds:
        w = [b.weight_g(d) for d in range(0, 60)]
        assert np.all(np.diff(w) > 0)
        assert 30 < w[0] < 60 and 1800 < w[35] < 3500
    # A sparse sequence over 10 days: the same bird's box grows.
    cfg = WorldConfig(seed=2, frames=11, time_step_s=86400, birds=8, size_wh=(320, 180), start_day=10,
                      leave_rate_per_hour=0, camera="topdown")
    world = FlockWorld(cfg)
    lengths = []
    for f in world.frames():
        lengths.append(world.sim.length_m.copy())
        assert f.age_days == pytest.approx(10 + f.index)
    lengths_a = np.asarray(lengths)
    assert np.all(np.diff(lengths_a, axis=0) > 0)
    js = world.birds_json()
    b0 = js["birds"][0]
    ws = [b0["weight_g_by_day"][str(d)] for d in range(10, 21)]
    assert ws == sorted(ws) and ws[-1] > 2 * ws[0]


def test_birds_leave_and_come_back() -> None:
    cfg = WorldConfig(seed=9, frames=300, birds=24, size_wh=(320, 180), leave_rate_per_hour=60, absence_s=(2, 12))
    seen: dict[int, list[int]] = {}
    for f in FlockWorld(cfg).frames():
        for i in f.gt.bird_id[f.gt.in_view & (f.gt.visibility > 0.1)]:
            seen.setdefault(int(i), []).append(f.index)
    reentries = sum(int(np.sum(np.diff(v) >= 20)) for v in seen.values())
    assert reentries >= 3


def test_mixed_flock_has_twins_and_uniform_flock_looks_alike() -> None:
    mixed = make_flock(40, "mixed", 7)
    twins = {b.bird_id for b in mixed if b.traits.twin_of is not None}
    twins |= {b.traits.twin_of for b in mixed if b.traits.twin_of is not None}
    assert len(twins) >= 10  # at least a quarter of the birds have a near-twin
    uniform = make_flock(20, "uniform", 7)
    from dataclasses import asdict

    pairs_u = lookalike_pairs_from_traits([asdict(b.traits) for b in uniform])
    assert len(pairs_u) >= 0.5 * 20 * 19 / 2
    pairs_m = lookalike_pairs_from_traits([asdict(b.traits) for b in mixed])
    assert len(pairs_m) >= 10
    # Twins really are look-alikes by the same measure.
    idx = {(i, j) for i, j in pairs_m}
    b = next(b for b in mixed if b.traits.twin_of is not None)
    pair = tuple(sorted((b.bird_id - 1, b.traits.twin_of - 1)))
    assert pair in idx


def test_two_cameras_share_bird_ids() -> None:
    cfg = WorldConfig(seed=4, frames=20, birds=30, size_wh=(320, 180), cameras=2, leave_rate_per_hour=0)
    frames = _take(FlockWorld(cfg))
    assert len(frames) == 40
    assert [f.camera_id for f in frames[:4]] == ["cam0", "cam1", "cam0", "cam1"]
    both = 0
    for a, b in zip(frames[0::2], frames[1::2], strict=True):
        assert a.index == b.index and a.time_s == b.time_s
        assert np.array_equal(a.gt.bird_id, b.gt.bird_id)
        both += int(np.sum(a.gt.in_view & b.gt.in_view))
        only = np.sum(a.gt.in_view ^ b.gt.in_view)
        assert only > 0
    assert both > 0  # the views overlap: some birds are seen by both cameras at once


def test_same_birds_on_another_farm() -> None:
    a = FlockWorld(WorldConfig(seed=1, appearance_seed=42, frames=2, **SMALL))
    b = FlockWorld(WorldConfig(seed=2, appearance_seed=42, frames=2, **SMALL))
    assert [x.traits for x in a.birds] == [x.traits for x in b.birds]
    assert [x.growth for x in a.birds] == [x.growth for x in b.birds]
    fa, fb = _take(a, 1)[0], _take(b, 1)[0]
    assert not np.array_equal(fa.image, fb.image)


def test_removal_drops_birds_from_the_farm() -> None:
    cfg = WorldConfig(seed=6, frames=30, birds=40, size_wh=(320, 180), removals=[Removal(at_s=1.0, fraction=0.1)])
    world = FlockWorld(cfg)
    counts = [(f.time_s, len(f.gt)) for f in world.frames()]
    before = [n for t, n in counts if t < 1.0]
    after = [n for t, n in counts if t >= 1.0]
    assert set(before) == {40} and set(after) == {36}
    removed = [b for b in world.birds if b.removed_at_s is not None]
    assert len(removed) == 4 and all(b.removed_at_s == 1.0 for b in removed)


def test_camera_tampering() -> None:
    tamper = [Tamper(kind="covered", start_s=0.5, end_s=1.0), Tamper(kind="frozen", start_s=1.0, end_s=1.5),
              Tamper(kind="moved", start_s=1.5, end_s=2.0), Tamper(kind="dark", start_s=2.0, end_s=2.5)]
    cfg = WorldConfig(seed=8, frames=30, birds=20, size_wh=(320, 180), tamper=tamper)
    frames = _take(FlockWorld(cfg))
    by = {f.index: f for f in frames}
    assert by[2].tamper is None
    assert by[6].tamper == "covered" and by[6].image.mean() < 40 and not by[6].gt.in_view.any()
    assert by[11].tamper == "frozen" and np.array_equal(by[11].image, by[12].image)
    assert np.array_equal(by[11].image, by[9].image)  # the last live frame, repeated
    assert by[16].tamper == "moved"
    assert by[21].tamper == "dark" and by[21].image.mean() < 0.25 * by[2].image.mean()
    assert by[27].tamper is None


def test_sparse_time_and_scripted_health() -> None:
    cfg = WorldConfig(seed=3, frames=24, time_step_s=3600, birds=16, size_wh=(320, 180), night_fraction=0.4,
                      health_events=[HealthEvent(bird=2, state="sick", at_s=5 * 3600),
                                     HealthEvent(bird=2, state="dead", at_s=9 * 3600)])
    frames = _take(FlockWorld(cfg))
    night = [f.is_night for f in frames]
    assert 0.25 <= np.mean(night) <= 0.55
    st = [f.gt.state[f.gt.bird_id == 3][0] for f in frames]
    assert st[4] == "ok" and st[5] == "sick" and st[9] == "dead" and st[-1] == "dead"


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        WorldConfig(birds=0)
    with pytest.raises(ValidationError):
        WorldConfig(flock="zoo")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WorldConfig(bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        WorldConfig(birds=3, sick_birds=2, dead_birds=2)
    with pytest.raises(ValidationError):
        Tamper(kind="covered", start_s=5, end_s=1)


# ---------------------------------------------------------------- filming at given instants (bursts)

# Three bursts of three frames a tenth of a second apart, six hours between bursts.
BURSTS = [600.0 + b * 21600.0 + k * 0.1 for b in range(3) for k in range(3)]
TINY = dict(size_wh=(160, 96), birds=10, frames=None)


def _same_frames(a: list, b: list) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.image, fb.image)
        assert (fa.index, fa.time_s, fa.timestamp, fa.camera_id, fa.is_night, fa.tamper, fa.age_days) == (
            fb.index, fb.time_s, fb.timestamp, fb.camera_id, fb.is_night, fb.tamper, fb.age_days)
        for name in ("bird_id", "xyxy", "visible_xyxy", "visibility", "state", "in_view", "pose", "weight_g"):
            assert np.array_equal(getattr(fa.gt, name), getattr(fb.gt, name)), name


def test_times_on_the_step_grid_film_what_a_fixed_step_films() -> None:
    cfg = WorldConfig(seed=12, frames=6, time_step_s=3600, birds=10, size_wh=(160, 96), cameras=2, sick_birds=1,
                      dead_birds=1, night_fraction=0.3)
    fixed = _take(FlockWorld(cfg))
    timed = list(FlockWorld(cfg).frames(times_s=[k * 3600.0 for k in range(6)]))
    _same_frames(fixed, timed)


def test_bursts_follow_simulated_time_and_a_later_call_continues_the_farm() -> None:
    cfg = WorldConfig(seed=13, start_day=20, leave_rate_per_hour=0, **TINY,  # type: ignore[arg-type]
                      health_events=[HealthEvent(bird=4, state="dead", at_s=20000.0)],
                      removals=[Removal(at_s=40000.0, fraction=0.3)])
    world = FlockWorld(cfg)
    one = list(world.frames(times_s=BURSTS))
    assert [f.time_s for f in one] == BURSTS and [f.index for f in one] == list(range(9))
    assert [f.timestamp for f in one] == [world.start_epoch + t for t in BURSTS]
    assert [f.age_days for f in one] == pytest.approx([20 + t / 86400 for t in BURSTS])
    # Growth, health events and removals that fall in the gaps show up at the next burst.
    w1 = [float(f.gt.weight_g[0]) for f in one]
    assert w1[0] == w1[2] < w1[3] == w1[5] < w1[6]
    assert [len(f.gt) for f in one] == [10] * 6 + [7] * 3
    removed = {b.bird_id for b in world.birds if b.removed_at_s is not None}
    assert not removed & set(one[-1].gt.bird_id.tolist())
    if 5 not in removed:
        assert [f.gt.state[f.gt.bird_id == 5][0] for f in one] == ["ok"] * 3 + ["dead"] * 6
    # The birds move little within a burst and are all over the place after a gap.
    def shift(a: int, b: int) -> float:
        both = one[a].gt.in_view & one[b].gt.in_view & (one[a].gt.state != "dead")
        return float(np.abs(one[a].gt.xyxy[both] - one[b].gt.xyxy[both]).mean())
    assert shift(0, 1) < 3 and shift(2, 3) > 3 * max(shift(0, 1), 1.0)
    # Same seed and instants: same frames; the same instants filmed in two calls: the same farm.
    _same_frames(one, list(FlockWorld(cfg).frames(times_s=np.asarray(BURSTS))))
    split = FlockWorld(cfg)
    parts = list(split.frames(times_s=BURSTS[:4])) + list(split.frames(times_s=BURSTS[4:]))
    _same_frames(one, parts)
    assert len(list(FlockWorld(cfg).frames(limit=2, times_s=BURSTS))) == 2


@pytest.mark.parametrize(("times", "needle"), [
    ([0.0, 5.0, 3.0], r"non-decreasing, times_s\[2\]=3.0"),
    ([-1.0], r"times_s\[0\]=-1.0 must be a finite number >= 0"),
    ([float("nan")], "finite"),
])
def test_bad_instants_are_refused(times: list[float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        FlockWorld(WorldConfig(seed=1, **TINY)).frames(times_s=times)  # type: ignore[arg-type]


def test_a_world_is_filmed_forward_and_one_way_only() -> None:
    world = FlockWorld(WorldConfig(seed=1, **TINY))  # type: ignore[arg-type]
    assert len(list(world.frames(times_s=[10.0, 20.0]))) == 2
    with pytest.raises(ValueError, match="already filmed up to t=20.0"):
        world.frames(times_s=[15.0])
    assert [f.time_s for f in world.frames(times_s=[20.0, 30.0])] == [20.0, 30.0]
    with pytest.raises(ValueError, match="fresh FlockWorld at a fixed step"):
        world.frames()
    fixed = FlockWorld(WorldConfig(seed=1, **TINY))  # type: ignore[arg-type]
    assert len(list(fixed.frames(limit=2))) == 2
    with pytest.raises(ValueError, match="fresh FlockWorld at times_s"):
        fixed.frames(times_s=[1.0])


def _incident_track(seed: int, **options: object) -> dict[int, tuple[bool, float, float]]:
    """Per bird (3 sick, 7 dead, from the second burst on, camera 0): always seen, how far its box
    centre strays from where it was first seen (px), its size (px)."""
    events = [HealthEvent(bird=2, state="sick", at_s=BURSTS[3]), HealthEvent(bird=6, state="dead", at_s=BURSTS[3])]
    cfg = WorldConfig(seed=seed, size_wh=(320, 180), birds=10, frames=None, cameras=2, camera="oblique",
                      scene="run", bird_px=30, shake=False, leave_rate_per_hour=0.5, absence_s=(60, 1800),
                      health_events=events, **options)  # type: ignore[arg-type]
    frames = [f for f in FlockWorld(cfg).frames(times_s=BURSTS) if f.camera_id == "cam0"][3:]
    out = {}
    for bird in (3, 7):
        rows = [np.nonzero(f.gt.bird_id == bird)[0][0] for f in frames]
        seen = all(f.gt.in_view[r] and f.gt.visibility[r] > 0 for f, r in zip(frames, rows, strict=True))
        box = np.array([f.gt.xyxy[r] for f, r in zip(frames, rows, strict=True)])
        centre = (box[:, :2] + box[:, 2:]) / 2
        size = float(np.median(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])))
        out[bird] = (seen, float(np.hypot(*(centre - centre[0]).T).max()), size)
    return out


# Seed 7: bird 3 is away (out of the arena) when it falls sick.
@pytest.mark.parametrize("seed", [5, 6, 7])
def test_incidents_happen_in_view_and_sick_birds_stay_put(seed: int) -> None:
    track = _incident_track(seed, incident_camera=0, sick_stay_put=True)
    (sick_seen, sick_moved, sick_size), (dead_seen, dead_moved, _) = track[3], track[7]
    assert sick_seen and dead_seen, track
    # A dead bird does not move; a sick one sits about where it was, hours later.
    assert dead_moved < 1.0 and sick_moved < 1.5 * sick_size, track


def test_without_the_options_incidents_happen_anywhere() -> None:
    track = _incident_track(6)
    assert not track[3][0] and not track[7][0]
    sick_seen, sick_moved, sick_size = _incident_track(6, incident_camera=0)[3]
    assert not sick_seen or sick_moved > 3 * sick_size
    with pytest.raises(ValidationError, match="incident_camera 2 out of range"):
        WorldConfig(cameras=2, incident_camera=2)


def test_a_sick_bird_does_not_drift_off_over_many_gaps() -> None:
    cfg = WorldConfig(seed=8, size_wh=(320, 180), birds=8, frames=None, camera="oblique", scene="run", bird_px=30,
                      shake=False, health_events=[HealthEvent(bird=1, state="sick", at_s=0.0)], incident_camera=0,
                      sick_stay_put=True)
    frames = list(FlockWorld(cfg).frames(times_s=[h * 3600.0 for h in range(30)]))
    rows = [np.nonzero(f.gt.bird_id == 2)[0][0] for f in frames]
    assert all(f.gt.in_view[r] and f.gt.state[r] == "sick" for f, r in zip(frames, rows, strict=True))
    box = np.array([f.gt.xyxy[r] for f, r in zip(frames, rows, strict=True)])
    centre = (box[:, :2] + box[:, 2:]) / 2
    size = float(np.median(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])))
    # Shuffled around the spot where it sat down (a third of its length), not a random walk away from it
    # (which would take it about 1.6 lengths away after 15 gaps).
    away = np.hypot(*(centre - centre[0]).T)
    assert float(np.median(away)) < size and float(away.max()) < 2.5 * size, (away.round(1).tolist(), size)


@pytest.mark.parametrize("seed", [0, 2])  # seeds with different overlay styles
def test_overlay_masks_cover_every_burnt_in_pixel(seed: int) -> None:
    """What an installer would mask: the pixels the DVR overlay changes lie inside the world's masks."""
    # No JPEG: its 8x8 blocks spread the text's change a few pixels beyond it.
    cfg = dict(seed=seed, frames=2, birds=10, size_wh=(320, 180), cameras=2, compression=False)
    with_text = FlockWorld(WorldConfig(**cfg, overlay=True))
    plain = FlockWorld(WorldConfig(**cfg, overlay=False))
    for a, b in zip(with_text.frames(), plain.frames(), strict=True):
        ci = [c.camera_id for c in with_text.cameras].index(a.camera_id)
        changed = np.argwhere(np.any(a.image != b.image, axis=2))  # (y, x)
        assert len(changed) > 50  # the overlay is drawn
        w, h = 320, 180
        masks = np.asarray(with_text.overlay_masks_xyxyn(ci)) * [w, h, w, h]
        assert len(masks) == 2 and plain.overlay_masks_xyxyn(ci) == []
        inside = np.zeros(len(changed), bool)
        for x0, y0, x1, y1 in masks:
            inside |= (changed[:, 1] >= x0 - 1) & (changed[:, 1] <= x1 + 1) & (changed[:, 0] >= y0 - 1) & (
                changed[:, 0] <= y1 + 1)
        assert inside.all(), changed[~inside][:5]
        # ... and the masks stay small: under 12 % of the frame in all.
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in masks) / (w * h)
        assert area < 0.12, area


@pytest.mark.parametrize("camera", ["oblique", "topdown"])
def test_floor_marks_put_every_camera_on_one_plan(camera: str) -> None:
    """The installer's floor marks of each camera fit a homography that maps a spot of the floor seen by
    two cameras to the same place on the plan (whole-pixel marks, whole-cm measurements: a few cm off)."""
    from vision.calibration import CalibrationConfig
    from vision.floor import image_to_floor

    world = FlockWorld(WorldConfig(seed=3, frames=1, birds=4, size_wh=(640, 360), cameras=2, camera=camera))
    for ci, cam in enumerate(world.cameras):
        h = CalibrationConfig(floor_points=world.floor_marks(ci)).floor_homography()  # type: ignore[arg-type]
        assert h is not None
        # Floor spots in the lower half of this camera's view, where the marks are.
        px = np.array([[0.3 * 640, 0.7 * 360], [0.5 * 640, 0.8 * 360], [0.7 * 640, 0.65 * 360]])
        truth_cm = cam.ground_of(px) * 100.0
        assert np.abs(image_to_floor(h, px) - truth_cm).max() < 5.0
    # A floor point both cameras see lands on one plan position from either camera.
    both = world.cameras[0].ground_of(np.array([[0.75 * 640, 0.75 * 360]]))
    uv1, _ = world.cameras[1].project_ground(both)
    assert 0 <= uv1[0, 0] < 640 and 0 <= uv1[0, 1] < 360  # the cameras' views overlap there
    via = [image_to_floor(CalibrationConfig(floor_points=world.floor_marks(ci)).floor_homography(), uv)
           for ci, uv in ((0, np.array([[0.75 * 640, 0.75 * 360]])), (1, uv1))]  # type: ignore[arg-type]
    assert np.hypot(*(via[0] - via[1])[0]) < 5.0
