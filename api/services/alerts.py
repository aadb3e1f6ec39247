"""Alert rules. Each rule raises at most one open alert per subject (dedupe_key); an acknowledged
alert lets the same rule fire again."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from api.db.models import Alert, Device, Farm, FarmRegistry, Fingerprint, Flock, Loan, Report
from api.repositories.common import utcnow
from api.settings import Settings

TAMPER_KINDS = {"camera_covered", "camera_dark", "camera_moved", "scene_frozen"}

ALERT_KINDS = (
    "headcount_drop",
    "mortality_spike",
    "device_silent",
    "ltv_above_limit",
    "camera_tampering",
    "chain_broken",
    "double_pledge",
    "replayed_footage",
)


def raise_alert(session: Session, *, org_id: str, kind: str, severity: str, message: str, dedupe_key: str,
                farm_id: str | None = None, loan_id: str | None = None, device_id: str | None = None,
                report_ids: Iterable[int] = (), details: dict[str, Any] | None = None) -> Alert | None:
    """Insert an alert unless an open one with the same (org, dedupe_key) exists; returns the new row."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind {kind!r} is not one of {', '.join(ALERT_KINDS)}")
    existing = session.scalar(select(Alert.id).where(
        Alert.org_id == org_id, Alert.dedupe_key == dedupe_key, Alert.status == "open").limit(1))
    if existing is not None:
        return None
    alert = Alert(org_id=org_id, kind=kind, severity=severity, farm_id=farm_id, loan_id=loan_id,
                  device_id=device_id, message=message, details=details or {},
                  report_ids=sorted({int(r) for r in report_ids}), dedupe_key=dedupe_key, status="open",
                  created_at=utcnow(), webhook_status="none")
    session.add(alert)
    session.flush()
    return alert


def active_loans_for_farm(session: Session, farm_id: str) -> list[Loan]:
    return list(session.scalars(
        select(Loan).join(Flock, Flock.id == Loan.flock_id)
        .where(Flock.farm_id == farm_id, Loan.status == "active", Flock.closed_at.is_(None))
        .order_by(Loan.id)))


# --- rules evaluated on a stored flock report -------------------------------------------------

def tamper_alerts(session: Session, farm: Farm, device_id: str, report_id: int,
                  alerts: Iterable[Any], stale: bool) -> list[Alert]:
    out: list[Alert] = []
    for item in alerts:
        if item.kind not in TAMPER_KINDS:
            continue
        a = raise_alert(session, org_id=farm.org_id, kind="camera_tampering", severity="critical",
                        farm_id=farm.id, device_id=device_id, report_ids=[report_id],
                        dedupe_key=f"tamper:{device_id}:{item.camera_id}:{item.kind}",
                        message=f"camera {item.camera_id or '?'} on device {device_id}: {item.kind}"
                                f"{' - ' + item.message if item.message else ''}; headcount marked stale",
                        details={"camera_id": item.camera_id, "edge_kind": item.kind, "stale": stale})
        if a is not None:
            out.append(a)
    return out


def headcount_alerts(session: Session, settings: Settings, farm: Farm, device_id: str, report: Report,
                     prev: tuple[int, int] | None) -> list[Alert]:
    """prev = (report id, headcount) of the device's previous non-stale flock report."""
    out: list[Alert] = []
    if report.stale or report.headcount is None:
        return out
    if prev is not None and prev[1] > 0:
        drop = (prev[1] - report.headcount) / prev[1]
        if drop > settings.headcount_drop_fraction:
            a = raise_alert(session, org_id=farm.org_id, kind="headcount_drop", severity="critical",
                            farm_id=farm.id, device_id=device_id, report_ids=[prev[0], report.id],
                            dedupe_key=f"headcount_drop:{device_id}",
                            message=f"headcount fell {drop:.1%} ({prev[1]} -> {report.headcount}) on device "
                                    f"{device_id}, above the {settings.headcount_drop_fraction:.1%} threshold",
                            details={"previous": prev[1], "current": report.headcount, "drop_fraction": drop})
            if a is not None:
                out.append(a)
    dead = report.dead_count
    if report.headcount > 0 and dead / report.headcount > settings.mortality_spike_fraction:
        a = raise_alert(session, org_id=farm.org_id, kind="mortality_spike", severity="critical",
                        farm_id=farm.id, device_id=device_id, report_ids=[report.id],
                        dedupe_key=f"mortality:{device_id}",
                        message=f"{dead} suspected dead of {report.headcount} birds in one report "
                                f"({dead / report.headcount:.1%} > {settings.mortality_spike_fraction:.1%})",
                        details={"dead": dead, "headcount": report.headcount})
        if a is not None:
            out.append(a)
    return out


