"""`flockid eval detect-states`: detector recall per health state (ok / sick / dead) on MOT sequences.

Mortality rests on finding carcasses (lying flat) and sick birds (sitting hunched), poses a flock of
healthy walkers rarely shows. Synthetic sequences know each bird's state at every instant (birds.json
health timelines, frames.csv times); a ground-truth box counts as found when a detection at or above
`conf` overlaps it by IoU >= `iou_match`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

STATES = ("ok", "sick", "dead")


def _state_at(timeline: list[dict[str, Any]], t_s: float) -> str:
    state = "ok"
    for event in sorted(timeline, key=lambda e: float(e["at_s"])):
        if float(event["at_s"]) <= t_s:
            state = str(event["state"])
    return state


def recall_by_health_state(
    model: Path,
    seq_dirs: list[Path],
    *,
    every: int = 5,
    conf: float = 0.25,
    iou_match: float = 0.5,
    on_frame: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """{'rows': per sequence, 'recall': {state: share found}, 'boxes': {state: count}} over every
    `every`-th annotated frame."""
    import cv2

    from vision.cli import frame_times, gt_by_frame, load_birds
    from vision.detector import OnnxDetector
    from vision.geometry import box_iou_batch

    if every < 1:
        raise ValueError(f"every={every}: must be >= 1")
    det = OnnxDetector(model, conf=conf)
    found = dict.fromkeys(STATES, 0)
    total = dict.fromkeys(STATES, 0)
    rows = []
    plan = []
    for seq in seq_dirs:
        if not (seq / "img1").is_dir():
            raise FileNotFoundError(f"{seq}: no img1/ frames (write the sequence with images)")
        health = {int(b["bird_id"]): b.get("health", []) for b in load_birds(seq)}
        gt = gt_by_frame(seq)
        times = frame_times(seq)
        plan.append((seq, health, gt, times, sorted(gt)[::every]))
    n_all = sum(len(p[4]) for p in plan)
    done = 0
    for seq, health, gt, times, frames in plan:
        t0 = times.get(1, 0.0)
        seq_found = dict.fromkeys(STATES, 0)
        seq_total = dict.fromkeys(STATES, 0)
        for f in frames:
            img = cv2.imread(str(seq / "img1" / f"{f:06d}.jpg"))
            if img is None:
                raise FileNotFoundError(f"{seq}/img1/{f:06d}.jpg: unreadable")
            boxes, ids = gt[f]
            d = det.detect(img)
            iou = box_iou_batch(boxes, d.xyxy) if len(d) else np.zeros((len(boxes), 0))
            t = times.get(f, f) - t0
            for k, gid in enumerate(ids):
                state = _state_at(health.get(int(gid), []), t)
                if state not in seq_total:
                    continue
                seq_total[state] += 1
                seq_found[state] += int(iou.shape[1] > 0 and float(iou[k].max()) >= iou_match)
            done += 1
            if on_frame is not None:
                on_frame(done, n_all)
        rows.append({"sequence": seq.name, "frames": len(frames), "boxes": seq_total,
                     "recall": {s: round(seq_found[s] / seq_total[s], 3) for s in STATES if seq_total[s]}})
        for s in STATES:
            found[s] += seq_found[s]
            total[s] += seq_total[s]
    return {"model": str(model), "conf": conf, "iou_match": iou_match, "every": every, "boxes": total,
            "recall": {s: round(found[s] / total[s], 3) for s in STATES if total[s]}, "rows": rows}
