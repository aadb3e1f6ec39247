"""The burst recordings the demo and the scenarios feed to the edge (flockid.demo_world)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datasets.synth import HealthEvent
from flockid.demo_world import FARM_DEFAULTS, BurstPlan, farm_world, fit_px_per_cm, record_farm, restamp


@pytest.mark.parametrize(("plan", "n", "first", "last"), [
    (BurstPlan(days=1), 4 * 8 * 4, 600.0, 3 * 21600 + 600 + 7 * 2400 + 0.3),
    (BurstPlan(days=0.5, bursts=2, burst_every_s=3600, frames=2, spacing_s=1.0), 2 * 2 * 2, 600.0,
     21600 + 600 + 3600 + 1.0),
])
def test_burst_plan_times(plan: BurstPlan, n: int, first: float, last: float) -> None:
    times = plan.times_s()
    assert len(times) == n
    assert times[0] == pytest.approx(first) and times[-1] == pytest.approx(last)
    assert times == sorted(times)
    # Every burst sits inside its report window.
    assert all(int(t // plan.window_s) == w for w in range(plan.windows) for t in plan.window_times(w))


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"days": 0}, "days must be > 0"),
    ({"days": 1, "frames": 0}, "must be >= 1"),
    ({"days": 1, "bursts": 10, "burst_every_s": 3000}, "last burst ends"),
])
def test_burst_plan_rejects_bad_plans(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        BurstPlan(**kwargs)


def test_world_continues_and_dead_bird_lies_in_view(tmp_path: Path) -> None:
    plan = BurstPlan(days=0.5, bursts=2, frames=2)
    times = plan.times_s()
    world = farm_world(times, 1.8e9, seed=5, birds=10, cameras=1,
                       health_events=[HealthEvent(bird=2, state="dead", at_s=times[4])])
    # The demo's farm films incidents where camera 0 sees them and keeps sick birds put (world options).
    assert world.config.incident_camera == FARM_DEFAULTS["incident_camera"] == 0
    assert world.config.sick_stay_put is True
    first = list(world.frames(times_s=times[:4]))
    assert [f.timestamp for f in first] == pytest.approx([1.8e9 + t for t in times[:4]])
    with pytest.raises(ValueError, match="already filmed"):
        world.frames(times_s=times[:1])
    rest = list(world.frames(times_s=times[4:]))
    assert [f.index for f in rest] == list(range(4, len(times)))
    dead = [f.gt.in_view[list(f.gt.bird_id).index(3)] for f in rest]
    assert all(dead), "a bird that dies is placed where the camera sees it"
    boxes = np.array([f.gt.xyxy[list(f.gt.bird_id).index(3)] for f in rest])
    # A dead bird does not move: only the camera shakes (a few pixels).
    assert np.abs(boxes - boxes[0]).max() <= 6


def test_recording_in_parts_is_one_recording(tmp_path: Path) -> None:
    plan = BurstPlan(days=0.5, bursts=2, frames=2)
    times = plan.times_s()
    one = record_farm(farm_world(times, 1.8e9, seed=7, birds=8, cameras=1), times, tmp_path / "one")[0]
    world = farm_world(times, 1.8e9, seed=7, birds=8, cameras=1)
    a = record_farm(world, times[:3], tmp_path / "a")[0]
    b = record_farm(world, times[3:], tmp_path / "b")[0]
    with open(a.times_csv) as fa, open(b.times_csv) as fb, open(one.times_csv) as fo:
        part = [float(r["timestamp"]) for r in csv.DictReader(fa)] + [float(r["timestamp"]) for r in csv.DictReader(fb)]
        assert part == [float(r["timestamp"]) for r in csv.DictReader(fo)]
    with np.load(one.gt) as g1, np.load(a.gt) as ga, np.load(b.gt) as gb:
        for i in range(len(times)):
            part_gt, k = (ga, i) if i < 3 else (gb, i - 3)
            assert np.array_equal(g1[f"{i}_xyxy"], part_gt[f"{k}_xyxy"])
            assert np.array_equal(g1[f"{i}_bird"], part_gt[f"{k}_bird"])


def test_recording_restamp_and_calibration(tmp_path: Path) -> None:
    plan = BurstPlan(days=0.25, bursts=3, frames=4)
    times = plan.times_s()
    world = farm_world(times, 1.8e9, seed=6, birds=12, cameras=2)
    recs = record_farm(world, times, tmp_path / "rec")
    assert [r.camera_id for r in recs] == ["cam0", "cam1"]
    assert all(r.frames == len(times) for r in recs)
    with open(recs[0].times_csv) as fh:
        stamps = [float(row["timestamp"]) for row in csv.DictReader(fh)]
    assert stamps == pytest.approx([1.8e9 + t for t in times], abs=1e-3)
    later = restamp(recs[0], 86400.0, tmp_path / "later")
    with open(later.times_csv) as fh:
        assert [float(r["timestamp"]) for r in csv.DictReader(fh)] == pytest.approx([s + 86400 for s in stamps])
    assert later.video.read_bytes() == recs[0].video.read_bytes()
    ppc = fit_px_per_cm(recs[0])
    # bird_px 30 at ~35 cm body length: about one pixel per centimetre.
    assert 0.3 < ppc < 3.0


class _ShrunkTruth:
    """A 'detector' whose boxes are the recording's true boxes shrunk about their centres."""

    def __init__(self, gt_path: Path, frames: int, scale: float) -> None:
        with np.load(gt_path) as g:
            self.boxes = [g[f"{i}_xyxy"].astype(np.float64) for i in range(frames)]
        self.scale, self.i = scale, 0

    def detect(self, frame: np.ndarray) -> Any:
        from vision.detections import Detections

        b = self.boxes[self.i]
        self.i += 1
        c = (b[:, :2] + b[:, 2:]) / 2
        half = (b[:, 2:] - b[:, :2]) / 2 * self.scale
        xyxy = np.hstack([c - half, c + half]) if len(b) else np.zeros((0, 4))
        return Detections(xyxy=xyxy, confidence=np.ones(len(xyxy)), class_id=np.zeros(len(xyxy), np.int64))


