"""Alert rules. Each rule raises at most one open alert per subject (dedupe_key); an acknowledged
alert lets the same rule fire again. Alerts about a standing condition (LTV above its limit, a silent
device) are marked `resolved` when the condition clears, so a lender's open list shows what is wrong
now; events (a death, a broken chain, replayed footage) stay open until someone acknowledges them."""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.orm import Session

from api.db.models import Alert, Device, Farm, FarmRegistry, Fingerprint, Flock, Loan, Report
from api.repositories.common import driver_sql, utcnow
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


def resolve_alerts(session: Session, *, org_id: str, dedupe_key: str, reason: str,
                   report_ids: Iterable[int] = ()) -> int:
    """Mark the open alert of (org, dedupe_key), if any, resolved: its condition no longer holds."""
    rows = session.scalars(select(Alert).where(
        Alert.org_id == org_id, Alert.dedupe_key == dedupe_key, Alert.status == "open")).all()
    for alert in rows:
        alert.status = "resolved"
        alert.details = {**(alert.details or {}), "resolved_at": utcnow().isoformat(), "resolved_because": reason,
                         "resolved_by_report_ids": sorted({int(r) for r in report_ids})[:50]}
    return len(rows)


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


def headcount_alerts(session: Session, settings: Settings, farm: Farm, device_id: str, report: Any,
                     prev: tuple[int, int] | None) -> list[Alert]:
    """report: the stored report's id, headcount, headcount_high, stale and dead_count (a Report or ingest's
    StoredReport); prev = (report id, headcount) of the device's previous non-stale flock report.

    A drop is alerted only when the new report's own uncertainty band excludes the previous count
    (headcount_high < previous): with weak identities the count of one window swings within a wide
    band, and a lender woken by a critical alert for a swing the edge itself calls uncertain would
    soon stop reading them."""
    out: list[Alert] = []
    if report.stale or report.headcount is None:
        return out
    if prev is not None and prev[1] > 0:
        lost = prev[1] - report.headcount
        drop = lost / prev[1]
        high = report.headcount_high
        # Both: in a small flock one bird is already more than the relative threshold.
        if (drop > settings.headcount_drop_fraction and lost >= settings.headcount_drop_min_birds
                and (high is None or high < prev[1])):
            a = raise_alert(session, org_id=farm.org_id, kind="headcount_drop", severity="critical",
                            farm_id=farm.id, device_id=device_id, report_ids=[prev[0], report.id],
                            dedupe_key=f"headcount_drop:{device_id}",
                            message=f"headcount fell {drop:.1%} ({prev[1]} -> {report.headcount}"
                                    + (f", at most {high}" if high is not None else "")
                                    + f") on device {device_id}, above the {settings.headcount_drop_fraction:.1%} "
                                    f"threshold (and >= {settings.headcount_drop_min_birds} birds)",
                            details={"previous": prev[1], "current": report.headcount, "current_high": high,
                                     "drop_fraction": drop, "lost": lost})
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


# XOR masks giving a 16-bit chunk and every value within 0 or 1 flipped bits of it.
_FLIPS = {0: (0,), 1: (0, *(1 << b for b in range(16)))}


def fingerprint_rows(report_id: int, device_id: str, farm_id: str, fingerprints: Iterable[Any]) -> list[dict]:
    rows = []
    for f in fingerprints:
        c = _chunks(f.phash)
        rows.append({"report_id": report_id, "device_id": device_id, "farm_id": farm_id,
                     "camera_id": f.camera_id, "at": f.at, "phash": f.phash,
                     "c0": c[0], "c1": c[1], "c2": c[2], "c3": c[3]})
    return rows


@functools.lru_cache(maxsize=8)
def _at_processors(dialect: Any) -> tuple[Any, Any]:
    """Bind and result converters of `fingerprints.at` for the raw candidate query."""
    col_type = Fingerprint.__table__.c.at.type  # type: ignore[attr-defined]
    impl = col_type.dialect_impl(dialect)
    return impl.bind_processor(dialect), impl.result_processor(dialect, None)


_IN_STEP = 16


