"""Sparse, bursty recordings of a synthetic farm, written as camera videos the edge can replay.

A farm filmed for days at video rate is far too many frames for a 2-core demo, and frames hours
apart are useless to a tracker and to the stillness test behind dead-bird alerts. So the farm is
filmed in short bursts once per report window, at the instants `BurstPlan.times_s()` lists:
`FlockWorld.frames(times_s=...)` jumps the behaviour over the gaps and keeps growth, deaths, sickness,
removals and tampering on simulated time. The demo's farm (`FARM_DEFAULTS`) places a bird that falls sick
or dies in camera 0's view and keeps sick birds where they sat between bursts (world config options).

`record_farm` writes, per camera, `<camera>.avi` (MJPG: always available in OpenCV), `<camera>.csv`
(the source time of each frame, as the edge's `timestamps_csv`) and `<camera>.gt.npz` (ground-truth
boxes, used only by the ground-truth detector of the scenario tests).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DAY_S = 86400.0


@dataclass(frozen=True)
class BurstPlan:
    """Per report window of `window_s` seconds: `bursts` bursts `burst_every_s` apart, the first
    `offset_s` into the window; a burst is `frames` frames `spacing_s` apart. For `days` days.

    Several bursts per window let the birds walk in and out of the cameras' views, so the window's
    verified headcount (distinct birds seen) covers the flock, not one glimpse of it."""

    days: float
    window_s: float = 6 * 3600.0
    bursts: int = 8
    burst_every_s: float = 2400.0
    frames: int = 4
    spacing_s: float = 0.1
    offset_s: float = 600.0

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValueError(f"BurstPlan.days must be > 0, got {self.days}")
        if self.frames < 1 or self.bursts < 1:
            raise ValueError(f"BurstPlan.frames and .bursts must be >= 1, got {self.frames}, {self.bursts}")
        last = self.offset_s + (self.bursts - 1) * self.burst_every_s + (self.frames - 1) * self.spacing_s
        if last >= self.window_s:
            raise ValueError(f"BurstPlan: the last burst ends {last} s into a {self.window_s} s window")

    @property
    def windows(self) -> int:
        return max(1, round(self.days * DAY_S / self.window_s))

    def window_times(self, window: int) -> list[float]:
        base = window * self.window_s + self.offset_s
        return [base + b * self.burst_every_s + k * self.spacing_s
                for b in range(self.bursts) for k in range(self.frames)]

    def times_s(self) -> list[float]:
        """Simulated seconds since the world's first instant (aligned to a window start)."""
        return [t for w in range(self.windows) for t in self.window_times(w)]


def world_config(times_s: Sequence[float], **fields: Any) -> Any:
    """A WorldConfig whose duration covers times_s (schedules such as random deaths use it)."""
    from datasets.synth import WorldConfig

    if len(times_s) < 2:
        raise ValueError("world_config: need at least two instants")
    span = float(times_s[-1])
    return WorldConfig(frames=len(times_s), time_step_s=max(span / (len(times_s) - 1), 1e-3), **fields)


@dataclass(frozen=True)
class CameraRecording:
    camera_id: str
    video: Path
    times_csv: Path
    gt: Path
    frames: int
    # The camera's burnt-in clock and name, in fractions of the frame: masked on the edge, as an
    # installer would when setting the camera up (vision.masks).
    masks_xyxyn: list[tuple[float, float, float, float]] = field(default_factory=list)
    # Four floor marks (pixels -> the farm's plan in cm) measured at set-up (vision.floor): cameras with
    # them can tell that two views show the same spot.
    floor_points: list[dict[str, tuple[float, float]]] = field(default_factory=list)


def _open_writer(path: Path, fps: float, size_wh: tuple[int, int]) -> Any:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size_wh)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write an MJPG video here")
    return writer


