"""One carcass seen by two cameras under two bird ids is one death when the cameras share a floor plan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_health_signals import Flock

from vision.calibration import CalibrationConfig
from vision.counting import HeadcountEstimate
from vision.health import BirdHealth, HealthConfig, HealthMonitor
from vision.pipeline import WindowSummary, combine_summaries

CARCASS_WH = (62.0, 20.0)


def _floor(dy_cm: float) -> CalibrationConfig:
    """A camera whose 1000x800 frame covers 500 x 400 cm of the plan, shifted dy_cm along the plan's y."""
    corners = [(0.0, 0.0), (1000.0, 0.0), (1000.0, 800.0), (0.0, 800.0)]
    return CalibrationConfig(floor_points=[  # type: ignore[arg-type]
        {"image_xy": (x, y), "floor_cm": (x / 2, y / 2 + dy_cm)} for x, y in corners])


def _summary(mon: HealthMonitor, start: float, end: float) -> WindowSummary:
    h = mon.window(start, end)
    ids = frozenset(b.bird_id for b in h["birds"] if b.bird_id)
    return WindowSummary(
        start_ts=start, end_ts=end, camera_ids=[mon.camera_id], frames_processed=1,
        headcount=HeadcountEstimate(value=len(ids), low=len(ids), high=len(ids), instantaneous_max=len(ids),
                                    bird_ids=ids),
        birds=h["birds"], alerts=h["alerts"], activity_index=h["activity_index"],
        huddling_index=h["huddling_index"], mean_weight_g=h["mean_weight_g"])


@pytest.mark.parametrize(
    ("floor_points", "cam1_y_px", "deaths"),
    [
        (True, 600.0, 1),  # cam1 sees the carcass 200 px lower: the same spot of the plan (425, 200) cm
        (True, 100.0, 2),  # a second carcass 250 cm away on the plan: two deaths
        (False, 600.0, 2),  # no floor plan: the cameras cannot tell, each death is reported
    ],
)
def test_one_carcass_two_cameras_two_ids(floor_points: bool, cam1_y_px: float, deaths: int) -> None:
    cams = {
        "cam0": HealthMonitor(HealthConfig(), _floor(0.0) if floor_points else None, camera_id="cam0"),
        "cam1": HealthMonitor(HealthConfig(), _floor(-100.0) if floor_points else None, camera_id="cam1"),
    }
    flocks = {"cam0": Flock(dt=5.0, seed=1), "cam1": Flock(dt=5.0, seed=2)}
    start = flocks["cam0"].t
    for k in range(200):
        # cam0 sees bird 100 lying at (850, 400) from the first frame; cam1 sees a lying bird from frame
        # 30 on and its registry calls it bird 555.
        cams["cam0"].observe(flocks["cam0"].frame([(100, 850.0, 400.0, *CARCASS_WH)]))
        cams["cam1"].observe(flocks["cam1"].frame([(7, 850.0, cam1_y_px, *CARCASS_WH, 555)] if k >= 30 else []))
    end = flocks["cam0"].t
    parts = [_summary(m, start, end) for m in cams.values()]
    assert [[b.bird_id for b in p.birds if b.health == ["suspected_dead"]] for p in parts] == [
        ["bird-000100"], ["bird-000555"]]
    farm = combine_summaries(parts)
    dead = [b for b in farm.birds if b.health == ["suspected_dead"]]
    assert len(dead) == deaths
    assert dead[0].bird_id == "bird-000100"  # flagged first
    assert len([a for a in farm.alerts if a["kind"] == "suspected_dead"]) == deaths
    # ... and the headcount counts one carcass once: its second id is renamed there too.
    assert ("bird-000555" in farm.headcount.bird_ids) == (deaths == 2)
    assert farm.headcount.value == len(parts[0].headcount.bird_ids) + (deaths - 1)
    if floor_points:  # the farmer is told where to find it
        assert "at (425, 200) cm on the pen's plan" in next(
            a["message"] for a in farm.alerts if a["bird_id"] == "bird-000100")
    if deaths == 1:
        assert dead[0].cameras == ["cam0", "cam1"]
        assert dead[0].dead_floor_cm == pytest.approx((425.0, 200.0), abs=1.0)
        assert "bird-000555" not in {b.bird_id for b in farm.birds}  # bird 555 was only ever the carcass


def _dead(bird_id: str, camera: str, since: float, at_cm: tuple[float, float] | None) -> BirdHealth:
    return BirdHealth(bird_id=bird_id, identity_confidence=0.9, first_seen=since, last_seen=since + 60,
                      activity_bl_per_h=0.0, observed_s=60.0, health=["suspected_dead"], cameras=[camera],
                      dead_since=since, dead_floor_cm=at_cm)


