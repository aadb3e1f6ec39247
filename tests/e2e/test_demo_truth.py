"""truth_check: the demo's hourly lender series against the synthetic truth, on hand-made series."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from flockid.demo_truth import truth_check

H = 3600.0
HOUR0 = datetime(2026, 12, 3, tzinfo=timezone.utc).timestamp()  # the series below starts that day at 00:00


def _pt(hour: int, headcount: float | None, low: int | None = None, high: int | None = None,
        mortality: int = 0) -> dict[str, Any]:
    return {"t": f"2026-12-03T{hour:02d}:00:00Z", "headcount": headcount, "headcount_low": low,
            "headcount_high": high, "mortality": mortality}


@pytest.mark.parametrize(
    ("points", "deaths_h", "expected"),
    [
        # 10 birds, one dies at 02:30 and its carcass stays: counts 11, 10, 9 against 10 on the farm
        ([_pt(1, 11, 9, 12), _pt(2, 10, 10, 10), _pt(6, 9, 8, 9, mortality=1)], [2.5],
         {"buckets_with_headcount": 3, "headcount_mean_error": 0.0, "headcount_mean_abs_error": 0.67,
          "band_holds_truth": 2, "deaths_reported": 1, "deaths_reported_before_any_death": 0,
          "death_to_lender_h_at_most": [4.5]}),
        # a false death reported before the real one does not count as telling it
        ([_pt(1, 10, 9, 11, mortality=1), _pt(3, 10, 9, 11), _pt(8, 9, 8, 10, mortality=1)], [2.5],
         {"deaths_reported": 2, "deaths_reported_before_any_death": 1, "death_to_lender_h_at_most": [6.5]}),
        # never told; a bucket without a headcount still carries mortality
        ([_pt(1, 10, 10, 10), _pt(2, None)], [1.5],
         {"buckets_with_headcount": 1, "headcount_mean_error": 0.0, "deaths_reported": 0,
          "death_to_lender_h_at_most": [None]}),
        # two deaths, told together in one bucket
        ([_pt(0, 10, 10, 10), _pt(5, 10, 9, 10, mortality=2)], [1.0, 3.0],
         {"headcount_mean_error": 0.0, "band_holds_truth": 2, "death_to_lender_h_at_most": [5.0, 3.0]}),
        # no deaths at all: everything reported is false
        ([_pt(0, 10, 9, 11, mortality=1)], [],
         {"deaths_true": 0, "deaths_reported": 1, "deaths_reported_before_any_death": 1,
          "death_to_lender_h_at_most": []}),
        ([], [], {"buckets_with_headcount": 0, "headcount_mean_error": None, "band_holds_truth": 0}),
    ],
)
def test_truth_check(points: list[dict[str, Any]], deaths_h: list[float], expected: dict[str, Any]) -> None:
    got = truth_check(points, placed=10, deaths_ts=[HOUR0 + h * H for h in deaths_h])
    assert {k: got[k] for k in expected} == expected


def test_birds_taken_off_the_farm_leave_the_truth() -> None:
    got = truth_check([_pt(1, 10, 10, 10), _pt(4, 9, 9, 9)], placed=10, deaths_ts=[HOUR0 + 2 * H],
                      removed_ts=[HOUR0 + 3 * H])  # the carcass is taken away at 03:00
    assert got["headcount_mean_abs_error"] == 0.0 and got["band_holds_truth"] == 2


def test_truth_check_refuses_a_negative_flock() -> None:
    with pytest.raises(ValueError, match="placed must be >= 0"):
        truth_check([], placed=-1, deaths_ts=[])