@functools.lru_cache(maxsize=256)
def _candidates_sql(mark: str, sizes: tuple[int, ...]) -> str:
    ins = " OR ".join(f"c{i} IN ({','.join([mark] * n)})" for i, n in enumerate(sizes))
    return (f"SELECT phash, report_id, at FROM {Fingerprint.__tablename__} WHERE ({ins}) "
            f"AND at < {mark} AND report_id != {mark} LIMIT 20000")


def _replay_candidates(conn: Connection, chunk_values: list[list[int]], cutoff: datetime,
                       report_id: int) -> list[tuple[str, int, datetime]]:
    """Earlier frames sharing a (near) chunk with this report's, older than cutoff, as driver SQL
    (SELECT phash, report_id, at ... WHERE c0 IN (..) OR .. c3 IN (..)): SQLAlchemy's expansion of
    ~270 expanding IN values cost more than the rest of ingest together. Each list is padded to a
    multiple of 16 with -1 (chunks are 0..65535, so it matches nothing): a few statement shapes,
    which the driver's statement cache keeps prepared (a report's 4 frames at 1 flipped bit give 68
    values a list: padding to 64 made that 128, and binding the padding cost ~3% of ingest)."""
    dialect = conn.dialect
    sizes = tuple(max(_IN_STEP, -(-len(vals) // _IN_STEP) * _IN_STEP) for vals in chunk_values)
    params: list[Any] = []
    for vals, n in zip(chunk_values, sizes, strict=True):
        params += vals  # Python ints already (`_chunks`)
        params += [-1] * (n - len(vals))
    bind, result = _at_processors(dialect)
    params += [bind(cutoff) if bind else cutoff, int(report_id)]
    sql = _candidates_sql("?" if dialect.paramstyle == "qmark" else "%s", sizes)
    rows = driver_sql(conn, sql, tuple(params)).all()
    if result is None:
        return [(ph, int(rid), at) for ph, rid, at in rows]
    return [(ph, int(rid), result(at)) for ph, rid, at in rows]


def _informative(phash: str) -> bool:
    """A median-thresholded DCT hash sets about half its bits; a near-constant one (a blank or
    frozen-still residual) would match every other blank frame, so it proves nothing."""
    return 16 <= int(phash, 16).bit_count() <= 48


MAX_MATCHES_PER_FRAME = 32


def replay_run(new: list[tuple[float, int]], old: list[tuple[float, int]], *, radius: int, min_age_s: float,
               tolerance_s: float) -> list[tuple[int, int]]:
    """The largest set of (new index, old index) frame matches that replaying one stretch of earlier
    footage explains, or [] when none.

    new, old: (epoch seconds, 64-bit hash) of this report's frames and of earlier candidate frames.
    A pair matches within `radius` bits when the old frame is >= min_age_s older. A replay shifts
    every frame of the stretch by one time offset: the run is a set of matches whose offsets agree
    within tolerance_s (so they are in order too), one-to-one, and unambiguous: no frame of the run
    also matches another frame of the same stretch. A still scene looks like itself all day (every
    frame near every other), so it never makes a run; honest look-alikes scatter over offsets."""
    pairs = [(tn - to, i, j) for i, (tn, vn) in enumerate(new) for j, (to, vo) in enumerate(old)
             if to <= tn - min_age_s and (vn ^ vo).bit_count() <= radius]
    # A frame near dozens of earlier frames is not distinctive (a still scene, or an old edge's
    # whole-frame hash): drop it, which also bounds the quadratic search below.
    per_new: dict[int, int] = {}
    for _, i, _ in pairs:
        per_new[i] = per_new.get(i, 0) + 1
    pairs = sorted(p for p in pairs if per_new[p[1]] <= MAX_MATCHES_PER_FRAME)
    best: list[tuple[int, int]] = []
    lo = 0
    for hi in range(len(pairs)):
        while pairs[hi][0] - pairs[lo][0] > tolerance_s:
            lo += 1
        cluster = pairs[lo:hi + 1]
        if len(cluster) <= len(best):
            continue
        news = {i for _, i, _ in cluster}
        olds = {j for _, _, j in cluster}
        t0 = min(old[j][0] for j in olds) - tolerance_s
        t1 = max(old[j][0] for j in olds) + tolerance_s
        new_t0 = min(new[i][0] for i in news) - tolerance_s
        new_t1 = max(new[i][0] for i in news) + tolerance_s
        # Count every match inside the stretch (any offset), not only the cluster's.
        n_new: dict[int, int] = {}
        n_old: dict[int, int] = {}
        for _, i, j in pairs:
            if t0 <= old[j][0] <= t1 and new_t0 <= new[i][0] <= new_t1:
                n_new[i] = n_new.get(i, 0) + 1
                n_old[j] = n_old.get(j, 0) + 1
        run = [(i, j) for _, i, j in cluster if n_new[i] == 1 and n_old[j] == 1]
        if len(run) > len(best):
            best = run
    return best


def replay_alerts(session: Session, settings: Settings, farm: Farm, device_id: str, report_id: int,
                  fingerprints: list[Any], conn: Connection | None = None) -> list[Alert]:
    """This report replays earlier footage: at least replay_min_matches of its frames (and
    replay_fraction of them) each repeat, within replay_hamming bits, exactly one frame of one
    stretch of earlier footage (>= replay_min_age_s older), all shifted by one time offset
    (see `replay_run`).

    Honest frames of a fixed camera can look alike one by one; only replayed footage lines up frame
    for frame at one time shift. Hashes come from the edge's background-removed `MotionFingerprint`,
    so the barn itself does not make frames alike. conn: the session's connection, when the caller
    holds it already."""
    fps = [f for f in fingerprints if _informative(f.phash)]
    if len(fps) < settings.replay_min_matches:
        return []
    radius = settings.replay_hamming
    chunks = [_chunks(f.phash) for f in fps]
    oldest_cutoff = max(f.at for f in fps) - timedelta(seconds=settings.replay_min_age_s)
    # Pigeonhole over the four indexed 16-bit chunks: within 3 bits one chunk is equal, within 7
    # one chunk is at most 1 bit off; so one indexed query finds every candidate.
    masks = _FLIPS[0 if radius <= 3 else 1]
    values = [sorted({c[i] ^ m for c in chunks for m in masks}) for i in range(4)]
    found = _replay_candidates(conn or session.connection(), values, oldest_cutoff, report_id)
    cands = [(ph, rid, at) for ph, rid, at in found if _informative(ph)]
    if not cands:
        return []
    run = replay_run([(f.at.timestamp(), int(f.phash, 16)) for f in fps],
                     [(at.timestamp(), int(ph, 16)) for ph, _, at in cands],
                     radius=radius, min_age_s=settings.replay_min_age_s,
                     tolerance_s=settings.replay_offset_tolerance_s)
    matched = len(run)
    if matched < settings.replay_min_matches or matched / len(fps) < settings.replay_fraction:
        return []
    sources = {cands[j][1] for _, j in run}
    # Other tenants' report ids must not leak into this organisation's alert.
    own = set(session.scalars(select(Report.id).join(Farm, Farm.id == Report.farm_id)
                              .where(Report.id.in_(sorted(sources)), Farm.org_id == farm.org_id)))
    a = raise_alert(session, org_id=farm.org_id, kind="replayed_footage", severity="critical",
                    farm_id=farm.id, device_id=device_id, report_ids=[report_id, *sorted(own)[:20]],
                    dedupe_key=f"replay:{device_id}",
                    message=f"{matched} of {len(fps)} frames in report {report_id} repeat, in order and at one "
                            f"time shift, earlier footage (Hamming distance <= {radius})",
                    details={"matched_frames": matched, "frames": len(fps),
                             "source_report_ids": sorted(own)[:20],
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
    # Devices that have spoken again since their alert: the silence is over.
    back = session.execute(
        select(Alert.org_id, Alert.dedupe_key, Device.last_report_at).join(Device, Device.id == Alert.device_id)
        .where(Alert.kind == "device_silent", Alert.status == "open", Device.last_report_at >= cutoff)).all()
    for org_id, key, last in back:
        when = last.isoformat() if last is not None else "?"
        resolve_alerts(session, org_id=org_id, dedupe_key=key, reason=f"device reported again at {when}")
    return out
