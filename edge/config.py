"""Typed edge configuration (`edge.yaml`): pydantic models with unknown keys rejected and bounds.

`load_config(path)` reports a bad key by its dotted location and the file it came from, e.g.
``edge.yaml: cameras.0.fps: Input should be greater than 0``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vision.calibration import CalibrationConfig
from vision.masks import MaskXyxyn


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraConfig(_Strict):
    camera_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    source: str | int = Field(description="RTSP/HTTP URL, USB index, video file path, or 'synth'")
    kind: Literal["auto", "stream", "usb", "file", "synth"] = "auto"
    fps: float = Field(default=5.0, gt=0.0, le=60.0, description="target processing rate")
    timestamps_csv: Path | None = Field(default=None, description="frames.csv with the source time of each frame")
    synth: dict[str, Any] | None = Field(default=None, description="datasets.synth WorldConfig fields")
    synth_camera: str | None = Field(default=None, description="which camera of the synthetic world (default first)")
    loop: bool = Field(default=False, description="reopen a video file at its end (wall-clock mode)")
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    masks_xyxyn: list[MaskXyxyn] = Field(
        default_factory=list,
        max_length=32,
        description="regions (fractions of the frame, x0 y0 x1 y1) whose detections are ignored: the DVR's "
        "clock and camera name, a neighbour's pen",
    )
    open_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    read_timeout_s: float = Field(default=5.0, gt=0.0, le=120.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0, le=3600.0, description="cap of the reconnect back-off")
    stall_s: float = Field(default=10.0, gt=0.0, le=600.0, description="no frame for this long = offline")

    def resolved_kind(self) -> str:
        if self.kind != "auto":
            return self.kind
        if isinstance(self.source, int) or (isinstance(self.source, str) and self.source.isdigit()):
            return "usb"
        src = str(self.source)
        if src == "synth":
            return "synth"
        if "://" in src:
            return "stream"
        return "file"


class ApiConfig(_Strict):
    url: str | None = Field(default=None, description="base URL of the lender API; None = no upload")
    api_key: str | None = Field(default=None, min_length=8)
    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    backoff_base_s: float = Field(default=0.5, gt=0.0, le=60.0)
    backoff_max_s: float = Field(default=60.0, gt=0.0, le=3600.0)

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {url!r}")
        return url.rstrip("/") if url else url


class OutboxConfig(_Strict):
    path: Path = Path("outbox.sqlite")
    keep_sent: int = Field(default=2000, ge=0, description="uploaded rows kept for audit before pruning")
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    min_free_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="below this free disk space snapshots are dropped first"
    )


class PipelineConfig(_Strict):
    factory: str = Field(
        default="vision.pipeline:FlockPipeline",
        description="'module:callable' building one camera's pipeline (kwargs: camera_id, registry, options)",
    )
    detector: Path | None = None
    reid: Path | None = None
    providers: list[str] = Field(default_factory=lambda: ["cpu"])
    imgsz: int | None = Field(default=None, ge=32, le=2048)
    registry_path: Path | None = Field(default=None, description="where the farm identity registry persists")
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for the factory")


class ReportConfig(_Strict):
    interval_s: float = Field(default=300.0, gt=0.0, le=86400.0)
    fingerprints_per_camera: int = Field(default=3, ge=0, le=16)
    snapshot_every_reports: int = Field(default=12, ge=0, description="annotated JPEG every N reports; 0 = never")
    report_on_death: bool = Field(
        default=True,
        description="a bird newly suspected dead closes the report window at once: the lender hears of it "
        "within seconds of the judgment, not at the end of the window",
    )
    early_min_s: float = Field(
        default=30.0, ge=0.0, le=86400.0, description="an early report waits until its window is this old"
    )
    snapshot_width: int = Field(default=320, ge=64, le=1280)
    snapshot_quality: int = Field(default=70, ge=10, le=95)
    registry_interval_s: float = Field(default=86400.0, gt=0.0)
    registry_change_fraction: float = Field(
        default=0.2,
        gt=0.0,
        le=10.0,
        description="snapshot early when birds added/removed exceed this fraction",
    )
    registry_change_min: int = Field(default=5, ge=1)


class TamperConfig(_Strict):
    dark_mean: float = Field(default=25.0, ge=0.0, le=255.0)
    covered_std: float = Field(default=6.0, ge=0.0, le=128.0)
    covered_edges: float = Field(default=0.004, ge=0.0, le=1.0)
    moved_shift_frac: float = Field(default=0.06, gt=0.0, le=1.0)
    frozen_s: float = Field(default=20.0, gt=0.0)
    frozen_diff: float = Field(default=0.25, ge=0.0, le=255.0)
    confirm_frames: int = Field(default=3, ge=1, le=1000)
    reference_frames: int = Field(default=10, ge=1, le=10000)


class EdgeConfig(_Strict):
    device_id: str = Field(min_length=1, max_length=128)
    farm_id: str = Field(min_length=1, max_length=128)
    key_path: Path = Field(description="Ed25519 private key from `flockid edge init`")
    clock: Literal["wall", "source"] = Field(
        default="wall", description="'source': simulated clock, frames as fast as possible, source timestamps"
    )
    sim_start: datetime | None = Field(
        default=None, description="epoch added to relative source timestamps (clock=source)"
    )
    cameras: list[CameraConfig] = Field(min_length=1)
    api: ApiConfig = Field(default_factory=ApiConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=9108, ge=0, le=65535, description="None disables; 0 = any free port")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    stop_flush_s: float = Field(
        default=10.0,
        ge=0.0,
        le=600.0,
        description="SIGTERM: time to drain the outbox; stop takes at most this plus ~8 s, so keep it under the "
        "service's TimeoutStopSec (30 s in the shipped unit) minus 10 s",
    )

    @model_validator(mode="after")
    def _unique_cameras(self) -> EdgeConfig:
        ids = [c.camera_id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"cameras: duplicate camera_id {dup}")
        return self

    def resolve_paths(self, base: Path) -> EdgeConfig:
        """Relative paths in the file are relative to the file's folder, not the working directory."""

        def fix(p: Path | None) -> Path | None:
            if p is None or p.is_absolute():
                return p
            return base / p

        upd: dict[str, Any] = {"key_path": fix(self.key_path)}
        out = self.model_copy(update=upd)
        out.outbox = self.outbox.model_copy(update={"path": fix(self.outbox.path)})
        out.pipeline = self.pipeline.model_copy(
            update={
                "detector": fix(self.pipeline.detector),
                "reid": fix(self.pipeline.reid),
                "registry_path": fix(self.pipeline.registry_path),
            }
        )
        cams = []
        for cam in self.cameras:
            upd_cam: dict[str, Any] = {"timestamps_csv": fix(cam.timestamps_csv)}
            if cam.resolved_kind() == "file" and isinstance(cam.source, str) and not Path(cam.source).is_absolute():
                upd_cam["source"] = str(base / cam.source)
            cams.append(cam.model_copy(update=upd_cam))
        out.cameras = cams
        return out


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"{path}: {loc}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, *, source: Path = Path("<dict>")) -> EdgeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


def load_config(path: Path | str) -> EdgeConfig:
    """Read and validate edge.yaml; relative paths inside it are taken relative to its folder."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, source=path).resolve_paths(path.parent.resolve())
