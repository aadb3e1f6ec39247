"""A small stand-in for vision.pipeline.FlockPipeline used by the edge runtime tests, so outbox,
uploader, report and crash tests do not depend on the ONNX models. It really looks at the frame:
bright blobs are counted as birds. (Test code only; loaded through `pipeline.factory`.)"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class FakeRegistry:
    def __init__(self) -> None:
        self.birds: dict[str, dict[str, Any]] = {}

    def observe(self, n: int, ts: float) -> None:
        for i in range(n):
            bid = f"bird-{i:06d}"
            b = self.birds.get(bid)
            if b is None:
                vec = np.random.default_rng(i).normal(size=16).astype(np.float32)
                self.birds[bid] = {
                    "bird_id": bid,
                    "prototype": vec,
                    "first_seen": ts,
                    "last_seen": ts,
                    "observations": 1,
                }
            else:
                b["last_seen"] = max(b["last_seen"], ts)
                b["observations"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {"embedder": "e" * 64, "birds": [dict(b) for b in self.birds.values()]}


class FakeSummary:
    def __init__(self, counts: list[int], birds: list[dict[str, Any]]) -> None:
        self.counts = counts
        self.birds = birds
        self.frames_processed = len(counts)

    def report_fields(self) -> dict[str, Any]:
        c = self.counts or [0]
        value = int(np.median(c))
        return {
            "headcount": {"value": value, "low": min(c), "high": max(c), "instantaneous_max": max(c)},
            "birds": self.birds,
            "alerts": [],
            "signals": {"activity_index": 0.5},
        }


class FakeDets:
    """What process() returns: the blob count, and FlockPipeline's per-frame alerts in `extra`."""

    def __init__(self, count: int, alerts: list[dict[str, Any]]) -> None:
        self.count = count
        self.extra = {"count": count, "alerts": alerts}


class FakePipeline:
    def __init__(self, camera: Any, registry: FakeRegistry | None, config: Any) -> None:
        self.camera_id = camera.camera_id
        self.registry = registry or FakeRegistry()
        self.delay_s = float(config.pipeline.options.get("delay_s", 0.0))
        # {camera_id: frame index} from which this camera "judges a bird dead" (one suspected_dead alert).
        self.dead_at_frame = config.pipeline.options.get("dead_at_frame", {}).get(self.camera_id)
        self.obs: list[tuple[float, int]] = []
        self.summaries: list[tuple[float, float, float | None]] = []

    def process(self, frame: np.ndarray, *, timestamp: float, frame_index: int) -> Any:
        import cv2

        if self.delay_s:
            time.sleep(self.delay_s)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        _, mask = cv2.threshold(gray, 200, 255, cv2.THRESH_BINARY)
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        count = int(sum(1 for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= 10))
        self.obs.append((timestamp, count))
        self.registry.observe(count, timestamp)
        alerts = []
        if self.dead_at_frame is not None and frame_index >= self.dead_at_frame:
            self.dead_at_frame = None  # one alert, on the first processed frame from then on
            alerts.append({"kind": "suspected_dead", "at": timestamp, "camera_id": self.camera_id,
                           "bird_id": "bird-000001", "severity": "critical", "message": "motionless"})
        return FakeDets(count, alerts)

    def window_summary(self, start_ts: float, end_ts: float, *, headcount_from: float | None = None) -> FakeSummary:
        self.summaries.append((start_ts, end_ts, headcount_from))
        counts = [c for t, c in self.obs if start_ts <= t <= end_ts]
        self.obs = [(t, c) for t, c in self.obs if t > end_ts]
        n = int(np.median(counts)) if counts else 0
        birds = [
            {
                "bird_id": f"bird-{i:06d}",
                "identity_confidence": 0.9,
                "last_seen": end_ts,
                "activity_bl_per_h": 12.5,
                "health": ["ok"],
                "cameras": [self.camera_id],
            }
            for i in range(n)
        ]
        return FakeSummary(counts, birds)

    def model_versions(self) -> dict[str, str]:
        return {"detector": "d" * 64, "reid": "e" * 64}

    def combine_summaries(self, sums: list[FakeSummary]) -> FakeSummary:
        counts = [c for s in sums for c in s.counts]
        birds = {b["bird_id"]: b for s in sums for b in s.birds}
        return FakeSummary(counts, list(birds.values()))


def make(camera: Any, registry: Any, config: Any) -> FakePipeline:
    return FakePipeline(camera, registry, config)
