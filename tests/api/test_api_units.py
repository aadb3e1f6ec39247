"""Pure helpers: growth curve, mutual nearest neighbours, cursors, token buckets, range checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from api.errors import Unprocessable
from api.repositories.common import decode_cursor, encode_cursor
from api.services.alerts import mutual_matches
from api.services.flocks import expected_weight_g, resolve_range, worst_health
from api.services.ingest import TokenBuckets


@pytest.mark.parametrize(("age", "low", "high"), [(0, 30, 80), (21, 850, 1050), (42, 2700, 3100)])
def test_growth_curve_tracks_broiler_table(age: float, low: float, high: float) -> None:
    assert low <= expected_weight_g(age) <= high


def test_mutual_matches_counts_only_mutual_pairs_above_threshold() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 32))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = a[::-1].copy()
    assert mutual_matches(a, b, 0.99) == 20
    assert mutual_matches(a, b[:5], 0.99) == 5
    other = rng.normal(size=(20, 32))
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    assert mutual_matches(a, other, 0.9) == 0
    assert mutual_matches(a, np.zeros((0, 32)), 0.5) == 0


@pytest.mark.parametrize("value", ["farm_00001", 12345, "x:y:z"])
def test_cursor_round_trip(value) -> None:  # type: ignore[no-untyped-def]
    assert decode_cursor(encode_cursor(value), type(value)) == value


@pytest.mark.parametrize("bad", ["!!", "aGVsbG8", encode_cursor(5)])
def test_cursor_rejects_foreign_values(bad: str) -> None:
    with pytest.raises(Unprocessable, match="cursor"):
        decode_cursor(bad, str)


def test_token_bucket_allows_burst_then_limits() -> None:
    tb = TokenBuckets(rate=0.001, burst=2)
    assert [tb.take("d") == 0.0 for _ in range(3)] == [True, True, False]
    assert tb.take("other") == 0.0


@pytest.mark.parametrize(("health", "worst"), [([], "ok"), (["ok", "lethargic"], "lethargic"),
                                               (["suspected_sick", "suspected_dead"], "suspected_dead")])
def test_worst_health(health: list[str], worst: str) -> None:
    assert worst_health(health) == worst


def test_resolve_range_defaults_and_refusals() -> None:
    now = datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert resolve_range(None, None, "hour", now) == (now - timedelta(days=7), now)
    assert resolve_range(None, None, "day", now)[0] == now - timedelta(days=90)
    for args in [(now, now - timedelta(hours=1), "hour"), (None, None, "week"),
                 (now - timedelta(days=400), now, "hour"), (datetime(2026, 1, 1), None, "day"),
                 (None, datetime(1, 1, 2, tzinfo=timezone.utc), "day")]:
        with pytest.raises(Unprocessable):
            resolve_range(args[0], args[1], args[2], now)
