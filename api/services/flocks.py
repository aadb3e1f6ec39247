"""Flock figures: current verified headcount (with band and staleness), time series, birds.

Every figure carries the ids of the reports it was computed from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session

from api.db.models import Bird, Device, Flock, Report
from api.errors import Unprocessable

FLOCK = "flock_report"
# Gompertz fit to a typical broiler growth table (42 g at placement, ~2.9 kg at day 42).
_GOMPERTZ = (5921.0, 0.04473, 34.6)
MAX_BUCKETS = 5000


def expected_weight_g(age_days: float) -> float:
    w_max, k, t_inflection = _GOMPERTZ
    return w_max * math.exp(-math.exp(-k * (age_days - t_inflection)))


@dataclass
class HeadcountView:
    value: int | None = None
    low: int | None = None
    high: int | None = None
    stale: bool = False
    stale_since: datetime | None = None
    as_of: datetime | None = None
    mean_weight_g: float | None = None
    devices: int = 0
    report_ids: list[int] = field(default_factory=list)
    stale_report_ids: list[int] = field(default_factory=list)


def _period(flock: Flock | None) -> tuple[datetime | None, datetime | None]:
    return (flock.placed_at, flock.closed_at) if flock is not None else (None, None)


def farm_headcount(session: Session, farm_id: str, flock: Flock | None = None,
                   at: datetime | None = None) -> HeadcountView:
    """Sum over the farm's devices of each device's latest non-stale flock report.

    A device whose latest report is stale (camera covered, dark...) contributes its last good value,
    and the result says stale=True with stale_since, so nobody mistakes it for a live count."""
    start, end = _period(flock)
    if at is not None:
        end = at if end is None else min(end, at)
    view = HeadcountView()
    weights: list[tuple[float, int]] = []
    device_ids = session.scalars(select(Device.id).where(Device.farm_id == farm_id).order_by(Device.id)).all()
    for device_id in device_ids:
        base = select(Report.id, Report.window_end, Report.headcount, Report.headcount_low,
                      Report.headcount_high, Report.stale, Report.mean_weight_g).where(
            Report.device_id == device_id, Report.kind == FLOCK)
        if start is not None:
            base = base.where(Report.window_end >= start)
        if end is not None:
            base = base.where(Report.window_end <= end)
        latest = session.execute(base.order_by(Report.seq.desc()).limit(1)).first()
        if latest is None:
            continue
        good: Any = latest
        if latest.stale:
            view.stale = True
            view.stale_report_ids.append(latest.id)
            stale_start = session.execute(
                base.where(Report.stale.is_(False)).order_by(Report.seq.desc()).limit(1)).first()
            good = stale_start
            since = latest.window_end
            # stale_since: the first stale report after the last good one.
            first_stale = session.execute(
                base.where(Report.stale.is_(True), Report.window_end > (good.window_end if good else datetime(
                    1970, 1, 1, tzinfo=timezone.utc))).order_by(Report.seq.asc()).limit(1)).first()
            if first_stale is not None:
                since = first_stale.window_end
            view.stale_since = since if view.stale_since is None else min(view.stale_since, since)
        if good is None:
            continue
        view.devices += 1
        view.value = (view.value or 0) + int(good.headcount or 0)
        view.low = (view.low or 0) + int(good.headcount_low or 0)
        view.high = (view.high or 0) + int(good.headcount_high or 0)
        view.report_ids.append(good.id)
        view.as_of = good.window_end if view.as_of is None else max(view.as_of, good.window_end)
        if good.mean_weight_g is not None:
            weights.append((good.mean_weight_g, int(good.headcount or 0)))
    if weights:
        total = sum(n for _, n in weights)
        view.mean_weight_g = (sum(w * n for w, n in weights) / total) if total else weights[0][0]
    return view


def resolve_range(start: datetime | None, end: datetime | None, bucket: str,
                  now: datetime) -> tuple[datetime, datetime]:
    if bucket not in ("hour", "day"):
        raise Unprocessable(f"bucket must be 'hour' or 'day', got {bucket!r}", slug="invalid-bucket")
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise Unprocessable(f"`{name}` must carry a time zone (e.g. 2026-01-01T00:00:00Z)",
                                slug="invalid-range")
    end = end or now
    try:
        start = start or (end - (timedelta(days=7) if bucket == "hour" else timedelta(days=90)))
    except OverflowError:
        raise Unprocessable(f"`to` ({end.isoformat()}) is too early for a default range; give `from`",
                            slug="invalid-range") from None
    if start >= end:
        raise Unprocessable(f"`from` ({start.isoformat()}) must be before `to` ({end.isoformat()})",
                            slug="invalid-range")
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    if (end - start) / step > MAX_BUCKETS:
        raise Unprocessable(f"range holds more than {MAX_BUCKETS} {bucket} buckets; narrow it or use a "
                            f"larger bucket", slug="invalid-range")
    return start, end


def _bucket_key(session: Session, bucket: str) -> tuple[Any, Any]:
    """SQL expression for the bucket of window_end, and a parser of its value back to a datetime.

    Aggregating in the database keeps a 90-day series (2,160 hourly reports) well under a few ms."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite stores UTC as text 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        width, fmt = (13, "%Y-%m-%d %H") if bucket == "hour" else (10, "%Y-%m-%d")
        return func.substr(Report.window_end, 1, width), lambda v: datetime.strptime(v, fmt).replace(
            tzinfo=timezone.utc)
    return func.date_trunc(bucket, Report.window_end), lambda v: v.replace(tzinfo=timezone.utc)


