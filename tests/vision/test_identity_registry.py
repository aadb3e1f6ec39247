"""IdentityRegistry: open-set matching, enrolment, look-alikes, uniqueness, persistence, snapshot."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from vision.detections import Detections
from vision.identity import IdentityConfig, IdentityRegistry, decode_prototype

DIM = 32


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def identities(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, DIM)))


def noisy(v: np.ndarray, rng: np.random.Generator, sigma: float = 0.05) -> np.ndarray:
    return unit(v + rng.normal(0, sigma, v.shape))


def frame(track_ids: list[int], emb: np.ndarray | None, *, ts: float, cam: str = "cam0") -> Detections:
    n = len(track_ids)
    xyxy = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(n)], np.float32).reshape(-1, 4)
    return Detections(
        xyxy=xyxy,
        confidence=np.full(n, 0.9, np.float32),
        class_id=np.zeros(n, np.int64),
        track_id=np.array(track_ids, np.int64),
        embedding=emb,
        timestamp=ts,
        camera_id=cam,
        frame_index=int(ts * 10),
    )


def run(reg: IdentityRegistry, tracks: dict[int, np.ndarray], n_frames: int, *, t0: float = 0.0,
        cam: str = "cam0", seed: int = 1, step_s: float = 0.1) -> Detections:
    rng = np.random.default_rng(seed)
    out = frame([], None, ts=t0)
    for f in range(n_frames):
        ids = list(tracks)
        emb = np.stack([noisy(tracks[t], rng) for t in ids]) if ids else None
        out = reg.assign(frame(ids, emb, ts=t0 + f * step_s, cam=cam))
    return out


def test_enrols_after_enough_frames_and_keeps_the_id() -> None:
    reg = IdentityRegistry(None, "farm", IdentityConfig(enroll_min_frames=4))
    v = identities(3)
    out = run(reg, {1: v[0], 2: v[1], 3: v[2]}, 3)
    assert list(out.bird_id) == ["", "", ""]  # 3 embeddings < enroll_min_frames
    out = run(reg, {1: v[0], 2: v[1], 3: v[2]}, 5, t0=1.0)
    assert len(reg) == 3
    assert all(b.startswith("bird-") and len(b) == len("bird-000001") for b in out.bird_id)
    assert len(set(out.bird_id)) == 3
    assert np.all(out.identity_confidence > 0.5)
    first = list(out.bird_id)
    out = run(reg, {1: v[0], 2: v[1], 3: v[2]}, 10, t0=2.0)
    assert list(out.bird_id) == first and len(reg) == 3


def test_reentry_gets_the_same_id_not_a_new_one() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(4)
    out = run(reg, {1: v[0], 2: v[1]}, 10)
    id_a = out.bird_id[0]
    reg.end_tracks("cam0", [1])  # the bird walked out of view
    out = run(reg, {2: v[1], 7: v[0], 8: v[2]}, 10, t0=5.0)
    assert out.bird_id[1] == id_a  # track 7 is bird A again
    assert len(reg) == 3  # only v[2] is new
    assert out.identity_confidence[1] > 0.5


def test_rows_without_embedding_or_track_keep_previous_decision() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(1)
    out = run(reg, {5: v[0]}, 8)
    bid = out.bird_id[0]
    dets = frame([5, -1], np.zeros((2, DIM), np.float32), ts=2.0)
    out = reg.assign(dets)
    assert list(out.bird_id) == [bid, ""]
    assert out.identity_confidence[1] == 0.0


def test_lookalikes_seen_together_are_two_birds_by_elimination() -> None:
    reg = IdentityRegistry(None, "farm")
    base = identities(1)[0]
    twin = unit(base + 0.15 * identities(1, seed=9)[0])
    assert float(base @ twin) > 0.9  # closer than the match threshold: appearance alone can't separate
    out = run(reg, {1: base}, 10)
    out = run(reg, {1: base, 2: twin}, 10, t0=2.0)
    assert len(reg) == 2 and out.bird_id[0] != out.bird_id[1] and all(out.bird_id)
    assert reg.bird(str(out.bird_id[1])).enrolled_by_elimination


def test_ambiguous_match_gets_low_confidence_and_does_not_move_prototypes() -> None:
    reg = IdentityRegistry(None, "farm")
    base = identities(1)[0]
    twin = unit(base + 0.12 * identities(1, seed=3)[0])
    out = run(reg, {1: base, 2: twin}, 10)
    ids = list(out.bird_id)
    protos = {b: reg.prototype(b) for b in ids}
    reg.end_tracks("cam0", [1, 2])
    # Both look-alikes are out of view; a track halfway between them comes in.
    mid = unit(base + twin)
    out = run(reg, {3: mid}, 10, t0=5.0)
    assert out.bird_id[0] in ids
    assert out.identity_confidence[0] < 0.5
    assert len(reg) == 2
    for b in ids:
        np.testing.assert_allclose(reg.prototype(b), protos[b])

    strict = IdentityRegistry(None, "farm", IdentityConfig(assign_ambiguous=False))
    run(strict, {1: base, 2: twin}, 10)
    strict.end_tracks("cam0", [1, 2])
    out = run(strict, {3: mid}, 10, t0=5.0)
    assert out.bird_id[0] == "" and len(strict) == 2


def test_one_bird_one_live_track_per_camera_but_shared_across_cameras() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(2)
    a = run(reg, {1: v[0], 2: v[1]}, 10, cam="cam0")
    b = run(reg, {11: v[1], 12: v[0]}, 10, cam="cam1")
    assert set(a.bird_id) == set(b.bird_id) and len(reg) == 2
    assert b.bird_id[0] == a.bird_id[1]
    # A new cam0 track that looks like bird 0 while track 1 still holds it does not get its id.
    rng = np.random.default_rng(0)
    out = None
    for f in range(10):
        dets = frame([1, 2, 3], np.stack([noisy(v[0], rng), noisy(v[1], rng), noisy(v[0], rng)]),
                     ts=3.0 + f * 0.1)
        out = reg.assign(dets)
    assert out is not None
    held = [x for x in out.bird_id if x]
    assert len(held) == len(set(held))


def test_tracker_identity_switch_releases_the_id() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(2)
    out = run(reg, {1: v[0], 2: v[1]}, 10)
    b = out.bird_id[1]
    reg.end_tracks("cam0", [2])
    out = run(reg, {1: v[1]}, 15, t0=3.0)  # track 1 now follows the other bird
    assert out.bird_id[0] == b


def test_a_sure_id_whose_looks_drift_to_no_known_bird_becomes_a_guess_and_teaches_nothing() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(3)
    out = run(reg, {1: v[0], 2: v[1]}, 10)
    b = out.bird_id[0]
    assert out.identity_confidence[0] >= 0.5
    proto = reg.prototype(b).copy()
    out = run(reg, {1: v[2], 2: v[1]}, 30, t0=3.0)  # track 1 now shows a bird nobody registered
    # With a weak model the same bird often looks like nobody: dropping the id enrolled it again.
    assert out.bird_id[0] == b
    assert out.identity_confidence[0] < 0.5
    assert len(reg) == 2
    np.testing.assert_array_equal(reg.prototype(b), proto)
    out = run(reg, {1: v[0], 2: v[1]}, 10, t0=6.0)  # its own looks again: a sure id once more
    assert out.bird_id[0] == b
    assert out.identity_confidence[0] >= 0.5


def test_in_footage_seconds_apart_a_drifting_track_loses_its_id() -> None:
    # A frame every 4 s: the tracker swaps birds often, so the drifted track is a new bird.
    reg = IdentityRegistry(None, "farm")
    v = identities(3)
    out = run(reg, {1: v[0], 2: v[1]}, 10, step_s=4.0)
    b = out.bird_id[0]
    out = run(reg, {1: v[2], 2: v[1]}, 30, t0=40.0, step_s=4.0)
    assert out.bird_id[0] not in ("", b)
    assert len(reg) == 3


def test_persistence_roundtrip_and_restart_keeps_ids(tmp_path: Path) -> None:
    path = tmp_path / "registry"
    v = identities(3)
    reg = IdentityRegistry(path, "farm-1", embedder_sha="a" * 64)
    out = run(reg, {1: v[0], 2: v[1], 3: v[2]}, 10)
    reg.save()
    assert (path / "registry.json").exists() and len(list(path.glob("vectors-*.npz"))) == 1
    before = {int(t): str(b) for t, b in zip(out.track_id, out.bird_id, strict=True)}

    again = IdentityRegistry(path, "farm-1", embedder_sha="a" * 64)
    assert again.bird_ids() == reg.bird_ids()
    np.testing.assert_allclose(again.prototype(before[1]), reg.prototype(before[1]), atol=1e-6)
    out = run(again, {21: v[0], 22: v[1], 23: v[2], 24: identities(1, seed=77)[0]}, 10, t0=100.0)
    assert [str(x) for x in out.bird_id[:3]] == [before[1], before[2], before[3]]
    assert out.bird_id[3] == "bird-000004"  # numbering continues after restart
    again.save()
    assert len(list(path.glob("vectors-*.npz"))) == 1  # old generation cleaned up


def test_refuses_other_embedder_other_farm_and_corrupt_files(tmp_path: Path) -> None:
    path = tmp_path / "reg"
    reg = IdentityRegistry(path, "farm-1", embedder_sha="a" * 64)
    run(reg, {1: identities(1)[0]}, 10)
    reg.save()
    with pytest.raises(ValueError, match="refusing to mix"):
        IdentityRegistry(path, "farm-1", embedder_sha="b" * 64)
    with pytest.raises(ValueError, match="farm"):
        IdentityRegistry(path, "farm-2", embedder_sha="a" * 64)
    with pytest.raises(ValueError, match="dim"):
        reg.assign(frame([1], identities(1)[:, :16].copy() * 4, ts=9.0))
    (path / "registry.json").write_text("{not json")
    with pytest.raises(ValueError, match="registry.json"):
        IdentityRegistry(path, "farm-1")


def test_snapshot_is_a_valid_registry_snapshot_payload() -> None:
    from vision.wire import RegistrySnapshot

    reg = IdentityRegistry(None, "farm", embedder_sha="c" * 64)
    v = identities(2)
    run(reg, {1: v[0], 2: v[1]}, 10, t0=1_772_323_200.0)
    snap = reg.snapshot()
    doc = RegistrySnapshot(device_id="dev", farm_id="farm", seq=0, device_clock=datetime.now(tz=timezone.utc),
                           monotonic_s=1.0, **snap)
    assert len(doc.birds) == 2
    proto = decode_prototype(doc.birds[0].prototype_f16_b64, doc.birds[0].dim)
    np.testing.assert_allclose(proto, reg.prototype(doc.birds[0].bird_id), atol=2e-3)


def test_concurrent_cameras_share_one_registry_safely() -> None:
    reg = IdentityRegistry(None, "farm")
    v = identities(6)
    errors: list[BaseException] = []

    def worker(cam: str, seed: int) -> None:
        try:
            run(reg, {1: v[0], 2: v[1], 3: v[2], 4: v[3], 5: v[4], 6: v[5]}, 30, cam=cam, seed=seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"cam{i}", i)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(reg) == 6  # every camera sees the same six birds


def test_config_bounds_and_order() -> None:
    with pytest.raises(ValueError, match="new_threshold"):
        IdentityConfig(new_threshold=0.9, match_threshold=0.5)
    with pytest.raises(ValueError):
        IdentityConfig(bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="farm_id"):
        IdentityRegistry(None, "")


def _views(xyxy: list[list[float]], emb: np.ndarray, ts: float) -> Detections:
    n = len(xyxy)
    return Detections(
        xyxy=np.array(xyxy, np.float32),
        confidence=np.full(n, 0.9, np.float32),
        class_id=np.zeros(n, np.int64),
        track_id=np.arange(1, n + 1, dtype=np.int64),
        embedding=emb,
        timestamp=ts,
        frame_index=int(ts * 10),
        frame_size_wh=(200, 100),
    )


@pytest.mark.parametrize(
    ("partial_box", "why"),
    [
        ([0.0, 40.0, 12.0, 60.0], "cut by the left border"),
        ([180.0, 85.0, 200.0, 100.0], "cut by the bottom-right corner"),
        ([100.0, 40.0, 106.0, 46.0], "a small fragment (head behind a feeder)"),
    ],
)
def test_partial_views_never_enrol_a_new_bird(partial_box: list[float], why: str) -> None:
    reg = IdentityRegistry(None, "farm", IdentityConfig(enroll_min_frames=3))
    v = identities(4)
    whole = [[20.0, 20.0, 40.0, 40.0], [60.0, 20.0, 80.0, 40.0], [20.0, 50.0, 40.0, 70.0]]
    rng = np.random.default_rng(0)
    out = None
    for f in range(8):
        emb = np.stack([noisy(v[i], rng) for i in range(4)])
        out = reg.assign(_views([*whole, partial_box], emb, ts=f * 0.1))
    assert out is not None and out.bird_id is not None
    assert all(out.bird_id[:3]), "whole views enrol"
    assert out.bird_id[3] == "", f"a box {why} enrolled a bird"
    assert len(reg) == 3
    # The same partial view still matches a bird that is already known.
    reg2 = IdentityRegistry(None, "farm", IdentityConfig(enroll_min_frames=3))
    for f in range(8):
        emb = np.stack([noisy(v[i], rng) for i in (0, 1, 2, 3)])
        reg2.assign(_views([*whole, [120.0, 20.0, 140.0, 40.0]], emb, ts=f * 0.1))
    for f in range(8):
        emb = np.stack([noisy(v[i], rng) for i in (0, 1, 2, 3)])
        out = reg2.assign(_views([*whole, partial_box], emb, ts=100.0 + f * 0.1))
    assert out.bird_id is not None and out.bird_id[3] != "" and len(reg2) == 4


def _twins() -> tuple[IdentityRegistry, list[str], np.ndarray, np.ndarray]:
    """A registry that knows two look-alikes (cam0 saw both; cosine 0.85, each told apart when seen
    whole), their ids, the first one's look, and a look halfway between them (a guess between the two)."""
    reg = IdentityRegistry(None, "farm")
    base = identities(1)[0]
    twin = unit(base + 0.6 * identities(1, seed=3)[0])
    out = run(reg, {1: base, 2: twin}, 10)
    reg.end_tracks("cam0", [1, 2])
    return reg, list(out.bird_id), base, unit(base + twin)


