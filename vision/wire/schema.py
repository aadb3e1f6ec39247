"""Pydantic models of what a device sends. Every document of a device sits in one hash chain:
flock reports and registry snapshots share the (device_id, seq) sequence."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
HEX64 = r"^[0-9a-f]{64}$"
MAX_BIRDS = 1_000_000  # far above any single farm; bounds keep hostile payloads from overflowing storage

# Every timestamp on the wire is an AwareDatetime: a naive time is ambiguous across devices.

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
NonNeg = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Headcount(_Strict):
    value: int = Field(
        ge=0, le=MAX_BIRDS, description="verified headcount: distinct registered birds seen in the window"
    )
    low: int = Field(ge=0, le=MAX_BIRDS)
    high: int = Field(ge=0, le=MAX_BIRDS)
    instantaneous_max: int = Field(ge=0, le=MAX_BIRDS, default=0, description="largest per-frame count in the window")
    stale: bool = Field(default=False, description="true when cameras could not see the flock (tamper, dark)")

    @field_validator("high")
    @classmethod
    def _band(cls, high: int, info: Any) -> int:
        low = info.data.get("low", 0)
        value = info.data.get("value", 0)
        if not (low <= value <= high):
            raise ValueError(f"headcount band must satisfy low <= value <= high, got {low} <= {value} <= {high}")
        return high


class BirdSummary(_Strict):
    bird_id: str = Field(pattern=r"^bird-\d{6,}$")
    identity_confidence: Prob
    first_seen: AwareDatetime | None = None
    last_seen: AwareDatetime
    activity_bl_per_h: NonNeg = Field(description="distance walked per hour, in body lengths")
    length_px: NonNeg | None = None
    weight_g: NonNeg | None = Field(default=None, description="size-based weight estimate")
    weight_g_low: NonNeg | None = None
    weight_g_high: NonNeg | None = None
    health: list[Literal["ok", "suspected_sick", "suspected_dead", "lethargic"]] = Field(default_factory=list)
    cameras: list[str] = Field(default_factory=list)


AlertKind = Literal[
    "suspected_sick",
    "suspected_dead",
    "camera_covered",
    "camera_dark",
    "camera_moved",
    "scene_frozen",
    "camera_offline",
    "camera_reconnected",
    "corrupt_frames",
]


class AlertItem(_Strict):
    kind: AlertKind
    at: AwareDatetime
    camera_id: str | None = None
    bird_id: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""


class CameraStatus(_Strict):
    camera_id: str
    status: Literal["ok", "covered", "dark", "moved", "frozen", "offline", "corrupt"]
    frames_seen: int = Field(ge=0)
    frames_processed: int = Field(ge=0)
    reconnects: int = Field(ge=0, default=0)
    fps: NonNeg = 0.0


class FrameFingerprint(_Strict):
    camera_id: str
    at: AwareDatetime
    phash: str = Field(pattern=r"^[0-9a-f]{16}$",
                       description="64-bit DCT hash of the frame with the camera's learned background removed "
                                   "(edge.fingerprint.MotionFingerprint); the API matches runs of them for replays")


class Snapshot(_Strict):
    camera_id: str
    at: AwareDatetime
    jpeg_b64: str = Field(max_length=400_000)


class FlockSignals(_Strict):
    activity_index: NonNeg = 0.0
    huddling_index: Prob = 0.0
    mean_weight_g: NonNeg | None = None
    mortality_unseen: int = Field(ge=0, le=MAX_BIRDS, default=0, description="registered birds unseen for N days")


class _Document(_Strict):
    schema_version: int = SCHEMA_VERSION
    device_id: str = Field(min_length=1, max_length=128)
    farm_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0, le=2**63 - 1, description="per-device sequence number, shared by all document kinds")
    prev_hash: str | None = Field(default=None, pattern=HEX64, description="hash of the payload of seq-1")
    device_clock: AwareDatetime
    monotonic_s: NonNeg = Field(description="device monotonic clock, for skew checks by the API")

    @field_validator("prev_hash")
    @classmethod
    def _first_has_no_prev(cls, prev: str | None, info: Any) -> str | None:
        if info.data.get("seq") == 0 and prev is not None:
            raise ValueError("the first document (seq 0) must have prev_hash null")
        if info.data.get("seq", 0) > 0 and prev is None:
            raise ValueError("documents after seq 0 must carry prev_hash")
        return prev


class FlockReport(_Document):
    kind: Literal["flock_report"] = "flock_report"
    window_start: AwareDatetime
    window_end: AwareDatetime
    camera_ids: list[str] = Field(min_length=1)
    frames_seen: int = Field(ge=0)
    frames_processed: int = Field(ge=0)
    headcount: Headcount
    birds: list[BirdSummary] = Field(default_factory=list)
    alerts: list[AlertItem] = Field(default_factory=list)
    cameras: list[CameraStatus] = Field(default_factory=list)
    signals: FlockSignals = Field(default_factory=FlockSignals)
    models: dict[str, str] = Field(default_factory=dict, description="model name -> sha256 from its model card")
    fingerprints: list[FrameFingerprint] = Field(default_factory=list)
    snapshots: list[Snapshot] = Field(default_factory=list)

    @field_validator("window_end")
    @classmethod
    def _window_order(cls, end: AwareDatetime, info: Any) -> AwareDatetime:
        start = info.data.get("window_start")
        if start is not None and end < start:
            raise ValueError("window_end is before window_start")
        return end


class BirdPrototype(_Strict):
    bird_id: str = Field(pattern=r"^bird-\d{6,}$")
    prototype_f16_b64: str = Field(description="L2-normalised embedding prototype, float16, base64")
    dim: int = Field(ge=1, le=4096)
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    observations: int = Field(ge=0)


class RegistrySnapshot(_Document):
    kind: Literal["registry_snapshot"] = "registry_snapshot"
    taken_at: AwareDatetime
    embedder: str = Field(description="sha256 of the re-ID model the prototypes come from")
    birds: list[BirdPrototype] = Field(default_factory=list)


class SignedEnvelope(_Strict):
    """What goes over the wire: the payload as a plain JSON object plus its Ed25519 signature
    over canonical_bytes(payload)."""

    payload: dict[str, Any]
    signature: str = Field(description="base64 Ed25519 signature")
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")


def parse_payload(payload: dict[str, Any]) -> FlockReport | RegistrySnapshot:
    kind = payload.get("kind")
    if kind == "flock_report":
        return FlockReport.model_validate(payload)
    if kind == "registry_snapshot":
        return RegistrySnapshot.model_validate(payload)
    raise ValueError(f"payload.kind must be 'flock_report' or 'registry_snapshot', got {kind!r}")