def _ids_agg(session: Session) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.group_concat(Report.id)
    return func.string_agg(cast(Report.id, String), ",")


def timeseries(session: Session, farm_id: str, start: datetime, end: datetime, bucket: str,
               placed_at: datetime | None = None) -> list[dict[str, Any]]:
    """Buckets of headcount (summed over devices, each device averaged within the bucket),
    mortality (birds newly flagged suspected dead in the bucket), activity, huddling and mean weight,
    plus the expected weight from the growth curve when the flock's placement date is known."""
    key, parse = _bucket_key(session, bucket)
    good = Report.stale.is_(False)
    rows = session.execute(
        select(Report.device_id, key.label("b"),
               func.avg(case((good, Report.headcount))).label("hc"),
               func.min(case((good, Report.headcount_low))).label("lo"),
               func.max(case((good, Report.headcount_high))).label("hi"),
               func.sum(case((good, 0), else_=1)).label("stale"),
               func.max(Report.dead_count).label("dead"),
               func.sum(Report.activity).label("act"), func.count(Report.activity).label("n_act"),
               func.sum(Report.huddling).label("hud"), func.count(Report.huddling).label("n_hud"),
               func.sum(Report.mean_weight_g).label("w"), func.count(Report.mean_weight_g).label("n_w"),
               _ids_agg(session).label("ids"))
        .where(Report.farm_id == farm_id, Report.kind == FLOCK, Report.window_end >= start,
               Report.window_end < end)
        .group_by(Report.device_id, key)).all()
    # A report's dead_count is how many birds it sees flagged dead *now*: a carcass stays in view and
    # in every later report. Mortality of a bucket is therefore the rise of each device's running
    # maximum of that level, never a sum over reports (which counted one dead bird once per report).
    dead_before = dict(session.execute(
        select(Report.device_id, func.max(Report.dead_count))
        .where(Report.farm_id == farm_id, Report.kind == FLOCK, Report.window_end < start,
               *([Report.window_end >= placed_at] if placed_at is not None else []))
        .group_by(Report.device_id)).all())
    level: dict[str, int] = {d: int(v or 0) for d, v in dead_before.items()}
    new_dead: dict[tuple[str, datetime], int] = {}
    for r in sorted(rows, key=lambda r: parse(r.b)):
        now_dead = int(r.dead or 0)
        before = level.get(r.device_id, 0)
        new_dead[(r.device_id, parse(r.b))] = max(0, now_dead - before)
        level[r.device_id] = max(before, now_dead)
    buckets: dict[datetime, dict[str, Any]] = {}
    for r in rows:
        t = parse(r.b)
        b = buckets.setdefault(t, {"hc": None, "lo": None, "hi": None, "stale": False, "dead": 0,
                                   "act": [0.0, 0], "hud": [0.0, 0], "w": [0.0, 0], "ids": []})
        if r.hc is not None:
            b["hc"] = (b["hc"] or 0.0) + float(r.hc)
            b["lo"] = (b["lo"] or 0) + int(r.lo or 0)
            b["hi"] = (b["hi"] or 0) + int(r.hi or 0)
        b["stale"] = b["stale"] or bool(r.stale)
        b["dead"] += new_dead[(r.device_id, t)]
        for name, total, n in (("act", r.act, r.n_act), ("hud", r.hud, r.n_hud), ("w", r.w, r.n_w)):
            if n:
                b[name][0] += float(total)
                b[name][1] += int(n)
        b["ids"].extend(int(x) for x in str(r.ids).split(","))
    out = []
    for t in sorted(buckets):
        b = buckets[t]
        age = (t - placed_at).total_seconds() / 86400 if placed_at is not None else None
        out.append({
            "t": t,
            "headcount": round(b["hc"], 2) if b["hc"] is not None else None,
            "headcount_low": b["lo"],
            "headcount_high": b["hi"],
            "stale": b["stale"],
            "mortality": b["dead"],
            "activity": b["act"][0] / b["act"][1] if b["act"][1] else None,
            "huddling": b["hud"][0] / b["hud"][1] if b["hud"][1] else None,
            "mean_weight_g": b["w"][0] / b["w"][1] if b["w"][1] else None,
            "expected_weight_g": round(expected_weight_g(age), 1) if age is not None and age >= 0 else None,
            "report_ids": sorted(b["ids"]),
        })
    return out


def live_birds(session: Session, farm_id: str, as_of: datetime | None, live_days: float) -> list[Bird]:
    q = select(Bird).where(Bird.farm_id == farm_id)
    if as_of is not None:
        q = q.where(Bird.last_seen >= as_of - timedelta(days=live_days))
    return list(session.scalars(q))


HEALTH_ORDER = ("suspected_dead", "suspected_sick", "lethargic", "ok")


def worst_health(health: list[str]) -> str:
    for h in HEALTH_ORDER:
        if h in health:
            return h
    return "ok"
