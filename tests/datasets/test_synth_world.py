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
