"""Flock figures, valuation maths, portfolio, snapshots; each figure names its reports."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from api_testkit import JPEG, T0, auth, bird, iso, make_tenant, post_report


def test_valuation_band_haircuts_and_ltv_alert(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key, price=2.0, outstanding=100.0, ltv_limit=0.8)
    h = auth(t.lender_key)
    dev = t.device
    t1 = T0 + timedelta(days=1)
    birds = [bird(1, t1), bird(2, t1), bird(3, t1, health=["suspected_sick"]), bird(4, t1, health=["suspected_dead"])]
    r = post_report(c, dev, dev.flock(t1, headcount=4, band=1, birds=birds))
    assert r.status_code == 201
    rid = r.json()["report_id"]
    v = c.get(f"/v1/loans/{t.loan_id}/valuation", headers=h).json()
    # per-bird value in g: 2000, 2000, 1000 (sick 50%), 0 (dead) -> mean 1250 g x 2/kg x 4 birds
    assert v["value"] == pytest.approx(10.0)
    assert v["value_low"] == pytest.approx((1900 + 1900 + 950) / 4 / 1000 * 2 * 3, abs=0.01)
    assert v["value_high"] == pytest.approx((2100 + 2100 + 1050) / 4 / 1000 * 2 * 5, abs=0.01)
    assert v["ltv"] == pytest.approx(10.0) and v["above_limit"] is True
    assert v["birds_by_health"] == {"ok": 2, "suspected_sick": 1, "suspected_dead": 1}
    assert rid in v["report_ids"] and v["headcount"] == 4 and not v["headcount_stale"]
    alerts = c.get("/v1/alerts", params={"kind": "ltv_above_limit"}, headers=h).json()["items"]
    assert [a["loan_id"] for a in alerts] == [t.loan_id] and rid in alerts[0]["report_ids"]
    # the dead bird is also a mortality spike (1 of 4 > 1%)
    assert c.get("/v1/alerts", params={"kind": "mortality_spike"}, headers=h).json()["items"]
    # portfolio row for the dashboard
    rows = c.get("/v1/portfolio", headers=h).json()["items"]
    assert len(rows) == 1 and rows[0]["status"] == "breach" and rows[0]["farm_id"] == t.farm_id
    # market price set by the lender replaces the farm price
    r = c.patch(f"/v1/farms/{t.farm_id}", json={"price_source": "market", "market": "north"}, headers=h)
    assert r.status_code == 200
    v = c.get(f"/v1/loans/{t.loan_id}/valuation", headers=h).json()
    assert v["value"] is None and any("price" in w for w in v["warnings"])
    assert c.put("/v1/market-prices", json={"market": "north", "price_per_kg": 4.0}, headers=h).status_code == 200
    v = c.get(f"/v1/loans/{t.loan_id}/valuation", headers=h).json()
    assert v["value"] == pytest.approx(20.0) and v["price_source"] == "market:north"
    # lowering the outstanding and acking lets the rule fire again only when breached again
    assert c.patch(f"/v1/loans/{t.loan_id}", json={"outstanding": 1.0}, headers=h).json()["outstanding"] == 1.0
    assert c.get(f"/v1/loans/{t.loan_id}/valuation", headers=h).json()["above_limit"] is False
    # the next report's LTV check finds the breach over: the alert is resolved, not left open
    t2 = t1 + timedelta(days=1)
    r = post_report(c, dev, dev.flock(t2, headcount=4, band=1, birds=[bird(k, t2) for k in (1, 2, 3)]))
    assert r.status_code == 201
    ltv = c.get("/v1/alerts", params={"kind": "ltv_above_limit"}, headers=h).json()["items"]
    assert [a["status"] for a in ltv] == ["resolved"]
    assert "back within limit" in ltv[0]["details"]["resolved_because"]
    assert r.json()["report_id"] in ltv[0]["details"]["resolved_by_report_ids"]
    assert not c.get("/v1/alerts", params={"kind": "ltv_above_limit", "status": "open"}, headers=h).json()["items"]


def test_headcount_stale_timeseries_birds_snapshot(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    h = auth(t.lender_key)
    dev = t.device
    ids = []
    for i in range(1, 6):
        ti = T0 + timedelta(days=2, hours=i)
        env = dev.flock(ti, headcount=100 + i, birds=[bird(k, ti, weight=1000 + 10 * i) for k in range(3)],
                        snapshots={"cam0": JPEG} if i == 5 else None)
        ids.append(post_report(c, dev, env).json()["report_id"])
    hc = c.get(f"/v1/flocks/{t.flock_id}/headcount", headers=h).json()
    assert (hc["value"], hc["low"], hc["high"], hc["stale"]) == (105, 103, 107, False)
    assert hc["report_ids"] == [ids[-1]]
    # camera covered: headcount stays at the last good value, flagged stale, and the lender is alerted
    tc = T0 + timedelta(days=2, hours=6)
    r = post_report(c, dev, dev.flock(tc, headcount=0, band=0, stale=True, alerts=[
        {"kind": "camera_covered", "at": iso(tc), "camera_id": "cam0", "severity": "critical"}]))
    stale_id = r.json()["report_id"]
    hc = c.get(f"/v1/flocks/{t.flock_id}/headcount", headers=h).json()
    assert hc["value"] == 105 and hc["stale"] and hc["stale_report_ids"] == [stale_id]
    assert hc["stale_since"].startswith("2026-01-03T06:00")
    tamper = c.get("/v1/alerts", params={"kind": "camera_tampering"}, headers=h).json()["items"]
    assert len(tamper) == 1 and tamper[0]["report_ids"] == [stale_id]
    assert not c.get("/v1/alerts", params={"kind": "headcount_drop"}, headers=h).json()["items"]
    v = c.get(f"/v1/loans/{t.loan_id}/valuation", headers=h).json()
    assert v["headcount_stale"] and any("stale" in w for w in v["warnings"])
    # time series by hour and by day
    q = {"from": iso(T0 + timedelta(days=2)), "to": iso(T0 + timedelta(days=3))}
    ts = c.get(f"/v1/flocks/{t.flock_id}/timeseries", params={**q, "bucket": "hour"}, headers=h).json()
    pts = ts["points"]
    assert [p["headcount"] for p in pts] == [101, 102, 103, 104, 105, None]
    assert pts[-1]["stale"] and pts[0]["report_ids"] == [ids[0]]
    assert pts[0]["mean_weight_g"] == pytest.approx(1010) and pts[0]["expected_weight_g"] > 42
    assert ts["from"].startswith("2026-01-03") and ts["bucket"] == "hour"
    day = c.get(f"/v1/flocks/{t.flock_id}/timeseries", params={**q, "bucket": "day"}, headers=h).json()["points"]
    assert len(day) == 1 and day[0]["headcount"] == pytest.approx(103) and len(day[0]["report_ids"]) == 6
    farm_ts = c.get(f"/v1/farms/{t.farm_id}/timeseries", params={**q, "bucket": "day"}, headers=h).json()
    assert farm_ts["points"][0]["report_ids"] == day[0]["report_ids"]
    bad = c.get(f"/v1/flocks/{t.flock_id}/timeseries", params={"from": q["to"], "to": q["from"]}, headers=h)
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-range")
    hist = c.get(f"/v1/loans/{t.loan_id}/valuation/history", params={**q, "bucket": "day"}, headers=h).json()
    assert hist["points"][0]["value"] is not None and hist["points"][0]["report_ids"]
    # birds, paginated
    p1 = c.get(f"/v1/flocks/{t.flock_id}/birds", params={"limit": 2}, headers=h).json()
    assert [b["bird_id"] for b in p1["items"]] == ["bird-000000", "bird-000001"] and p1["next_cursor"]
    p2 = c.get(f"/v1/flocks/{t.flock_id}/birds", params={"limit": 2, "cursor": p1["next_cursor"]}, headers=h).json()
    assert [b["bird_id"] for b in p2["items"]] == ["bird-000002"] and p2["next_cursor"] is None
    assert p2["items"][0]["weight_g"] == pytest.approx(1050) and p2["items"][0]["live"]
    assert c.get(f"/v1/flocks/{t.flock_id}/birds", params={"cursor": "!!"}, headers=h).status_code == 422
    # latest camera snapshot
    cams = c.get(f"/v1/farms/{t.farm_id}/cameras", headers=h).json()
    assert [x["camera_id"] for x in cams] == ["cam0"] and cams[0]["report_id"] == ids[-1]
    img = c.get(cams[0]["snapshot_url"], headers=h)
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content == base64.b64decode(JPEG)