def _only(birds: list[BirdHealth]) -> WindowSummary:
    return WindowSummary(
        start_ts=0.0, end_ts=100.0, camera_ids=sorted({c for b in birds for c in b.cameras}), frames_processed=1,
        headcount=HeadcountEstimate(value=len(birds), low=len(birds), high=len(birds),
                                    instantaneous_max=len(birds), bird_ids=frozenset(b.bird_id for b in birds)),
        birds=birds, activity_index=0.0, huddling_index=0.0, mean_weight_g=None,
        alerts=[{"kind": "suspected_dead", "at": b.dead_since, "camera_id": b.cameras[0], "bird_id": b.bird_id,
                 "severity": "critical", "message": "motionless"} for b in birds])


@pytest.mark.parametrize(
    ("per_camera", "same_cm", "dead_ids"),
    [
        # the second camera's carcass 30 cm away: one death, under the id flagged first
        ([[("b-2", "cam0", 50.0, (0.0, 0.0))], [("b-1", "cam1", 60.0, (30.0, 0.0))]], 45.0, ["b-2"]),
        ([[("b-2", "cam0", 50.0, (0.0, 0.0))], [("b-1", "cam1", 60.0, (30.0, 0.0))]], 20.0, ["b-1", "b-2"]),
        # one camera's two carcasses side by side are two deaths (the camera itself tells them apart)
        ([[("b-1", "cam0", 10.0, (0.0, 0.0)), ("b-2", "cam0", 20.0, (10.0, 0.0))]], 45.0, ["b-1", "b-2"]),
        # three cameras, one carcass
        ([[("b-3", "cam0", 5.0, (0.0, 0.0))], [("b-1", "cam1", 9.0, (20.0, 0.0))],
          [("b-2", "cam2", 7.0, (0.0, 25.0))]], 45.0, ["b-3"]),
        # two carcasses side by side, seen by both cameras: each pairs with its nearest, two deaths
        ([[("b-1", "cam0", 1.0, (0.0, 0.0)), ("b-2", "cam0", 2.0, (30.0, 0.0))],
          [("b-4", "cam1", 3.0, (28.0, 0.0)), ("b-3", "cam1", 4.0, (2.0, 0.0))]], 45.0, ["b-1", "b-2"]),
        # a carcass without a plan position is never merged
        ([[("b-1", "cam0", 5.0, (0.0, 0.0))], [("b-2", "cam1", 6.0, None)]], 45.0, ["b-1", "b-2"]),
    ],
)
def test_carcasses_merge_across_cameras_only_when_close_on_the_plan(
    per_camera: list[list[tuple[str, str, float, tuple[float, float] | None]]], same_cm: float, dead_ids: list[str]
) -> None:
    parts = [_only([_dead(*d) for d in cam]) for cam in per_camera]
    farm = combine_summaries(parts, same_carcass_cm=same_cm)
    assert sorted(b.bird_id for b in farm.birds if "suspected_dead" in b.health) == dead_ids
    # one alert per death: a renamed carcass's alert repeats its first camera's (even from a later window)
    assert sorted(a["bird_id"] for a in farm.alerts) == dead_ids
    with pytest.raises(ValueError, match="same_carcass_cm must be >= 0"):
        combine_summaries(parts, same_carcass_cm=-1.0)


def test_a_second_view_joins_the_nearest_carcass_not_the_first_flagged() -> None:
    cam0 = _only([_dead("b-1", "cam0", 1.0, (0.0, 0.0)), _dead("b-2", "cam0", 2.0, (40.0, 0.0))])
    cam1 = _only([_dead("b-9", "cam1", 3.0, (38.0, 0.0))])  # 38 cm from b-1, 2 cm from b-2
    farm = combine_summaries([cam0, cam1])
    cams = {b.bird_id: b.cameras for b in farm.birds}
    assert cams == {"b-1": ["cam0"], "b-2": ["cam0", "cam1"]}


@pytest.mark.parametrize(("cam0_since", "alerted"), [(-500.0, False), (40.0, True)])
def test_a_second_camera_does_not_alert_again_a_carcass_flagged_before_the_window(
    cam0_since: float, alerted: bool
) -> None:
    """cam0 flagged bird b-1 dead (and alerted it then); cam1, whose view of it is cut by the border,
    flags the same id only now. Flagged before this window: cam1's alert repeats it and is dropped. Flagged
    within this window: one alert stays (the two cameras' alerts are one per bird)."""
    cam0 = replace(_only([_dead("b-1", "cam0", cam0_since, (0.0, 0.0))]), alerts=[])
    cam1 = _only([_dead("b-1", "cam1", 60.0, (5.0, 0.0))])
    farm = combine_summaries([cam0, cam1])
    assert [b.bird_id for b in farm.birds if "suspected_dead" in b.health] == ["b-1"]
    assert [a["bird_id"] for a in farm.alerts] == (["b-1"] if alerted else [])
