"""Run the real edge runtime (`edge.app.EdgeApp`, simulated clock) over recorded farm videos.

One `EdgeDevice` is one edge box: its Ed25519 key, outbox, identity registry and config. `run()`
processes the given recordings with source timestamps, writes signed hash-chained reports to the
outbox and uploads them through the edge uploader to the API. State (outbox chain, registry)
persists between runs, so a test can feed day 1, then day 2 of footage to the same box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flockid.demo_world import CameraRecording

GROUND_TRUTH = "flockid.demo_pipeline:ground_truth_pipeline"
SHIPPED_MODELS = "flockid.demo_pipeline:sparse_pipeline"


def burst_options(window_s: float, burst_every_s: float, *, appearance_seed: int | None = None,
                  burst_frames: int = 4) -> dict[str, Any]:
    """Pipeline options for footage filmed in bursts (see flockid.demo_world.BurstPlan).

    Stillness across bursts is what reveals a dead bird, so gaps up to one burst interval count as
    observed time; identities enrol and match within a short burst of frames, and a track that lasts
    most of a burst is long enough to widen the headcount band when it never got a sure identity."""
    if burst_frames < 2:
        raise ValueError(f"burst_options: burst_frames must be >= 2, got {burst_frames}")
    still_gap = burst_every_s * 1.1
    opts: dict[str, Any] = {
        "pipeline": {
            "pending_embed_every": 1,
            "tracker_config": {"min_hits": 1},
            "embed_every": 3,
            "health": {
                # Between bursts a resting bird comes back to about the same spot; a dead one to
                # exactly the same spot. A tight stillness radius tells them apart.
                "motion_threshold_bl": 0.15,
                # The synthetic dead bird seen obliquely is ~0.55 x a walking bird's h/w ratio.
                "lying_ratio": 0.6,
                "max_gap_s": still_gap,
                "still_gap_s": still_gap,
                "dead_after_s": 3 * burst_every_s,
                "dead_still_after_s": 4 * burst_every_s,
                "sick_after_s": 4 * burst_every_s,
                "lethargic_min_observed_s": 1.5 * burst_every_s,
                "mortality_unseen_days": max(2.0, 4 * window_s / 86400.0),
            },
            "counting": {"min_sightings": 2, "min_span_s": 0.0, "visit_gap_s": 5.0,
                         "min_track_frames": max(2, burst_frames - 1),
                         "look_interval_s": burst_every_s},
        },
        "identity": {"enroll_min_frames": 3, "match_min_frames": 2},
    }
    if appearance_seed is not None:
        opts["appearance_seed"] = int(appearance_seed)
    return _validated(opts)


def _validated(opts: dict[str, Any]) -> dict[str, Any]:
    """Check the tuning keys against the vision configs now, so a renamed threshold fails loudly
    here with its name rather than deep inside the edge (the configs forbid unknown keys)."""
    from vision.identity import IdentityConfig
    from vision.pipeline import PipelineConfig

    PipelineConfig(**opts["pipeline"])
    IdentityConfig(**opts["identity"])
    return opts


class EdgeDevice:
    def __init__(self, workdir: Path, device_id: str, farm_id: str, *, factory: str = SHIPPED_MODELS,
                 options: dict[str, Any] | None = None, window_s: float = 6 * 3600.0,
                 snapshot_width: int = 480, key: Any = None,
                 calibration: dict[str, dict[str, Any]] | None = None) -> None:
        from vision.wire import generate_keypair, public_key_pem

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.device_id = device_id
        self.farm_id = farm_id
        self.factory = factory
        self.options = dict(options or {})
        self.window_s = window_s
        self.snapshot_width = snapshot_width
        self.calibration = dict(calibration or {})
        self.key = key if key is not None else generate_keypair()
        self.public_key_pem: str = public_key_pem(self.key)
        self.api_url: str | None = None
        self.api_key: str | None = None
        self._pipelines: dict[str, Any] | None = None

    def connect(self, api_url: str, api_key: str) -> None:
        self.api_url, self.api_key = api_url, api_key

    def config(self, recordings: Sequence[CameraRecording]) -> Any:
        from edge.config import parse_config

        cams = [{"camera_id": r.camera_id, "source": str(r.video), "kind": "file", "fps": 30.0,
                 "timestamps_csv": str(r.times_csv),
                 # The recording's installer set-up (floor marks, masks); a calibration given here wins.
                 "calibration": {"floor_points": r.floor_points, **self.calibration.get(r.camera_id, {})},
                 "masks_xyxyn": [list(m) for m in r.masks_xyxyn]}
                for r in recordings]
        data: dict[str, Any] = {
            "device_id": self.device_id,
            "farm_id": self.farm_id,
            "key_path": str(self.workdir / "device.key"),
            "clock": "source",
            "cameras": cams,
            "outbox": {"path": str(self.outbox_path), "min_free_bytes": 0},
            "pipeline": {"factory": self.factory, "options": self.options,
                         "registry_path": str(self.workdir / "registry")},
            "report": {"interval_s": self.window_s, "fingerprints_per_camera": 3, "snapshot_every_reports": 1,
                       "snapshot_width": self.snapshot_width, "registry_interval_s": 86400.0},
            "metrics_port": None,
            "stop_flush_s": 20.0,
            "log_level": "WARNING",
        }
        if self.api_url:
            data["api"] = {"url": self.api_url, "api_key": self.api_key, "backoff_base_s": 0.05,
                           "backoff_max_s": 1.0}
        return parse_config(data, source=self.workdir / "edge.yaml")

    def run(self, recordings: Sequence[CameraRecording], *, upload: bool = True,
            on_frame: Callable[[str, Any, Any, float], None] | None = None) -> Any:
        """Process the recordings (all cameras merged by time) and upload; returns edge RunStats.

        on_frame(camera_id, image, detections, timestamp) sees every processed frame."""
        from edge.app import EdgeApp
        from edge.pipelines import build_pipelines

        cfg = self.config(recordings)
        pipelines = build_pipelines(cfg) if self._pipelines is None else self._pipelines
        missing = [r.camera_id for r in recordings if r.camera_id not in pipelines]
        if missing:
            raise ValueError(f"cameras {missing} were not in this device's first run; keep camera ids stable")
        if pipelines is self._pipelines:
            from flockid.demo_pipeline import rebind_ground_truth

            for r in recordings:
                rebind_ground_truth(pipelines[r.camera_id], r.video)
        self._pipelines = pipelines
        used = {r.camera_id: _Observed(pipelines[r.camera_id], r.camera_id, on_frame) for r in recordings}
        app = EdgeApp(cfg, pipelines=used, key=self.key)
        # A new EdgeApp starts its first window at the first frame; continuing boxes carry no window.
        try:
            return app.run_until_exhausted(upload=upload and self.api_url is not None)
        finally:
            app.close()


    @property
    def outbox_path(self) -> Path:
        return self.workdir / "outbox.sqlite"

    def flush(self, seconds: float = 20.0) -> int:
        """Upload whatever the outbox holds, in order, with the edge uploader."""
        from edge.outbox import Outbox
        from edge.uploader import Uploader

        if not self.api_url:
            raise RuntimeError("EdgeDevice.flush: connect() to an API first")
        import time

        outbox = Outbox(self.outbox_path)
        uploader = Uploader(outbox, self.api_url, self.api_key, backoff_base_s=0.05, backoff_max_s=1.0)
        try:
            deadline = time.monotonic() + seconds
            sent = 0
            while outbox.backlog() and uploader.blocked is None and time.monotonic() < deadline:
                sent += uploader.drain(deadline=deadline)
            return sent
        finally:
            uploader.close()
            outbox.close()


class _Observed:
    """A pipeline proxy that shows every processed frame to a callback (progress, the demo clip)."""

    def __init__(self, inner: Any, camera_id: str, on_frame: Callable[[str, Any, Any, float], None] | None) -> None:
        self._inner = inner
        self._camera_id = camera_id
        self._on_frame = on_frame

    def process(self, frame_bgr: Any, *, timestamp: float, frame_index: int) -> Any:
        dets = self._inner.process(frame_bgr, timestamp=timestamp, frame_index=frame_index)
        if self._on_frame is not None:
            self._on_frame(self._camera_id, frame_bgr, dets, timestamp)
        return dets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
