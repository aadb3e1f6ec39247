"""Replay matching (ordered run against one earlier report), the headcount-drop bird minimum and
distinct-bird mortality in the time series."""

from __future__ import annotations

from datetime import datetime, timedelta

from api_testkit import T0, auth, bird, iso, make_tenant, post_report

from api.services.alerts import replay_run


def _h(i: int) -> str:
    # Distinct, half-set 64-bit hashes (a multiplicative hash of i, popcount near 32).
    v = (0x9E37_79B9_7F4A_7C15 * (i + 1)) & (2**64 - 1)
    return f"{v:016x}"


def test_replay_run_needs_one_offset_and_unique_matches() -> None:
    day, h = 86400.0, 3600.0
    old = [(0.0, 0xAAAA_0000_FFFF_0F0F), (2 * h, 0x1234_5678_9ABC_DEF0), (4 * h, 0x0F0F_F0F0_3C3C_C3C3)]
    kw = {"radius": 6, "min_age_s": h, "tolerance_s": 600.0}
    replay = [(t + day + 30, v ^ 0b1011) for t, v in old]
    assert sorted(replay_run(replay, old, **kw)) == [(0, 0), (1, 1), (2, 2)]
    # The same frames at scattered time shifts are look-alikes, not one replayed stretch.
    scattered = [(day, old[0][1]), (day + 5 * h, old[1][1]), (day + 9 * h, old[2][1])]
    assert len(replay_run(scattered, old, **kw)) == 1
    # A still scene: every frame near every other -> ambiguous; only a lone edge pair survives.
    still = [(t, 0xAAAA_0000_FFFF_0F0F) for t, _ in old]
    assert len(replay_run([(t + day, v) for t, v in still], still, **kw)) <= 1
    # A clip replayed a second time still matches each earlier copy one-to-one.
    assert len(replay_run([(t + 2 * day, v) for t, v in old], old + replay, **kw)) == 3
    # A frame near dozens of earlier frames proves nothing (and must not make the search quadratic).
    many = [(float(t), 0x0F0F_F0F0_3C3C_C3C3) for t in range(0, 40 * 600, 600)]
    assert replay_run([(t + day, v) for t, v in many[:3]], many, **kw) == []
    # Too young to be a replay.
    assert replay_run([(t + 60, v) for t, v in old], old, **kw) == []


def _spaced(hashes: list[str], start: datetime) -> list[dict]:
    return [{"camera_id": "cam0", "at": iso(start + timedelta(minutes=90 * i)), "phash": h}
            for i, h in enumerate(hashes)]


def _flock(dev, t: datetime, fps: list[dict]) -> dict:  # type: ignore[no-untyped-def]
    """dev.flock with fingerprints at chosen instants (the kit spaces them one minute apart)."""
    env = dev.flock(t, advance=False)
    payload = {**env["payload"], "fingerprints": fps}
    return dev._seal(payload, True)  # type: ignore[no-any-return]


def _replay_kinds(c, key) -> list[dict]:  # type: ignore[no-untyped-def]
    return c.get("/v1/alerts", params={"kind": "replayed_footage"}, headers=auth(key)).json()["items"]


def test_still_scene_and_shuffled_lookalikes_do_not_alert(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    same = [_h(1)] * 3  # a frozen-still scene hashes alike all day
    for k in range(3):
        assert post_report(c, dev, dev.flock(T0 + timedelta(hours=6 * k), fingerprints=same)).status_code == 201
    # Earlier frames one by one (samples 90 min apart), but out of order with the earlier report.
    hs = [_h(10), _h(11), _h(12), _h(13)]
    post_report(c, dev, _flock(dev, T0 + timedelta(hours=26), _spaced(hs, T0 + timedelta(hours=20))))
    shuffled = [hs[3], hs[0], hs[2], hs[1]]
    post_report(c, dev, _flock(dev, T0 + timedelta(hours=32), _spaced(shuffled, T0 + timedelta(hours=26))))
    assert _replay_kinds(c, t.lender_key) == []
    # The same run in order a day later (3 bits flipped each): a replay.
    again = [f"{int(h, 16) ^ 0b10101:016x}" for h in hs]
    r = post_report(c, dev, _flock(dev, T0 + timedelta(hours=50), _spaced(again, T0 + timedelta(hours=44))))
    items = _replay_kinds(c, t.lender_key)
    assert len(items) == 1 and r.json()["report_id"] in items[0]["report_ids"]
    assert items[0]["details"]["matched_frames"] == 4


def test_headcount_drop_needs_min_birds(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    kinds = lambda: [a["kind"] for a in c.get("/v1/alerts", headers=auth(t.lender_key)).json()["items"]]  # noqa: E731
    post_report(c, dev, dev.flock(T0, headcount=16))
    post_report(c, dev, dev.flock(T0 + timedelta(hours=1), headcount=15))  # 6 % but one bird
    post_report(c, dev, dev.flock(T0 + timedelta(hours=2), headcount=14))
    assert "headcount_drop" not in kinds()
    post_report(c, dev, dev.flock(T0 + timedelta(hours=3), headcount=11))  # 3 birds, 21 %
    assert "headcount_drop" in kinds()


def test_headcount_drop_within_the_reports_own_band_is_not_alerted(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    kinds = lambda: [a["kind"] for a in c.get("/v1/alerts", headers=auth(t.lender_key)).json()["items"]]  # noqa: E731
    post_report(c, dev, dev.flock(T0, headcount=32, band=3))
    # 25 % lower, but the edge says this window holds 24 birds give or take 30: no evidence of a loss.
    post_report(c, dev, dev.flock(T0 + timedelta(hours=1), headcount=24, band=30))
    assert "headcount_drop" not in kinds()
    # The same drop with a band that excludes the previous count is a loss.
    post_report(c, dev, dev.flock(T0 + timedelta(hours=2), headcount=32, band=3))
    post_report(c, dev, dev.flock(T0 + timedelta(hours=3), headcount=24, band=3))
    alerts = c.get("/v1/alerts", params={"kind": "headcount_drop"}, headers=auth(t.lender_key)).json()["items"]
    assert len(alerts) == 1 and alerts[0]["details"]["current_high"] == 27
    assert "at most 27" in alerts[0]["message"]


def test_timeseries_mortality_counts_each_dead_bird_once(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    def flock(at):  # type: ignore[no-untyped-def]
        return [bird(i, at, health=["suspected_dead"] if i in dead else None) for i in range(1, 10)]

    # Bird 1 dies and stays in view in four reports of one day; bird 2 dies the next day.
    dead = {1}
    for h in range(4):
        at = T0 + timedelta(hours=1 + h)
        post_report(c, dev, dev.flock(at, birds=flock(at)))
    dead = {1, 2}
    for h in range(3):
        at = T0 + timedelta(days=1, hours=1 + h)
        post_report(c, dev, dev.flock(at, birds=flock(at)))
    r = c.get(f"/v1/flocks/{t.flock_id}/timeseries", headers=auth(t.lender_key),
              params={"bucket": "day", "from": (T0 - timedelta(days=1)).isoformat(),
                      "to": (T0 + timedelta(days=3)).isoformat()})
    assert r.status_code == 200, r.text
    assert [p["mortality"] for p in r.json()["points"]] == [1, 1]