def test_calibration_on_detector_boxes_absorbs_their_bias(tmp_path: Path) -> None:
    plan = BurstPlan(days=0.25, bursts=3, frames=4)
    times = plan.times_s()
    rec = record_farm(farm_world(times, 1.8e9, seed=6, birds=12, cameras=1), times, tmp_path / "rec")[0]
    truth = fit_px_per_cm(rec)
    # 0.85 keeps IoU with the true box (0.72) above the matching floor.
    shrunk = fit_px_per_cm(rec, detector=_ShrunkTruth(rec.gt, rec.frames, 0.85))
    assert shrunk == pytest.approx(0.85 * truth, rel=1e-6)


@pytest.mark.parametrize(("det", "gt", "expected_rows"), [
    (np.zeros((0, 4)), np.array([[0, 0, 10, 10]]), [None]),
    (np.array([[0, 0, 10, 10], [1, 1, 11, 11]]), np.array([[0, 0, 10, 10]]), [0]),
    # two true birds, one box: the better-overlapped bird gets it, the other none
    (np.array([[0, 0, 10, 10]]), np.array([[1, 1, 11, 11], [0, 0, 10, 10]]), [None, 0]),
    (np.array([[50, 50, 60, 60]]), np.array([[0, 0, 10, 10]]), [None]),
])
def test_matched_detector_boxes(det: np.ndarray, gt: np.ndarray, expected_rows: list) -> None:
    from flockid.demo_world import _matched_detector_boxes

    out = _matched_detector_boxes(det.astype(float), gt.astype(float), 0.5)
    for row, want in zip(out, expected_rows, strict=True):
        if want is None:
            assert np.isnan(row).all()
        else:
            assert np.array_equal(row, det[want])
