"""`IouTracker`: the simplest useful baseline — greedy IoU matching of boxes to last-seen track boxes.

No motion model, no appearance. A track keeps its id while some box overlaps its last box by at least
``iou_thresh`` within ``max_age_s`` of stream time. Output: the input rows matched to tracks with at
least ``min_hits`` matches, in input order, with ``track_id`` set (detector boxes). Same clock rules as
`FlockTracker`: stream time is ``dets.timestamp``; a repeated timestamp counts as ``frame_interval_s``
later, one going backwards raises ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.detections import Detections
from vision.tracking.association import greedy_assignment, iou_distance


class IouTrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iou_thresh: float = Field(0.3, gt=0.0, le=1.0, description="min IoU with the track's last box")
    conf_thresh: float = Field(0.25, ge=0.0, le=1.0, description="boxes below are ignored")
    new_track_thresh: float = Field(0.5, ge=0.0, le=1.0, description="min confidence to start a track")
    max_age_s: float = Field(1.0, ge=0.0, le=3600.0, description="a track unmatched this long ends")
    min_hits: int = Field(1, ge=1, le=100, description="matches before a track is output")
    frame_interval_s: float = Field(0.1, gt=0.0, le=3600.0, description="assumed dt when timestamps repeat")


class IouTracker:
    def __init__(self, config: IouTrackerConfig | None = None, **overrides: Any) -> None:
        if config is not None and overrides:
            raise ValueError("IouTracker: pass either config or keyword overrides, not both")
        self.config = config if config is not None else IouTrackerConfig(**overrides)
        self.reset()

    def reset(self) -> None:
        self._xyxy = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._hits = np.zeros(0, np.int64)
        self._last_seen = np.zeros(0, np.float64)
        self._next_id = 1
        self._now: float | None = None
        self._last_raw_ts: float | None = None

    def _advance_clock(self, ts: float) -> float:
        if not np.isfinite(ts):
            raise ValueError(f"IouTracker.update: dets.timestamp must be finite, got {ts}")
        if self._now is None or self._last_raw_ts is None:
            self._now = ts
        elif ts > self._last_raw_ts:
            self._now += ts - self._last_raw_ts
        elif ts == self._last_raw_ts:
            self._now += self.config.frame_interval_s
        else:
            raise ValueError(
                f"IouTracker.update: dets.timestamp went backwards ({ts} < {self._last_raw_ts}); "
                "call reset() before a new stream"
            )
        self._last_raw_ts = ts
        return self._now

    def update(self, dets: Detections) -> Detections:
        if not isinstance(dets, Detections):
            raise ValueError(f"IouTracker.update: dets must be Detections, got {type(dets).__name__}")
        c = self.config
        now = self._advance_clock(float(dets.timestamp))
        cand = np.flatnonzero(dets.confidence >= c.conf_thresh)
        matches, _, free = greedy_assignment(iou_distance(self._xyxy, dets.xyxy[cand]), 1.0 - c.iou_thresh)
        rows, cols = matches[:, 0], cand[matches[:, 1]]
        self._xyxy[rows] = dets.xyxy[cols]
        self._hits[rows] += 1
        self._last_seen[rows] = now
        new = cand[free]
        new = new[dets.confidence[new] >= c.new_track_thresh]
        k = new.size
        self._xyxy = np.concatenate([self._xyxy, dets.xyxy[new]])
        self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + k, dtype=np.int64)])
        self._next_id += k
        self._hits = np.concatenate([self._hits, np.ones(k, np.int64)])
        self._last_seen = np.concatenate([self._last_seen, np.full(k, now)])
        out_rows = np.concatenate([rows, np.arange(self._ids.size - k, self._ids.size)])
        out_dets = np.concatenate([cols, new])
        show = self._hits[out_rows] >= c.min_hits
        out_rows, out_dets = out_rows[show], out_dets[show]
        order = np.argsort(out_dets, kind="stable")
        out = dets[out_dets[order]]
        out.track_id = self._ids[out_rows[order]]
        keep = now - self._last_seen <= c.max_age_s
        self._xyxy, self._ids = self._xyxy[keep], self._ids[keep]
        self._hits, self._last_seen = self._hits[keep], self._last_seen[keep]
        return out
