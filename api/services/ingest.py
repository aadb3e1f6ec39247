"""`POST /v1/reports`: verify, chain-check and store a signed report atomically.

Order of checks (each failure has its own problem type): device key -> rate limit -> JSON ->
signature present -> envelope schema -> device binding -> Ed25519 signature -> payload schema ->
farm binding -> clock skew -> [transaction: lock device row -> duplicate / order / gap / prev_hash
-> store report, birds, fingerprints, snapshots, registry, alerts -> advance chain head]."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.models import Bird, CameraSnapshot, Device, Farm, FarmRegistry, Fingerprint, Report
from api.errors import Conflict, Forbidden, ProblemError, RateLimited, Unprocessable
from api.repositories.common import driver_execute, upsert, utcnow
from api.services import alerts as alert_svc
from api.services.auth import Principal, require_role
from api.services.flocks import worst_health
from api.services.valuation import ltv_alerts
from api.settings import Settings
from vision.wire import (
    FlockReport,
    RegistrySnapshot,
    SignatureError,
    SignedEnvelope,
    key_id,
    load_public_key,
    parse_payload,
    verify_envelope,
)

TAMPER_STALE = alert_svc.TAMPER_KINDS


@dataclass
class IngestResult:
    status: int  # 201 stored, 200 exact duplicate
    report_id: int
    device_id: str
    seq: int
    kind: str
    payload_hash: str
    alert_ids: list[int] = field(default_factory=list)


class TokenBuckets:
    """Per-device token buckets, in process memory (one API process per database in this design)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if allowed, else seconds until the next token."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]]


EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
INT32_MAX = 2**31 - 1


def _integers(doc: FlockReport | RegistrySnapshot) -> Iterator[tuple[str, int]]:
    """The integers stored in 32-bit columns (the wire schema gives them no upper bound)."""
    if isinstance(doc, FlockReport):
        h = doc.headcount
        yield from (("payload.headcount.value", h.value), ("payload.headcount.low", h.low),
                    ("payload.headcount.high", h.high),
                    ("payload.signals.mortality_unseen", doc.signals.mortality_unseen))


def _datetimes(doc: FlockReport | RegistrySnapshot) -> Iterator[tuple[str, datetime]]:
    """Every datetime in a parsed report, with its JSON path (for precise error messages). Listed by
    hand: a generic model walk costs more than the rest of the validation on 200-bird reports."""
    yield "payload.device_clock", doc.device_clock
    if isinstance(doc, FlockReport):
        yield "payload.window_start", doc.window_start
        yield "payload.window_end", doc.window_end
        groups: tuple[tuple[str, list[Any]], ...] = (
            ("alerts", doc.alerts), ("fingerprints", doc.fingerprints), ("snapshots", doc.snapshots))
        for name, items in groups:
            for i, item in enumerate(items):
                yield f"payload.{name}[{i}].at", item.at
        for i, b in enumerate(doc.birds):
            yield f"payload.birds[{i}].last_seen", b.last_seen
            if b.first_seen is not None:
                yield f"payload.birds[{i}].first_seen", b.first_seen
    else:
        yield "payload.taken_at", doc.taken_at
        for i, p in enumerate(doc.birds):
            yield f"payload.birds[{i}].first_seen", p.first_seen
            yield f"payload.birds[{i}].last_seen", p.last_seen


def _bounds_in(tz: tzinfo | None, *bounds: datetime) -> tuple[datetime, ...]:
    """The bounds as the same instants in tz, when tz is a fixed offset. Aware datetimes that share one
    tzinfo object compare by their fields; across tzinfo objects each comparison calls utcoffset() on
    both sides, ~10x the cost (a report's ~30 timestamps share pydantic's one UTC tzinfo)."""
    if tz is None or tz.utcoffset(None) is None:  # naive, or a zone whose offset varies: compare as given
        return bounds
    return tuple(b.astimezone(tz) for b in bounds)


def parse_envelope(raw: bytes) -> SignedEnvelope:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unprocessable(f"body is not JSON: {exc}", slug="malformed-json") from exc
    if not isinstance(body, dict):
        raise Unprocessable("body must be a JSON object (a SignedEnvelope)", slug="invalid-envelope")
    if not body.get("signature") or not body.get("key_id"):
        raise ProblemError("report is unsigned: `signature` and `key_id` are required", status=401,
                           slug="unsigned-report", title="Unsigned report")
    try:
        return SignedEnvelope.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("body is not a valid SignedEnvelope", slug="invalid-envelope",
                            extra={"errors": _errors(exc)}) from exc


