"""The demo's lender figures checked against the synthetic farm's truth.

The demo knows what a real farm never tells: how many birds live at every instant and when each death
happened. `truth_check` compares the lender's hourly series (`GET /v1/flocks/{id}/timeseries`,
bucket=hour) with that truth, so the figures a session quotes come from one command, not from a script
reading the database. The verified headcount counts the registered birds seen in a window, a carcass
in view among them (its value is cut by the health haircut, not by the count), so the truth of a bucket
is the birds on the farm at its start, dead or alive, until one is taken away.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

HOUR_S = 3600.0


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def truth_check(points: Sequence[dict[str, Any]], *, placed: int, deaths_ts: Sequence[float],
                removed_ts: Sequence[float] = ()) -> dict[str, Any]:
    """Headcount error and mortality of an hourly series against `placed` birds, of which one dies at each
    of `deaths_ts` and one leaves the farm (sold, stolen, a carcass taken away) at each of `removed_ts`
    (epoch seconds).

    Returns: buckets with a headcount; mean and mean absolute headcount error (reported - on the farm); how
    many buckets' bands hold the truth; deaths true and reported (the sum of the series' new deaths);
    and per true death, in order, the hours until the end of the hour whose bucket first brings the
    reported deaths to that many (an upper bound on death -> lender at the series' hourly resolution;
    None while not reported). Deaths reported in buckets that end before the first true death are false
    ones, counted apart: a false alarm early would otherwise pass for a true death told at once."""
    if placed < 0:
        raise ValueError(f"truth_check: placed must be >= 0, got {placed}")
    deaths = sorted(float(t) for t in deaths_ts)
    errors: list[float] = []
    held = 0
    reported = 0
    early = 0
    told_h: list[float | None] = [None] * len(deaths)
    for p in sorted(points, key=lambda p: _ts(p["t"])):
        t = _ts(p["t"])
        reported += int(p.get("mortality") or 0)
        if not deaths or t + HOUR_S <= deaths[0]:
            early = reported
        for k, died in enumerate(deaths):
            if told_h[k] is None and reported - early >= k + 1 and t + HOUR_S > died:
                told_h[k] = round((t + HOUR_S - died) / HOUR_S, 1)
        if p.get("headcount") is None:
            continue
        present = placed - sum(1 for r in removed_ts if r <= t)
        errors.append(float(p["headcount"]) - present)
        low, high = p.get("headcount_low"), p.get("headcount_high")
        held += int(low is not None and high is not None and low <= present <= high)
    n = len(errors)
    return {
        "buckets_with_headcount": n,
        "headcount_mean_error": round(sum(errors) / n, 2) if n else None,
        "headcount_mean_abs_error": round(sum(abs(e) for e in errors) / n, 2) if n else None,
        "band_holds_truth": held,
        "deaths_true": len(deaths),
        "deaths_reported": reported,
        "deaths_reported_before_any_death": early,
        "death_to_lender_h_at_most": told_h,
    }