def _chunks(phash: str) -> tuple[int, int, int, int]:
    v = int(phash, 16)
    return (v >> 48) & 0xFFFF, (v >> 32) & 0xFFFF, (v >> 16) & 0xFFFF, v & 0xFFFF


def fingerprint_rows(report_id: int, device_id: str, farm_id: str, fingerprints: Iterable[Any]) -> list[dict]:
    rows = []
    for f in fingerprints:
        c = _chunks(f.phash)
        rows.append({"report_id": report_id, "device_id": device_id, "farm_id": farm_id,
                     "camera_id": f.camera_id, "at": f.at, "phash": f.phash,
                     "c0": c[0], "c1": c[1], "c2": c[2], "c3": c[3]})
    return rows


_REPLAY_CANDIDATES = (
    select(Fingerprint.phash, Fingerprint.report_id, Fingerprint.at)
    .where(or_(*(getattr(Fingerprint, f"c{i}").in_(bindparam(f"c{i}", expanding=True)) for i in range(4))),
           Fingerprint.at < bindparam("cutoff"), Fingerprint.report_id != bindparam("rid"))
    .limit(5000))


def replay_alerts(session: Session, settings: Settings, farm: Farm, device_id: str, report_id: int,
                  fingerprints: list[Any]) -> list[Alert]:
    """Many of this report's frame hashes (near-)repeat frames seen at least replay_min_age_s earlier."""
    if len(fingerprints) < settings.replay_min_matches:
        return []
    chunks = [_chunks(f.phash) for f in fingerprints]
    oldest_cutoff = max(f.at for f in fingerprints) - timedelta(seconds=settings.replay_min_age_s)
    # One indexed query for all frames: any shared 16-bit chunk makes a candidate.
    params: dict[str, Any] = {f"c{i}": sorted({c[i] for c in chunks}) for i in range(4)}
    params.update(cutoff=oldest_cutoff, rid=report_id)
    cands = session.execute(_REPLAY_CANDIDATES, params).all()
    if not cands:
        return []
    cand_vals = [(int(ph, 16), rid, at) for ph, rid, at in cands]
    matched = 0
    sources: set[int] = set()
    for f in fingerprints:
        v = int(f.phash, 16)
        cutoff = f.at - timedelta(seconds=settings.replay_min_age_s)
        hit = [rid for cv, rid, at in cand_vals if at < cutoff and bin(cv ^ v).count("1") <= settings.replay_hamming]
        if hit:
            matched += 1
            sources.update(hit[:5])
    if matched < settings.replay_min_matches or matched / len(fingerprints) < settings.replay_fraction:
        return []
    # Other tenants' report ids must not leak into this organisation's alert.
    own = set(session.scalars(select(Report.id).join(Farm, Farm.id == Report.farm_id)
                              .where(Report.id.in_(sorted(sources)), Farm.org_id == farm.org_id)))
    a = raise_alert(session, org_id=farm.org_id, kind="replayed_footage", severity="critical",
                    farm_id=farm.id, device_id=device_id, report_ids=[report_id, *sorted(own)[:20]],
                    dedupe_key=f"replay:{device_id}",
                    message=f"{matched} of {len(fingerprints)} frames in report {report_id} repeat earlier "
                            f"footage (Hamming distance <= {settings.replay_hamming})",
                    details={"matched_frames": matched, "frames": len(fingerprints),
                             "matches_other_tenant": len(sources - own) > 0})
    return [a] if a is not None else []


# --- double pledge ---------------------------------------------------------------------------

def decode_prototypes(birds: list[Any], dim: int) -> np.ndarray:
    mats = []
    for b in birds:
        raw = base64.b64decode(b.prototype_f16_b64, validate=True)
        vec = np.frombuffer(raw, dtype="<f2")
        if vec.size != dim:
            raise ValueError(f"bird {b.bird_id}: prototype has {vec.size} values, dim says {dim}")
        mats.append(vec)
    if not mats:
        return np.zeros((0, dim), dtype=np.float16)
    return np.stack(mats).astype(np.float16)