@pytest.mark.parametrize(
    ("cam1_cm", "handoff_cm", "takes_cam0_id"),
    [
        ((105.0, 100.0), 30.0, True),  # 5 cm from cam0's sure sighting at the same moment: the same bird
        ((300.0, 100.0), 30.0, False),  # 2 m away: another bird, decided by its looks
        ((105.0, 100.0), 0.0, False),  # handoff off
    ],
)
def test_a_bird_two_cameras_see_at_one_spot_gets_one_id(
    cam1_cm: tuple[float, float], handoff_cm: float, takes_cam0_id: bool
) -> None:
    reg, ids, base, mid = _twins()
    reg.config = reg.config.model_copy(update={"handoff_cm": handoff_cm})
    rng = np.random.default_rng(4)
    for f in range(6):
        ts = 10.0 + 0.1 * f
        # cam0 surely sees the first look-alike at (100, 100) cm; at the same moments cam1 sees a bird whose
        # look is halfway between the two: by looks alone an ambiguous guess.
        a = reg.assign(frame([7], noisy(base, rng)[None], ts=ts), floor_xy=np.array([[100.0, 100.0]]))
        b = reg.assign(frame([21], noisy(mid, rng, 0.01)[None], ts=ts, cam="cam1"), floor_xy=np.array([cam1_cm]))
    assert a.bird_id[0] == ids[0] and a.identity_confidence[0] >= 0.5
    assert b.bird_id[0] in ids
    assert (b.bird_id[0] == ids[0] and b.identity_confidence[0] >= 0.5) == takes_cam0_id
    assert len(reg) == 2  # no bird enrolled either way