def record_farm(world: Any, times_s: Sequence[float], out_dir: Path, *, camera_prefix: str = "cam",
                time_offset_s: float = 0.0, replay_from: Sequence[float] | None = None,
                on_frame: Any = None) -> list[CameraRecording]:
    """Film `world` at `times_s` into one video per camera under out_dir.

    Frame times written to the CSV are `world.start_epoch + t + time_offset_s` (epoch seconds).
    `replay_from`, when given, films the world at those instants but stamps the frames with
    `times_s` (same length): yesterday's footage presented as today's.
    `on_frame(frame)` is called for every rendered frame (progress bars).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamps = [float(t) for t in times_s]
    film_at = [float(t) for t in (replay_from if replay_from is not None else times_s)]
    if len(film_at) != len(stamps):
        raise ValueError(f"replay_from has {len(film_at)} instants, times_s has {len(stamps)}")
    w, h = world.config.size_wh
    writers: dict[str, Any] = {}
    rows: dict[str, list[tuple[int, float]]] = {}
    gts: dict[str, list[dict[str, np.ndarray]]] = {}
    names: dict[str, str] = {}
    cam_index: dict[str, int] = {}
    try:
        first: int | None = None
        for fr in world.frames(times_s=film_at):
            # Frame.index counts the world's instants since it was first filmed, not this call's.
            first = fr.index if first is None else first
            cam = names.setdefault(fr.camera_id, f"{camera_prefix}{len(names)}")
            cam_index.setdefault(cam, [c.camera_id for c in world.cameras].index(fr.camera_id))
            if cam not in writers:
                writers[cam] = _open_writer(out_dir / f"{cam}.avi", 2.0, (w, h))
                rows[cam], gts[cam] = [], []
            writers[cam].write(fr.image)
            ts = world.start_epoch + stamps[fr.index - first] + time_offset_s
            rows[cam].append((len(rows[cam]), ts))
            keep = fr.gt.in_view & (fr.gt.visibility >= 0.15)
            gts[cam].append({"xyxy": fr.gt.xyxy[keep].astype(np.float32),
                             "bird": fr.gt.bird_id[keep].astype(np.int64),
                             "state": np.asarray(fr.gt.state[keep], dtype=str),
                             "weight": fr.gt.weight_g[keep].astype(np.float32),
                             "vis": fr.gt.visibility[keep].astype(np.float32)})
            if on_frame is not None:
                on_frame(fr)
    finally:
        for wr in writers.values():
            wr.release()
    out = []
    for cam in writers:
        csv_path = out_dir / f"{cam}.csv"
        with open(csv_path, "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["frame", "timestamp"])
            for i, ts in rows[cam]:
                wr.writerow([i, f"{ts:.3f}"])
        gt_path = out_dir / f"{cam}.gt.npz"
        flat: dict[str, np.ndarray] = {}
        for i, g in enumerate(gts[cam]):
            for k, v in g.items():
                flat[f"{i}_{k}"] = v
        np.savez_compressed(gt_path, n=np.asarray(len(gts[cam])), **flat)  # type: ignore[arg-type]
        out.append(CameraRecording(cam, out_dir / f"{cam}.avi", csv_path, gt_path, len(rows[cam]),
                                   world.overlay_masks_xyxyn(cam_index[cam]), world.floor_marks(cam_index[cam])))
    return out


def fit_px_per_cm(recording: CameraRecording, *, allometric_a: float = 0.0385, allometric_b: float = 3.0,
                  max_frames: int = 64, detector: Any = None, min_iou: float = 0.5) -> float:
    """Pixels per cm of a camera, fitted the way a farmer calibrates with a few weighed birds: the body
    length (longest box side, as vision.health measures it) of fully visible birds against the
    length their known weight implies on the allometric curve weight_g = a * length_cm ** b.

    With `detector` (anything with `.detect(frame) -> Detections`), lengths are measured on the
    detector's own boxes matched to the weighed birds (IoU >= min_iou), as on a farm where the
    camera measures the birds being weighed: a detector whose boxes run tighter or looser than the
    true outline then cancels out of the weight estimate instead of biasing it by the cube of the
    error. Without it, the world's true boxes are used (the ground-truth demo)."""
    ratios: list[float] = []
    cap = None
    if detector is not None:
        import cv2

        cap = cv2.VideoCapture(str(recording.video))
        if not cap.isOpened():
            raise ValueError(f"{recording.video}: cannot open the recording to calibrate camera {recording.camera_id}")
    try:
        with np.load(recording.gt) as data:
            for i in range(min(int(data["n"]), max_frames)):
                xyxy, weight, vis = data[f"{i}_xyxy"], data[f"{i}_weight"], data[f"{i}_vis"]
                boxes = xyxy
                if cap is not None:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    boxes = _matched_detector_boxes(detector.detect(frame).xyxy, xyxy, min_iou)
                for box, w, v in zip(boxes, weight, vis, strict=True):
                    if v < 0.9 or w <= 0 or not np.all(np.isfinite(box)):
                        continue
                    length_px = float(max(box[2] - box[0], box[3] - box[1]))
                    length_cm = (float(w) / allometric_a) ** (1.0 / allometric_b)
                    ratios.append(length_px / length_cm)
    finally:
        if cap is not None:
            cap.release()
    if len(ratios) < 3:
        raise ValueError(f"{recording.gt}: too few fully visible birds to calibrate camera {recording.camera_id}")
    return float(np.median(ratios))