def _normalised(vectors: bytes, dim: int) -> np.ndarray:
    m = np.frombuffer(vectors, dtype="<f2").reshape(-1, dim).astype(np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(n, 1e-12)


def mutual_matches(a: np.ndarray, b: np.ndarray, threshold: float) -> int:
    if len(a) == 0 or len(b) == 0:
        return 0
    sims = a @ b.T
    best_b = sims.argmax(axis=1)
    best_a = sims.argmax(axis=0)
    idx = np.arange(len(a))
    mutual = best_a[best_b] == idx
    return int(np.sum(mutual & (sims[idx, best_b] >= threshold)))


def double_pledge_alerts(session: Session, settings: Settings, farm_id: str) -> list[Alert]:
    """Compare this farm's latest registry with every other pledged farm's; alert both loans."""
    mine = session.get(FarmRegistry, farm_id)
    my_loans = active_loans_for_farm(session, farm_id)
    if mine is None or not my_loans:
        return []
    my_farm = session.get(Farm, farm_id)
    if my_farm is None:
        return []
    a = _normalised(mine.vectors, mine.dim)
    pledged_farms = select(Flock.farm_id).join(Loan, Loan.flock_id == Flock.id).where(
        Loan.status == "active", Flock.closed_at.is_(None), Flock.farm_id != farm_id)
    others = session.scalars(select(FarmRegistry).where(
        FarmRegistry.farm_id.in_(pledged_farms), FarmRegistry.embedder == mine.embedder,
        FarmRegistry.dim == mine.dim)).all()
    out: list[Alert] = []
    my_loan_ids = {loan.id for loan in my_loans}
    for other in others:
        other_loans = [ln for ln in active_loans_for_farm(session, other.farm_id) if ln.id not in my_loan_ids]
        if not other_loans:
            continue
        b = _normalised(other.vectors, other.dim)
        matches = mutual_matches(a, b, settings.double_pledge_cosine)
        frac = max(matches / max(len(a), 1), matches / max(len(b), 1))
        if frac < settings.double_pledge_fraction:
            continue
        other_farm = session.get(Farm, other.farm_id)
        if other_farm is None:
            continue
        pair = ":".join(sorted([farm_id, other.farm_id]))
        for farm, registry, loans, peer, peer_registry in (
            (my_farm, mine, my_loans, other_farm, other),
            (other_farm, other, other_loans, my_farm, mine),
        ):
            for loan in loans:
                same_org = peer.org_id == loan.org_id
                peer_name = f"farm {peer.id}" if same_org else "a farm pledged to another lender"
                rids = [registry.report_id] + ([peer_registry.report_id] if same_org else [])
                alert = raise_alert(
                    session, org_id=loan.org_id, kind="double_pledge", severity="critical", farm_id=farm.id,
                    loan_id=loan.id, report_ids=rids, dedupe_key=f"double_pledge:{pair}:{loan.id}",
                    message=f"{matches} birds of farm {farm.id} ({frac:.0%} of the smaller registry) also "
                            f"appear under {peer_name}, pledged to another loan",
                    details={"matches": matches, "fraction": frac,
                             "peer_farm_id": peer.id if same_org else None,
                             "birds_here": len(a) if farm is my_farm else len(b),
                             "cosine_threshold": settings.double_pledge_cosine})
                if alert is not None:
                    out.append(alert)
    return out


# --- periodic rules ---------------------------------------------------------------------------

def silent_device_alerts(session: Session, settings: Settings, now: datetime | None = None) -> list[Alert]:
    now = now or utcnow()
    cutoff = now - timedelta(hours=settings.silent_hours)
    rows = session.execute(
        select(Device, Farm).join(Farm, Farm.id == Device.farm_id).where(or_(
            Device.last_report_at < cutoff,
            and_(Device.last_report_at.is_(None), Device.created_at < cutoff)))).all()
    out: list[Alert] = []
    for device, farm in rows:
        last = device.last_report_at
        a = raise_alert(session, org_id=farm.org_id, kind="device_silent", severity="warning", farm_id=farm.id,
                        device_id=device.id, dedupe_key=f"silent:{device.id}",
                        report_ids=[],
                        message=f"device {device.id} has sent nothing for more than {settings.silent_hours:g} h "
                                f"(last report {last.isoformat() if last else 'never'})",
                        details={"last_report_at": last.isoformat() if last else None})
        if a is not None:
            out.append(a)
    return out
