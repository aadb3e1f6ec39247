"""Write a FlockWorld to disk as MOTChallenge sequences (one per camera) with birds.json and frames.csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synth.frame import Frame
from datasets.synth.world import FlockWorld

ProgressFn = Callable[[Iterable[Frame], int], Iterator[Frame]]


def write_sequence(
    world: FlockWorld,
    out_dir: str | Path,
    *,
    images: bool = True,
    video: bool = True,
    image_quality: int = 92,
    progress: ProgressFn | None = None,
) -> list[Path]:
    """Render the world and write `OUT` (one camera) or `OUT/cam0`, `OUT/cam1`, ... (several).

    Each sequence dir gets `seqinfo.ini`, `gt/gt.txt` (boxes with visibility >= gt_min_visibility),
    `frames.csv` (simulated time, epoch, night, tamper of every frame), `birds.json`, `img1/*.jpg`
    (images=True) and `video.mp4` (video=True). Returns the sequence dirs.
    """
    import cv2

    from datasets.formats.mot import write_gt, write_seqinfo

    c = world.config
    if c.frames is None:
        raise ValueError("write_sequence: config.frames must be set (an endless world cannot be written)")
    out = Path(out_dir)
    n_cam = len(world.cameras)
    seq_dirs = [out] if n_cam == 1 else [out / cam.camera_id for cam in world.cameras]
    w, h = c.size_wh
    writers: list[Any] = []
    for d in seq_dirs:
        d.mkdir(parents=True, exist_ok=True)
        (d / "gt").mkdir(exist_ok=True)
        if images:
            (d / "img1").mkdir(exist_ok=True)
        if video:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
            vw = cv2.VideoWriter(str(d / "video.mp4"), fourcc, float(c.fps), (w, h))
            if not vw.isOpened():
                raise RuntimeError(f"{d / 'video.mp4'}: OpenCV cannot open an mp4v video writer")
            writers.append(vw)
    rows: list[dict[str, list[Any]]] = [{"frame": [], "id": [], "xyxy": [], "vis": []} for _ in seq_dirs]
    frame_rows: list[list[list[Any]]] = [[] for _ in seq_dirs]
    cam_index = {cam.camera_id: i for i, cam in enumerate(world.cameras)}
    it: Iterable[Frame] = world.frames()
    if progress is not None:
        it = progress(it, c.frames * n_cam)
    try:
        for f in it:
            ci = cam_index[f.camera_id]
            d = seq_dirs[ci]
            fno = f.index + 1
            if images:
                cv2.imwrite(str(d / "img1" / f"{fno:06d}.jpg"), f.image, [cv2.IMWRITE_JPEG_QUALITY, image_quality])
            if video:
                writers[ci].write(f.image)
            a = f.gt.annotated(c.gt_min_visibility)
            r = rows[ci]
            r["frame"].append(np.full(len(a), fno, np.int64))
            r["id"].append(a.bird_id)
            r["xyxy"].append(a.xyxy.astype(np.float64))
            r["vis"].append(np.round(a.visibility.astype(np.float64), 4))
            frame_rows[ci].append([fno, f"{f.time_s:.3f}", f"{f.timestamp:.3f}", int(f.is_night), f.tamper or "",
                                   f"{f.age_days:.4f}", int(f.gt.in_view.sum())])
    finally:
        for vw in writers:
            vw.release()
    birds = world.birds_json()
    for ci, d in enumerate(seq_dirs):
        r = rows[ci]
        write_gt(
            d / "gt" / "gt.txt",
            np.concatenate(r["frame"]) if r["frame"] else np.zeros(0, np.int64),
            np.concatenate(r["id"]) if r["id"] else np.zeros(0, np.int64),
            np.concatenate(r["xyxy"]) if r["xyxy"] else np.zeros((0, 4)),
            np.concatenate(r["vis"]) if r["vis"] else np.zeros(0),
        )
        write_seqinfo(d, name=d.name if n_cam > 1 else (out.name or "synth"), frame_rate=c.fps,
                      seq_length=c.frames, im_width=w, im_height=h)
        with (d / "frames.csv").open("w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["frame", "time_s", "timestamp", "is_night", "tamper", "age_days", "birds_in_view"])
            wr.writerows(frame_rows[ci])
        meta = dict(birds, camera_id=world.cameras[ci].camera_id, config=json.loads(c.model_dump_json()))
        (d / "birds.json").write_text(json.dumps(meta, indent=1, sort_keys=False))
    return seq_dirs


def read_frames_csv(seq_dir: str | Path) -> dict[str, np.ndarray] | None:
    """frames.csv as arrays (frame, time_s, timestamp, is_night, tamper, age_days), or None if absent."""
    p = Path(seq_dir) / "frames.csv"
    if not p.is_file():
        return None
    with p.open() as fh:
        rd = csv.DictReader(fh)
        rows = list(rd)
    if not rows:
        return {k: np.zeros(0) for k in ("frame", "time_s", "timestamp", "is_night", "age_days")}
    try:
        return {
            "frame": np.array([int(r["frame"]) for r in rows], np.int64),
            "time_s": np.array([float(r["time_s"]) for r in rows]),
            "timestamp": np.array([float(r["timestamp"]) for r in rows]),
            "is_night": np.array([r["is_night"] == "1" for r in rows]),
            "tamper": np.array([r.get("tamper", "") for r in rows], dtype=object),
            "age_days": np.array([float(r.get("age_days", 0) or 0) for r in rows]),
        }
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{p}: malformed frames.csv: {exc}") from None
