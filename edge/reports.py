"""Build signed flock reports and registry snapshots (vision.wire documents) for the outbox.

Payloads are validated through the wire models and dumped in JSON mode, so what is signed is
exactly what the API parses. Floats are rounded to the precision they mean before signing.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vision.wire import (
    AlertItem,
    BirdPrototype,
    CameraStatus,
    FlockReport,
    FrameFingerprint,
    Headcount,
    RegistrySnapshot,
    SignedEnvelope,
    Snapshot,
    sign_payload,
)
from vision.wire.schema import FlockSignals


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc)


def _round_floats(obj: Any, ndigits: int = 4) -> Any:
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, dict):
        return {k: _round_floats(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round_floats(v, ndigits) for v in obj]
    return obj


def _plain(value: Any) -> Any:
    """pydantic model / dataclass / mapping -> plain dict (wire models validate the rest)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="python")
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return value


@dataclass
class CameraWindow:
    """What the runtime itself observed about one camera during a report window."""

    camera_id: str
    status: str = "ok"
    frames_seen: int = 0
    frames_processed: int = 0
    reconnects: int = 0
    fps: float = 0.0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # AlertItem fields, "at" as epoch seconds
    fingerprints: list[tuple[float, str]] = field(default_factory=list)  # (ts, MotionFingerprint hash)
    snapshot_jpeg: bytes | None = None
    snapshot_ts: float | None = None


@dataclass(frozen=True)
class DocumentHeader:
    device_id: str
    farm_id: str
    seq: int
    prev_hash: str | None
    device_clock: datetime
    monotonic_s: float

    def fields(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "farm_id": self.farm_id,
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "device_clock": self.device_clock,
            "monotonic_s": round(self.monotonic_s, 3),
        }


def header(device_id: str, farm_id: str, seq: int, prev_hash: str | None) -> DocumentHeader:
    """Device wall clock and monotonic clock at signing time; the API decides which to trust."""
    return DocumentHeader(device_id, farm_id, seq, prev_hash, datetime.now(timezone.utc), time.monotonic())


def flock_report_payload(
    hdr: DocumentHeader,
    *,
    window_start: float,
    window_end: float,
    summary_fields: Mapping[str, Any] | None,
    cameras: Sequence[CameraWindow],
    models: Mapping[str, str],
    include_snapshots: bool = True,
) -> dict[str, Any]:
    """A validated FlockReport as a JSON-mode dict.

    summary_fields: `WindowSummary.report_fields()` of the (combined) pipeline summary, or None
    when no frame was processed in the window (camera offline all along): headcount 0, stale.
    """
    fields = dict(summary_fields or {})
    headcount = _plain(fields.get("headcount")) or {"value": 0, "low": 0, "high": 0, "stale": True}
    bad = [c for c in cameras if c.status != "ok"]
    if cameras and len(bad) == len(cameras):
        # No camera could see the flock at the end of the window: the count is carried, not observed.
        headcount = {**headcount, "stale": True}
    alerts = [_plain(a) for a in fields.get("alerts", [])]
    for cam in cameras:
        for a in cam.alerts:
            alerts.append({**a, "at": utc(float(a["at"])), "camera_id": cam.camera_id})
    alerts.sort(key=lambda a: a["at"] if isinstance(a["at"], datetime) else utc(float(a["at"])))
    doc = FlockReport(
        **hdr.fields(),
        window_start=utc(window_start),
        window_end=utc(max(window_start, window_end)),
        camera_ids=[c.camera_id for c in cameras],
        frames_seen=sum(c.frames_seen for c in cameras),
        frames_processed=sum(c.frames_processed for c in cameras),
        headcount=Headcount.model_validate(headcount),
        birds=[_plain(b) for b in fields.get("birds", [])],
        alerts=[AlertItem.model_validate(a) for a in alerts],
        cameras=[
            CameraStatus(
                camera_id=c.camera_id,
                status=c.status,  # type: ignore[arg-type]
                frames_seen=c.frames_seen,
                frames_processed=c.frames_processed,
                reconnects=c.reconnects,
                fps=round(max(0.0, c.fps), 3),
            )
            for c in cameras
        ],
        signals=FlockSignals.model_validate(_plain(fields.get("signals")) or {}),
        models=dict(models),
        fingerprints=[
            FrameFingerprint(camera_id=c.camera_id, at=utc(ts), phash=h) for c in cameras for ts, h in c.fingerprints
        ],
        snapshots=[
            Snapshot(
                camera_id=c.camera_id,
                at=utc(c.snapshot_ts or window_end),
                jpeg_b64=base64.b64encode(c.snapshot_jpeg).decode(),
            )
            for c in cameras
            if include_snapshots and c.snapshot_jpeg
        ],
    )
    return _round_floats(doc.model_dump(mode="json"))


def _ts_or_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return utc(float(value))


def prototype_b64(vector: Any) -> tuple[str, int]:
    """L2-normalised float16 base64 of an embedding prototype, and its dimension."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("prototype must be a non-empty finite vector")
    n = float(np.linalg.norm(v))
    if n > 0:
        v = v / n
    return base64.b64encode(v.astype("<f2").tobytes()).decode(), int(v.size)


def _bird_items(snapshot: Any) -> Iterable[Any]:
    if isinstance(snapshot, Mapping):
        return snapshot.get("birds", [])
    if hasattr(snapshot, "birds"):
        return snapshot.birds  # type: ignore[no-any-return]
    return snapshot  # type: ignore[no-any-return]


def _get(item: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(item, Mapping) and n in item:
            return item[n]
        if not isinstance(item, Mapping) and hasattr(item, n):
            return getattr(item, n)
    return default


def registry_snapshot_payload(hdr: DocumentHeader, snapshot: Any, *, embedder: str | None = None,
                              taken_at: float | datetime | None = None) -> dict[str, Any]:
    """A validated RegistrySnapshot from `IdentityRegistry.snapshot()`.

    taken_at: the time the snapshot describes, on the clock report windows use (the footage's
    source time when the edge replays recorded video fast); None means the device wall clock.

    Accepts a wire RegistrySnapshot-like object or mapping with `birds`, or a list of birds; each bird
    carries `bird_id`, a `prototype` vector (or `prototype_f16_b64` + `dim`), first/last seen (epoch
    seconds or datetimes) and `observations`.
    """
    birds = []
    for item in _bird_items(snapshot):
        b64 = _get(item, "prototype_f16_b64")
        dim = _get(item, "dim")
        if b64 is None:
            b64, dim = prototype_b64(_get(item, "prototype", "embedding", "vector"))
        birds.append(
            BirdPrototype(
                bird_id=_get(item, "bird_id"),
                prototype_f16_b64=b64,
                dim=int(dim),
                first_seen=_ts_or_dt(_get(item, "first_seen")),
                last_seen=_ts_or_dt(_get(item, "last_seen")),
                observations=int(_get(item, "observations", "n_observations", default=0)),
            )
        )
    emb = embedder or _get(snapshot, "embedder", "embedder_sha", default="") or "unknown"
    when = hdr.device_clock if taken_at is None else _ts_or_dt(taken_at)
    doc = RegistrySnapshot(**hdr.fields(), taken_at=when, embedder=str(emb), birds=birds)
    return _round_floats(doc.model_dump(mode="json"))


def sign(payload: dict[str, Any], key: Ed25519PrivateKey) -> SignedEnvelope:
    return sign_payload(payload, key)
