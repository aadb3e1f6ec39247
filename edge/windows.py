"""Per-camera runtime state of the edge app: pipeline, tamper detector, scheduler and the counters
of the current report window; plus the stats a source-clock run returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.capture import OpenCVCamera
from edge.config import CameraConfig, TamperConfig
from edge.fingerprint import MotionFingerprint
from edge.scheduler import FrameScheduler
from edge.tamper import TamperDetector

MAX_ALERTS_PER_CAMERA = 20


@dataclass
class WindowCounters:
    frames_seen: int = 0
    frames_processed: int = 0
    corrupt: int = 0
    reconnects: int = 0
    statuses: set[str] = field(default_factory=set)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    fingerprints: dict[int, tuple[float, str]] = field(default_factory=dict)
    fingerprint_energy: dict[int, float] = field(default_factory=dict)  # residual energy of the sampled frame


class CameraRuntime:
    """Per-camera state: pipeline, tamper detector, scheduler, current window counters."""

    def __init__(self, cfg: CameraConfig, pipeline: Any, tamper: TamperConfig) -> None:
        self.cfg = cfg
        self.camera_id = cfg.camera_id
        self.pipeline = pipeline
        self.tamper = TamperDetector(tamper)
        self.scheduler = FrameScheduler(cfg.fps)
        self.fingerprinter = MotionFingerprint()
        self.camera: OpenCVCamera | None = None
        self.lock = threading.Lock()
        self.window = WindowCounters()
        self.last_image: np.ndarray | None = None
        self.last_dets: Any = None
        self.last_ts: float | None = None
        self.infer_ms = 0.0
        self.fps = 0.0
        self._last_proc_mono: float | None = None
        self.errors = 0
        self.dropped_stale = 0
        self._seen_mark = 0
        self._corrupt_mark = 0
        self._reconnect_mark = 0

    def add_alert(self, kind: str, at: float, message: str, severity: str = "warning") -> None:
        if len(self.window.alerts) < MAX_ALERTS_PER_CAMERA:
            self.window.alerts.append({"kind": kind, "at": at, "severity": severity, "message": message[:300]})


@dataclass
class RunStats:
    frames: int = 0
    processed: int = 0
    reports: int = 0
    registry_snapshots: int = 0
    uploaded: int = 0
    backlog: int = 0
    seqs: list[int] = field(default_factory=list)