def _matched_detector_boxes(det_xyxy: np.ndarray, gt_xyxy: np.ndarray, min_iou: float) -> np.ndarray:
    """For each true box, the detector box that overlaps it best (IoU >= min_iou, each used once);
    NaN rows where none does."""
    from vision.geometry import box_iou_batch

    out = np.full((len(gt_xyxy), 4), np.nan, np.float64)
    if len(det_xyxy) == 0 or len(gt_xyxy) == 0:
        return out
    iou = box_iou_batch(gt_xyxy, det_xyxy)
    used: set[int] = set()
    for g in np.argsort(-iou.max(axis=1)):
        for d in np.argsort(-iou[g]):
            if iou[g, d] < min_iou:
                break
            if int(d) not in used:
                used.add(int(d))
                out[g] = det_xyxy[d]
                break
    return out


FARM_DEFAULTS: dict[str, Any] = {
    "birds": 24,
    "cameras": 2,
    "camera": "oblique",
    "scene": "run",
    "size_wh": (320, 180),
    "bird_px": 30.0,
    "start_day": 28.0,
    "leave_rate_per_hour": 0.5,
    "absence_s": (60.0, 1800.0),
    "night_fraction": 0.0,
    # A death or sickness out of every view would only be "unseen" mortality to the edge.
    "incident_camera": 0,
    "sick_stay_put": True,
}


def farm_world(times_s: Sequence[float], epoch0: float, **fields: Any) -> Any:
    """A FlockWorld whose simulated second 0 is epoch0 (UTC seconds), with demo-sized defaults."""
    from datasets.synth import FlockWorld

    cfg = {**FARM_DEFAULTS, **fields}
    if cfg.get("night_fraction", 0.0) != 0.0:
        raise ValueError("farm_world: night_fraction must be 0 (the world's clock would not start at epoch0)")
    # With no night the world starts its clock at 08:00 of start_epoch's day (FlockWorld._clock).
    world = FlockWorld(world_config(times_s, start_epoch=epoch0 - 8 * 3600.0, **cfg))
    if abs(world.start_epoch - epoch0) > 1e-3:
        raise RuntimeError(f"farm_world: world starts at {world.start_epoch}, expected {epoch0}")
    return world


def restamp(recording: CameraRecording, offset_s: float, out_dir: Path) -> CameraRecording:
    """The same video presented `offset_s` later: yesterday's footage replayed as today's."""
    import shutil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / recording.video.name
    gt = out_dir / recording.gt.name
    shutil.copyfile(recording.video, video)
    shutil.copyfile(recording.gt, gt)
    times_csv = out_dir / recording.times_csv.name
    with open(recording.times_csv, newline="") as src, open(times_csv, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.writer(dst)
        writer.writerow(["frame", "timestamp"])
        for row in reader:
            writer.writerow([row["frame"], f"{float(row['timestamp']) + offset_s:.3f}"])
    return CameraRecording(recording.camera_id, video, times_csv, gt, recording.frames, recording.masks_xyxyn,
                           recording.floor_points)
