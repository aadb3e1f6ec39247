"""Collateral value of a loan's flock.

value = sum over live birds of weight_kg x price_per_kg x health haircut. Reports list the birds seen
in their window, which can be fewer than the verified headcount, so the per-bird mean is scaled by
the verified headcount (equal to the plain sum when every counted bird has a summary). The band uses
the headcount band and each bird's weight band; LTV = outstanding / value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Alert, Farm, Flock, Loan, MarketPrice
from api.services import flocks as flock_svc
from api.services.alerts import raise_alert, resolve_alerts
from api.settings import Settings


def resolve_price(session: Session, farm: Farm, lender_org: str) -> dict[str, Any] | None:
    if farm.price_source == "market" and farm.market:
        mp = session.scalar(select(MarketPrice).where(MarketPrice.org_id == lender_org,
                                                      MarketPrice.market == farm.market))
        if mp is not None:
            return {"price_per_kg": mp.price_per_kg, "currency": mp.currency, "source": f"market:{mp.market}",
                    "set_at": mp.set_at}
        return None
    if farm.price_per_kg is not None:
        return {"price_per_kg": farm.price_per_kg, "currency": farm.currency, "source": "farm", "set_at": None}
    return None


def value_loan(session: Session, settings: Settings, loan: Loan, at: datetime | None = None) -> dict[str, Any]:
    flock = session.get(Flock, loan.flock_id)
    if flock is None:
        raise ValueError(f"loan {loan.id}: flock {loan.flock_id} missing")
    farm = session.get(Farm, flock.farm_id)
    if farm is None:
        raise ValueError(f"flock {flock.id}: farm {flock.farm_id} missing")
    hc = flock_svc.farm_headcount(session, farm.id, flock, at=at)
    price = resolve_price(session, farm, loan.org_id)
    warnings: list[str] = []
    result: dict[str, Any] = {
        "loan_id": loan.id, "flock_id": flock.id, "farm_id": farm.id, "currency": loan.currency,
        "outstanding": loan.outstanding, "ltv_limit": loan.ltv_limit,
        "headcount": hc.value, "headcount_low": hc.low, "headcount_high": hc.high,
        "headcount_stale": hc.stale, "stale_since": hc.stale_since, "as_of": hc.as_of,
        "price_per_kg": price["price_per_kg"] if price else None,
        "price_source": price["source"] if price else None,
        "value": None, "value_low": None, "value_high": None, "ltv": None, "ltv_high": None,
        "ltv_low": None, "above_limit": None, "mean_weight_g": None, "live_birds": 0,
        "birds_by_health": {}, "report_ids": sorted(set(hc.report_ids + hc.stale_report_ids)),
        "warnings": warnings,
    }
    if price is None:
        warnings.append("no price per kg set for this farm (or its market)")
    elif price["currency"] != loan.currency:
        warnings.append(f"price currency {price['currency']} differs from loan currency {loan.currency}")
    if hc.value is None:
        warnings.append("no flock report received for this flock yet")
    if hc.stale:
        warnings.append("headcount is stale: a camera reported tampering or darkness; last good value used")
    if price is None or hc.value is None:
        return result
    birds = flock_svc.live_birds(session, farm.id, hc.as_of, settings.live_bird_days)
    by_health: dict[str, int] = {}
    vals: list[tuple[float, float, float]] = []
    bird_reports: set[int] = set()
    fallback_w = hc.mean_weight_g
    for b in birds:
        by_health[b.health] = by_health.get(b.health, 0) + 1
        w = b.weight_g if b.weight_g is not None else fallback_w
        if w is None:
            continue
        wl = b.weight_g_low if b.weight_g_low is not None else w
        wh = b.weight_g_high if b.weight_g_high is not None else w
        cut = settings.health_haircuts.get(b.health, 1.0)
        vals.append((wl * cut, w * cut, wh * cut))
        bird_reports.add(b.report_id)
    p = price["price_per_kg"] / 1000.0
    if vals:
        n = len(vals)
        mean_l, mean_v, mean_h = (sum(v[i] for v in vals) / n for i in range(3))
        result["mean_weight_g"] = sum(v[1] for v in vals) / n
    elif fallback_w is not None:
        mean_l = mean_v = mean_h = fallback_w
        result["mean_weight_g"] = fallback_w
        warnings.append("no per-bird weights: used the reports' mean weight without health haircuts")
    else:
        warnings.append("no weight estimate in any report")
        return result
    value = mean_v * p * hc.value
    low = mean_l * p * (hc.low or 0)
    high = mean_h * p * (hc.high or 0)
    result.update({
        "value": round(value, 2), "value_low": round(low, 2), "value_high": round(high, 2),
        "live_birds": len(birds), "birds_by_health": by_health,
        "report_ids": sorted(set(result["report_ids"]) | set(sorted(bird_reports)[-50:])),
    })
    if value > 0:
        result["ltv"] = round(loan.outstanding / value, 4)
        result["ltv_high"] = round(loan.outstanding / low, 4) if low > 0 else None
        result["ltv_low"] = round(loan.outstanding / high, 4) if high > 0 else None
        result["above_limit"] = result["ltv"] > loan.ltv_limit
    return result


def valuation_history(session: Session, settings: Settings, loan: Loan, start: datetime, end: datetime,
                      bucket: str) -> list[dict[str, Any]]:
    """Value per bucket from the time series (headcount x mean weight x today's price). Per-bird
    haircuts are not kept historically, so history shows the unhaircut value next to LTV."""
    flock = session.get(Flock, loan.flock_id)
    farm = session.get(Farm, flock.farm_id) if flock else None
    if flock is None or farm is None:
        return []
    price = resolve_price(session, farm, loan.org_id)
    series = flock_svc.timeseries(session, farm.id, start, end, bucket, flock.placed_at)
    out = []
    for point in series:
        value = None
        if price and point["headcount"] is not None and point["mean_weight_g"] is not None:
            value = round(point["headcount"] * point["mean_weight_g"] / 1000.0 * price["price_per_kg"], 2)
        out.append({"t": point["t"], "value": value, "headcount": point["headcount"],
                    "mean_weight_g": point["mean_weight_g"], "stale": point["stale"],
                    "ltv": round(loan.outstanding / value, 4) if value else None,
                    "report_ids": point["report_ids"]})
    return out


def ltv_alerts(session: Session, settings: Settings, farm_id: str, loans: list[Loan]) -> list[Alert]:
    out: list[Alert] = []
    for loan in loans:
        v = value_loan(session, settings, loan)
        if v["ltv"] is not None and v["ltv"] > loan.ltv_limit:
            a = raise_alert(session, org_id=loan.org_id, kind="ltv_above_limit", severity="critical",
                            farm_id=farm_id, loan_id=loan.id, report_ids=v["report_ids"][:50],
                            dedupe_key=f"ltv:{loan.id}",
                            message=f"loan {loan.id}: LTV {v['ltv']:.2f} above limit {loan.ltv_limit:.2f} "
                                    f"(outstanding {loan.outstanding:,.2f} / value {v['value']:,.2f})",
                            details={"ltv": v["ltv"], "ltv_limit": loan.ltv_limit, "value": v["value"]})
            if a is not None:
                out.append(a)
        elif v["ltv"] is not None:
            resolve_alerts(session, org_id=loan.org_id, dedupe_key=f"ltv:{loan.id}", report_ids=v["report_ids"],
                           reason=f"LTV {v['ltv']:.2f} back within limit {loan.ltv_limit:.2f}")
    return out