def test_handoff_never_overrides_a_sure_id_nor_takes_an_id_held_in_the_camera() -> None:
    reg, ids, base, _mid = _twins()
    rng = np.random.default_rng(5)
    twin_look = reg.prototype(ids[1])
    for f in range(6):
        ts = 10.0 + 0.1 * f
        a = reg.assign(frame([7], noisy(base, rng)[None], ts=ts), floor_xy=np.array([[100.0, 100.0]]))
        # cam1 surely sees the twin at cam0's spot (a floor-point error): it keeps the twin's id.
        b = reg.assign(frame([21], noisy(twin_look, rng, 0.01)[None], ts=ts, cam="cam1"),
                       floor_xy=np.array([[100.0, 100.0]]))
    assert a.bird_id[0] == ids[0] and b.bird_id[0] == ids[1] and b.identity_confidence[0] >= 0.5
    with pytest.raises(ValueError, match=r"floor_xy must have shape \(1, 2\)"):
        reg.assign(frame([21], noisy(twin_look, rng)[None], ts=11.0, cam="cam1"), floor_xy=np.zeros((2, 2)))


def _look(v: np.ndarray, sim: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine with v is `sim` (a changed look of a bird: other pose, light)."""
    u = np.random.default_rng(seed).normal(size=v.shape)
    u = unit(u - (u @ v) * v)
    return unit(sim * v + np.sqrt(1.0 - sim**2) * u)


def _boxes(boxes: dict[int, list[float]], looks: dict[int, np.ndarray], ts: float) -> Detections:
    tids = list(boxes)
    return Detections(
        xyxy=np.array([boxes[t] for t in tids], np.float32).reshape(-1, 4),
        confidence=np.full(len(tids), 0.9, np.float32),
        class_id=np.zeros(len(tids), np.int64),
        track_id=np.array(tids, np.int64),
        embedding=np.stack([looks[t] for t in tids]).astype(np.float32),
        timestamp=ts,
        frame_index=round(ts * 10),
        frame_size_wh=(400, 200),
    )


BIRD_A, BIRD_B = [20.0, 20.0, 40.0, 40.0], [120.0, 20.0, 140.0, 40.0]


def _two_birds(cfg: IdentityConfig) -> tuple[IdentityRegistry, np.ndarray, str]:
    reg = IdentityRegistry(None, "farm", cfg)
    v = identities(2, seed=3)
    out = None
    for f in range(8):
        out = reg.assign(_boxes({1: BIRD_A, 2: BIRD_B}, {1: v[0], 2: v[1]}, ts=f * 0.1))
    assert out is not None and out.bird_id is not None and all(out.bird_id) and len(reg) == 2
    return reg, v, str(out.bird_id[0])


@pytest.mark.parametrize(
    ("start_box", "gap_s", "sim", "cfg", "relinked", "why"),
    [
        ([24.0, 22.0, 44.0, 42.0], 0.5, 0.45, {}, True, "starts where bird A vanished half a second ago"),
        ([26.0, 30.0, 46.0, 50.0], 8.0, 0.45, {}, True, "8 s later, within two body lengths"),
        ([80.0, 40.0, 100.0, 60.0], 5.0, 0.45, {}, False, "3.2 body lengths away"),
        ([80.0, 40.0, 100.0, 60.0], 45.0, 0.45, {"relink_s": 60.0, "relink_body_lengths": 4.0}, True,
         "wider gate: 45 s later, 3.2 body lengths away"),
        ([24.0, 22.0, 44.0, 42.0], 12.0, 0.45, {}, False, "after relink_s"),
        ([200.0, 120.0, 220.0, 140.0], 0.5, 0.45, {}, False, "too far from where A was (9 body lengths)"),
        ([24.0, 22.0, 44.0, 42.0], 0.5, 0.1, {}, False, "looks rule A out"),
        ([24.0, 22.0, 44.0, 42.0], 0.5, 0.45, {"relink_s": 0.0}, False, "relinking off"),
        ([24.0, 22.0, 44.0, 42.0], 0.5, 0.45, {"assign_ambiguous": False}, False, "no guesses wanted"),
        ([24.0, 22.0, 44.0, 42.0], 0.5, 0.45, {"relink_max_frame_gap_s": 0.05}, False, "frames too far apart"),
    ],
)
def test_a_track_that_starts_where_a_bird_vanished_continues_its_id(
    start_box: list[float], gap_s: float, sim: float, cfg: dict[str, object], relinked: bool, why: str
) -> None:
    # Thresholds as a weak re-ID model's card gives them: a changed look of a bird (sim 0.45) is below the
    # new-bird threshold, so without the position a fresh track of bird A would be enrolled as a new bird.
    base = {"match_threshold": 0.8, "new_threshold": 0.5, "relink_min_sim": 0.3, "enroll_min_frames": 3}
    reg, v, id_a = _two_birds(IdentityConfig(**{**base, **cfg}))  # type: ignore[arg-type]
    proto_a = reg.prototype(id_a)
    look = _look(v[0], sim, seed=11)
    assert float(look @ v[1]) < 0.3
    out = None
    for t in np.arange(0.8, 0.7 + gap_s, 0.25):  # bird A's track 1 is gone; B walks on (10-fps footage)
        reg.assign(_boxes({2: BIRD_B}, {2: v[1]}, ts=float(t)))
    t0 = 0.7 + gap_s
    for f in range(6):  # track 3 begins
        out = reg.assign(_boxes({2: BIRD_B, 3: start_box}, {2: v[1], 3: look}, ts=t0 + f * 0.1))
    assert out is not None and out.bird_id is not None and out.identity_confidence is not None
    if relinked:
        assert out.bird_id[1] == id_a, why
        assert len(reg) == 2, why
        assert out.identity_confidence[1] < 0.5, "a relink is a guess"
        assert np.allclose(reg.prototype(id_a), proto_a), "a guess never teaches the prototype"
    else:
        assert out.bird_id[1] != id_a, why
        if cfg.get("assign_ambiguous", True):
            assert len(reg) == 3, why  # enrolled as a new bird (what relinking prevents)


def test_a_track_that_began_on_a_bird_just_before_its_track_died_inherits_the_id() -> None:
    reg, v, id_a = _two_birds(IdentityConfig(match_threshold=0.8, new_threshold=0.5, enroll_min_frames=3))
    part = [20.0, 20.0, 36.0, 38.0]  # the detector's second box, on part of bird A
    look = _look(v[0], 0.4, seed=5)  # a part of a bird looks only vaguely like the whole bird
    out = None
    for f in range(2):  # too few views to enrol it
        out = reg.assign(_boxes({1: BIRD_A, 2: BIRD_B, 5: part}, {1: v[0], 2: v[1], 5: look}, ts=1.0 + f * 0.1))
    assert out is not None and out.bird_id is not None and out.bird_id[2] == ""
    # The tracker loses the whole-bird box; the part box carries on where the bird is.
    for f in range(6):
        out = reg.assign(_boxes({2: BIRD_B, 5: part}, {2: v[1], 5: look}, ts=1.2 + f * 0.1))
    assert out.bird_id is not None
    assert out.bird_id[1] == id_a and len(reg) == 2
    # Without relinking it is a new bird.
    reg, v, id_a = _two_birds(IdentityConfig(match_threshold=0.8, new_threshold=0.5, enroll_min_frames=3,
                                             relink_s=0.0))
    for f in range(2):
        reg.assign(_boxes({1: BIRD_A, 2: BIRD_B, 5: part}, {1: v[0], 2: v[1], 5: look}, ts=1.0 + f * 0.1))
    for f in range(6):
        out = reg.assign(_boxes({2: BIRD_B, 5: part}, {2: v[1], 5: look}, ts=1.2 + f * 0.1))
    assert out.bird_id is not None and out.bird_id[1] not in ("", id_a) and len(reg) == 3