def _decode_snapshots(doc: FlockReport) -> list[tuple[str, datetime, bytes]]:
    out = []
    for snap in doc.snapshots:
        try:
            jpeg = base64.b64decode(snap.jpeg_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Unprocessable(f"snapshot of camera {snap.camera_id}: jpeg_b64 is not base64",
                                slug="invalid-report") from exc
        if not jpeg.startswith(b"\xff\xd8"):
            raise Unprocessable(f"snapshot of camera {snap.camera_id}: not a JPEG", slug="invalid-report")
        out.append((snap.camera_id, snap.at, jpeg))
    return out


@functools.lru_cache(maxsize=4096)
def _public_key(pem: str) -> tuple[Any, str]:
    key = load_public_key(pem)
    return key, key_id(key)


def _verify_signature(envelope: SignedEnvelope, pem: str) -> str:
    """`vision.wire.verify_envelope` with the cached public key; returns the payload hash."""
    key, _ = _public_key(pem)
    return verify_envelope(envelope, key)


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    farm_id: str
    org_id: str
    public_key_pem: str
    # A detached, never-attached stand-in for the device's farm: the rules only read its id and
    # organisation. Built once per cache entry, not per report (an ORM instance costs ~5 us).
    farm: Farm = field(compare=False, repr=False)


_devices: dict[str, tuple[DeviceInfo, float]] = {}


def _device_info(session: Session, device_id: str | None) -> DeviceInfo:
    """A device's farm and key never change after registration (no endpoint changes them), so they are
    cached briefly in process to keep two queries off every ingest."""
    if device_id is not None:
        hit = _devices.get(device_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
    row = session.execute(select(Device.id, Device.farm_id, Farm.org_id, Device.public_key_pem)
                          .join(Farm, Farm.id == Device.farm_id).where(Device.id == device_id)).first()
    if row is None:
        raise Forbidden("this key's device no longer exists", slug="unknown-device")
    info = DeviceInfo(row.id, row.farm_id, row.org_id, row.public_key_pem, Farm(id=row.farm_id, org_id=row.org_id))
    if len(_devices) > 10_000:
        _devices.clear()
    _devices[info.id] = (info, time.monotonic() + 60.0)
    return info


def check_envelope(session: Session, settings: Settings, principal: Principal, raw: bytes, now: datetime
                   ) -> tuple[DeviceInfo, SignedEnvelope, FlockReport | RegistrySnapshot, str]:
    """Everything that needs no lock: returns the device, envelope, parsed document and payload hash."""
    require_role(principal, "device")
    envelope = parse_envelope(raw)
    device = _device_info(session, principal.device_id)
    if envelope.payload.get("device_id") != device.id:
        raise Forbidden(f"payload.device_id {envelope.payload.get('device_id')!r} is not this key's device "
                        f"{device.id!r}", slug="device-mismatch")
    try:
        phash = _verify_signature(envelope, device.public_key_pem)
    except SignatureError as exc:
        raise Forbidden(str(exc), slug="bad-signature", title="Signature does not verify") from exc
    try:
        doc = parse_payload(envelope.payload)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else "payload"
        why = errors[0]["msg"] if errors else str(exc)
        raise Unprocessable(f"payload does not match the report schema: {where}: {why}",
                            slug="invalid-report", extra={"errors": _errors(exc)}) from exc
    except (ValueError, TypeError) as exc:
        # TypeError: vision.wire's window-order validator compares a naive with an aware datetime.
        raise Unprocessable(f"payload: {exc}", slug="invalid-report") from exc
    if doc.farm_id != device.farm_id:
        raise Forbidden(f"payload.farm_id {doc.farm_id!r} is not the device's farm {device.farm_id!r}",
                        slug="farm-mismatch")
    if doc.seq >= 2**62:
        raise Unprocessable(f"payload.seq {doc.seq} is beyond any real device's sequence", slug="invalid-report")
    big = [name for name, v in _integers(doc) if v > INT32_MAX]
    if big:
        raise Unprocessable(f"{', '.join(big[:5])} exceed {INT32_MAX}", slug="invalid-report")
    limit = now + timedelta(seconds=settings.clock_skew_s)
    earliest, latest = _bounds_in(doc.device_clock.tzinfo, EARLIEST, limit)
    for name, ts in _datetimes(doc):
        if ts.tzinfo is None:
            raise Unprocessable(f"{name} has no time zone", slug="invalid-report")
        if ts < earliest:
            raise Unprocessable(f"{name} {ts.isoformat()} is before {EARLIEST.year}: the device clock is unset",
                                slug="invalid-report")
        if ts > latest:
            raise Unprocessable(
                f"{name} {ts.isoformat()} is in the future (server time {now.isoformat()}, "
                f"tolerance {settings.clock_skew_s:g} s)", slug="future-dated", title="Future-dated report")
    return device, envelope, doc, phash


def ingest(session: Session, settings: Settings, principal: Principal, raw: bytes,
           buckets: TokenBuckets | None = None, *,
           write_lock: contextlib.AbstractContextManager[Any] | None = None) -> IngestResult:
    """write_lock, if given, is held around the write transaction (SQLite: one writer at a time)."""
    now = utcnow()
    if buckets is not None and principal.device_id is not None:
        wait = buckets.take(principal.device_id)
        if wait > 0:
            raise RateLimited(f"device {principal.device_id} exceeds {settings.ingest_rate_per_s:g} reports/s",
                              extra={"retry_after_s": round(wait, 3)})
    device, _envelope, doc, phash = check_envelope(session, settings, principal, raw, now)
    snapshots = _decode_snapshots(doc) if isinstance(doc, FlockReport) else []
    farm = device.farm
    session.rollback()  # end the read transaction; the write below starts with the lock
    try:
        with write_lock if write_lock is not None else contextlib.nullcontext():
            return _store(session, settings, device.id, farm, raw.decode("utf-8"), doc, phash, snapshots, now)
    except IntegrityError:
        # A concurrent request stored the same (device, seq) between our check and insert.
        session.rollback()
        existing = session.execute(select(Report.id, Report.payload_hash).where(
            Report.device_id == device.id, Report.seq == doc.seq)).first()
        if existing is not None and existing.payload_hash == phash:
            return IngestResult(200, existing.id, device.id, doc.seq, doc.kind, phash)
        raise Conflict(f"report seq {doc.seq} was stored concurrently with different content",
                       slug="conflicting-duplicate") from None


@dataclass(frozen=True)
class StoredReport:
    """What the rules read of the report just inserted."""
    id: int
    headcount: int | None
    stale: bool
    dead_count: int
    headcount_high: int | None = None


_LOCK_HEAD = (update(Device).where(Device.id == bindparam("d")).values(head_seq=Device.head_seq)
              .returning(Device.head_seq, Device.head_hash, Device.good_report_id, Device.good_headcount))
_ADVANCE_HEAD = update(Device).where(Device.id == bindparam("d"))
_REPORTS: Table = Report.__table__  # type: ignore[assignment]
_INSERT_REPORT = insert(_REPORTS).returning(_REPORTS.c.id)
_INSERT_FINGERPRINT = insert(Fingerprint.__table__)  # type: ignore[arg-type]


def _store(session: Session, settings: Settings, device_id: str, farm: Farm, envelope_text: str,
           doc: FlockReport | RegistrySnapshot, phash: str, snapshots: list[tuple[str, datetime, bytes]],
           now: datetime) -> IngestResult:
    # Take the write lock first (SQLite: database write lock; PostgreSQL: the device row lock), so the
    # chain head cannot move between our check and our write.
    conn = session.connection()
    head_seq, head_hash, good_id, good_count = driver_execute(conn, _LOCK_HEAD, {"d": device_id}).one()
    prev_good = (good_id, good_count or 0) if good_id is not None else None
    # The head only advances together with the insert of its report, so a seq past the head cannot
    # be stored yet: look for an existing row only when seq <= head.
    existing = None
    if head_seq is not None and doc.seq <= head_seq:
        existing = session.execute(select(Report.id, Report.payload_hash).where(
            Report.device_id == device_id, Report.seq == doc.seq)).first()
    if existing is not None:
        session.rollback()
        if existing.payload_hash == phash:
            return IngestResult(200, existing.id, device_id, doc.seq, doc.kind, phash)
        raise _chain_refusal(session, farm, device_id, "conflicting-duplicate",
                             f"seq {doc.seq} was already stored with different content (report {existing.id})",
                             expected=None if head_seq is None else head_seq + 1, report_id=existing.id)
    expected = 0 if head_seq is None else head_seq + 1
    if doc.seq < expected:
        session.rollback()
        raise _chain_refusal(session, farm, device_id, "reordered",
                             f"seq {doc.seq} is older than the chain head {head_seq}", expected=expected)
    if doc.seq > expected:
        session.rollback()
        raise _chain_refusal(session, farm, device_id, "chain-gap",
                             f"seq {doc.seq} skips ahead: expected seq {expected}", expected=expected)
    if doc.prev_hash != head_hash:
        session.rollback()
        raise _chain_refusal(session, farm, device_id, "prev-hash-mismatch",
                             f"prev_hash of seq {doc.seq} does not match the hash of seq {head_seq}",
                             expected=expected)
    # Plain column values, not an ORM object: instrumented attribute sets were a visible share of ingest.
    cols: dict[str, Any] = {
        "device_id": device_id, "farm_id": farm.id, "seq": doc.seq, "kind": doc.kind, "payload_hash": phash,
        "prev_hash": doc.prev_hash, "envelope": envelope_text, "received_at": now,
        "device_clock": doc.device_clock, "window_start": None, "window_end": None, "headcount": None,
        "headcount_low": None, "headcount_high": None, "stale": False, "dead_count": 0, "mortality_unseen": 0,
        "activity": None, "huddling": None, "mean_weight_g": None, "n_birds": len(doc.birds)}
    if isinstance(doc, FlockReport):
        health = [worst_health(list(b.health)) for b in doc.birds]
        weights = [b.weight_g for b in doc.birds if b.weight_g is not None]
        cols.update(
            window_start=doc.window_start, window_end=doc.window_end, headcount=doc.headcount.value,
            headcount_low=doc.headcount.low, headcount_high=doc.headcount.high,
            stale=doc.headcount.stale or any(a.kind in TAMPER_STALE for a in doc.alerts),
            dead_count=sum(1 for h in health if h == "suspected_dead"),
            mortality_unseen=doc.signals.mortality_unseen, activity=doc.signals.activity_index,
            huddling=doc.signals.huddling_index,
            mean_weight_g=doc.signals.mean_weight_g if doc.signals.mean_weight_g is not None else (
                sum(weights) / len(weights) if weights else None))
    else:
        health = []
        cols["window_end"] = doc.taken_at
    report = StoredReport(driver_execute(conn, _INSERT_REPORT, cols).scalar_one(), cols["headcount"], cols["stale"],
                          cols["dead_count"], cols["headcount_high"])
    alerts: list[Any] = []
    if isinstance(doc, FlockReport):
        alerts += _store_flock(session, settings, farm, device_id, report, doc, snapshots, prev_good, health)
        if not report.stale:
            good_id, good_count = report.id, report.headcount
    else:
        alerts += _store_registry(session, settings, farm, report, doc)
    driver_execute(conn, _ADVANCE_HEAD, {
        "d": device_id, "head_seq": doc.seq, "head_hash": phash, "last_report_at": now,
        "last_device_clock": doc.device_clock, "good_report_id": good_id, "good_headcount": good_count})
    session.commit()
    return IngestResult(201, report.id, device_id, doc.seq, doc.kind, phash, [a.id for a in alerts])


def _store_flock(session: Session, settings: Settings, farm: Farm, device_id: str, report: StoredReport,
                 doc: FlockReport, snapshots: list[tuple[str, datetime, bytes]],
                 prev_good: tuple[int, int] | None, health: list[str]) -> list[Any]:
    bird_rows = [{
        "farm_id": farm.id, "bird_id": b.bird_id, "first_seen": b.first_seen, "last_seen": b.last_seen,
        "identity_confidence": b.identity_confidence, "activity_bl_per_h": b.activity_bl_per_h,
        "weight_g": b.weight_g, "weight_g_low": b.weight_g_low, "weight_g_high": b.weight_g_high,
        "health": h, "cameras": list(b.cameras), "report_id": report.id,
    } for b, h in zip(doc.birds, health, strict=True)]
    conn = session.connection()
    upsert(conn, Bird, bird_rows, ["farm_id", "bird_id"],
           ["last_seen", "identity_confidence", "activity_bl_per_h", "weight_g", "weight_g_low",
            "weight_g_high", "health", "cameras", "report_id"], keep_existing=["first_seen"])
    alerts: list[Any] = []
    if doc.fingerprints:
        # Check before inserting this report's own fingerprints.
        alerts += alert_svc.replay_alerts(session, settings, farm, device_id, report.id, list(doc.fingerprints),
                                          conn)
        driver_execute(conn, _INSERT_FINGERPRINT,
                       alert_svc.fingerprint_rows(report.id, device_id, farm.id, doc.fingerprints))
    latest: dict[str, tuple[datetime, bytes]] = {}
    for cam, at, jpeg in snapshots:
        if cam not in latest or at >= latest[cam][0]:
            latest[cam] = (at, jpeg)
    upsert(conn, CameraSnapshot,
           [{"farm_id": farm.id, "camera_id": cam, "device_id": device_id, "report_id": report.id, "at": at,
             "jpeg": jpeg} for cam, (at, jpeg) in latest.items()],
           ["farm_id", "camera_id"], ["device_id", "report_id", "at", "jpeg"])
    alerts += alert_svc.tamper_alerts(session, farm, device_id, report.id, doc.alerts, report.stale)
    alerts += alert_svc.headcount_alerts(session, settings, farm, device_id, report, prev_good)
    if _ltv_due(farm.id, doc.window_end, settings.ltv_check_interval_s):
        loans = alert_svc.active_loans_for_farm(session, farm.id)
        if loans:
            alerts += ltv_alerts(session, settings, farm.id, loans)
    return alerts


_ltv_checked: dict[str, datetime] = {}
_ltv_lock = threading.Lock()


def _ltv_due(farm_id: str, at: datetime, interval_s: float) -> bool:
    """A full valuation per report is the costliest step of ingest; LTV moves slowly, so it is
    re-checked at most once per interval of report time per farm (the periodic scan covers the rest)."""
    with _ltv_lock:
        last = _ltv_checked.get(farm_id)
        if last is not None and abs((at - last).total_seconds()) < interval_s:
            return False
        if len(_ltv_checked) > 100_000:
            _ltv_checked.clear()
        _ltv_checked[farm_id] = at
        return True


def _store_registry(session: Session, settings: Settings, farm: Farm, report: StoredReport,
                    doc: RegistrySnapshot) -> list[Any]:
    dims = {b.dim for b in doc.birds}
    if len(dims) > 1:
        raise Unprocessable(f"registry snapshot mixes prototype dims {sorted(dims)}", slug="invalid-report")
    dim = dims.pop() if dims else 1
    try:
        vectors = alert_svc.decode_prototypes(list(doc.birds), dim)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable(f"registry snapshot: {exc}", slug="invalid-report") from exc
    upsert(session, FarmRegistry, [{
        "farm_id": farm.id, "report_id": report.id, "taken_at": doc.taken_at, "embedder": doc.embedder[:80],
        "dim": dim, "bird_ids": [b.bird_id for b in doc.birds], "vectors": vectors.astype("<f2").tobytes(),
    }], ["farm_id"], ["report_id", "taken_at", "embedder", "dim", "bird_ids", "vectors"])
    return alert_svc.double_pledge_alerts(session, settings, farm.id)


def _chain_refusal(session: Session, farm: Farm, device_id: str, slug: str, detail: str,
                   expected: int | None, report_id: int | None = None) -> Conflict:
    """Record a chain_broken alert (its own transaction: the report itself is refused) and build the 409."""
    try:
        alert_svc.raise_alert(session, org_id=farm.org_id, kind="chain_broken", severity="critical",
                              farm_id=farm.id, device_id=device_id,
                              report_ids=[report_id] if report_id is not None else [],
                              dedupe_key=f"chain:{device_id}:{slug}",
                              message=f"device {device_id}: report refused ({slug}): {detail}",
                              details={"problem": slug, "expected_seq": expected})
        session.commit()
    except Exception:  # the refusal matters more than its alert; never turn a 409 into a 500
        session.rollback()
    return Conflict(detail, slug=slug, title="Report breaks the device's hash chain",
                    extra={"expected_seq": expected})
