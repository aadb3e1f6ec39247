"""Alert rules: headcount drop, double pledge across lenders, replayed footage, silent devices, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
from api_testkit import T0, DeviceSim, auth, bird, make_tenant, post_report, rand


def _kinds(c, key, **params) -> list[str]:  # type: ignore[no-untyped-def]
    return [a["kind"] for a in c.get("/v1/alerts", params=params, headers=auth(key)).json()["items"]]


def test_headcount_drop_alert_and_ack(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    assert post_report(c, dev, dev.flock(T0, headcount=1000)).status_code == 201
    assert post_report(c, dev, dev.flock(T0 + timedelta(hours=1), headcount=990)).status_code == 201
    assert "headcount_drop" not in _kinds(c, t.lender_key)
    r = post_report(c, dev, dev.flock(T0 + timedelta(hours=2), headcount=900))
    alerts = c.get("/v1/alerts", params={"kind": "headcount_drop"}, headers=auth(t.lender_key)).json()["items"]
    assert len(alerts) == 1 and r.json()["report_id"] in alerts[0]["report_ids"]
    assert alerts[0]["details"]["previous"] == 990 and alerts[0]["details"]["current"] == 900
    # open alert deduplicates; after ack the rule may fire again
    post_report(c, dev, dev.flock(T0 + timedelta(hours=3), headcount=800))
    assert _kinds(c, t.lender_key, kind="headcount_drop") == ["headcount_drop"]
    ack = c.post(f"/v1/alerts/{alerts[0]['id']}/ack", headers=auth(t.lender_key))
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    post_report(c, dev, dev.flock(T0 + timedelta(hours=4), headcount=700))
    assert _kinds(c, t.lender_key, kind="headcount_drop") == ["headcount_drop", "headcount_drop"]
    # the farm operator sees farm alerts but cannot acknowledge them
    assert c.post(f"/v1/alerts/{alerts[0]['id']}/ack", headers=auth(t.farm_key)).status_code == 403


def test_double_pledge_across_two_lenders(api_env) -> None:
    c = api_env.client
    a = make_tenant(c, api_env.admin_key)
    b = make_tenant(c, api_env.admin_key)
    rng = np.random.default_rng(7)
    birds = rng.normal(size=(30, 64)).astype(np.float32)
    r = post_report(c, a.device, a.device.registry(T0, birds))
    assert r.status_code == 201 and not r.json()["alert_ids"]
    # the same birds (slightly noisy re-embeddings, shuffled) registered under lender B's farm
    noisy = birds[::-1] + rng.normal(scale=0.05, size=birds.shape).astype(np.float32)
    r = post_report(c, b.device, b.device.registry(T0, noisy))
    assert r.status_code == 201 and len(r.json()["alert_ids"]) == 2
    for t, other in ((a, b), (b, a)):
        items = c.get("/v1/alerts", params={"kind": "double_pledge"}, headers=auth(t.lender_key)).json()["items"]
        assert [x["loan_id"] for x in items] == [t.loan_id]
        assert items[0]["details"]["matches"] >= 25
        # the other lender's farm id and reports are never disclosed
        assert other.farm_id not in json.dumps(items[0]) and items[0]["details"]["peer_farm_id"] is None
    # unrelated birds on a third lender's farm raise nothing
    c3 = make_tenant(c, api_env.admin_key)
    r = post_report(c, c3.device, c3.device.registry(T0, rng.normal(size=(30, 64)).astype(np.float32)))
    assert r.json()["alert_ids"] == [] and "double_pledge" not in _kinds(c, c3.lender_key)


def test_replayed_footage(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    hashes = [f"{(0x1234_5678_9ABC_DEF0 * (i + 3)) & (2**64 - 1):016x}" for i in range(6)]
    assert post_report(c, dev, dev.flock(T0, fingerprints=hashes)).json()["alert_ids"] == []
    # fresh footage with other hashes: nothing
    fresh = [f"{(0x0F0F_1234_AAAA_5555 * (i + 11)) & (2**64 - 1):016x}" for i in range(6)]
    assert post_report(c, dev, dev.flock(T0 + timedelta(hours=2), fingerprints=fresh)).json()["alert_ids"] == []
    # the old frames again, one bit flipped in each, a day later
    replay = [f"{int(h, 16) ^ (1 << (i * 7)):016x}" for i, h in enumerate(hashes)]
    r = post_report(c, dev, dev.flock(T0 + timedelta(days=1), fingerprints=replay))
    assert len(r.json()["alert_ids"]) == 1
    alert = c.get(f"/v1/alerts/{r.json()['alert_ids'][0]}", headers=auth(t.lender_key)).json()
    assert alert["kind"] == "replayed_footage" and alert["details"]["matched_frames"] == 6
    assert r.json()["report_id"] in alert["report_ids"]


def test_silent_device_scan(api_env) -> None:
    from api.db.engine import make_engine, make_sessionmaker
    from api.services.scan import run_scan

    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    post_report(c, t.device, t.device.flock(T0))
    assert c.post("/v1/alerts/scan", headers=auth(t.lender_key)).status_code == 403
    engine = make_engine(api_env.url)
    try:
        with make_sessionmaker(engine)() as session:
            later = datetime.now(timezone.utc) + timedelta(hours=7)
            run_scan(session, api_env.app.state.settings, now=later)
    finally:
        engine.dispose()
    items = c.get("/v1/alerts", params={"kind": "device_silent"}, headers=auth(t.lender_key)).json()["items"]
    assert [x["device_id"] for x in items] == [t.device.device_id] and items[0]["status"] == "open"
    # the device speaks again: the next scan resolves the alert instead of leaving it open
    post_report(c, t.device, t.device.flock(T0 + timedelta(hours=1)))
    engine = make_engine(api_env.url)
    try:
        with make_sessionmaker(engine)() as session:
            run_scan(session, api_env.app.state.settings)
    finally:
        engine.dispose()
    items = c.get("/v1/alerts", params={"kind": "device_silent"}, headers=auth(t.lender_key)).json()["items"]
    assert [x["status"] for x in items] == ["resolved"]
    assert "reported again" in items[0]["details"]["resolved_because"]


def _alert_model():  # type: ignore[no-untyped-def]
    from api.db.models import Alert

    return Alert


class _Hook(BaseHTTPRequestHandler):
    received: list = []  # noqa: RUF012 - test double shared across handler instances
    fail_first = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        if type(self).fail_first:
            type(self).fail_first = False
            self.send_response(500)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def test_webhook_signed_with_retry(api_env) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        c = api_env.client
        h = auth(api_env.admin_key)
        org = c.post("/v1/organizations", json={"name": rand("Hooked"),
                                                "webhook_url": f"http://127.0.0.1:{server.server_port}/hook"},
                     headers=h).json()["id"]
        lender = c.post("/v1/api-keys", json={"role": "lender", "org_id": org}, headers=h).json()["api_key"]
        farm = c.post("/v1/farms", json={"name": "F"}, headers=auth(lender)).json()["id"]
        dev = DeviceSim(rand("dev"), farm)
        dev.api_key = c.post("/v1/devices", json={"device_id": dev.device_id, "farm_id": farm,
                                                  "public_key_pem": dev.public_pem}, headers=h).json()["api_key"]
        api_env.app.state.webhooks.backoff_s = 0.01
        post_report(c, dev, dev.flock(T0, headcount=100))
        r = post_report(c, dev, dev.flock(T0 + timedelta(hours=1), headcount=50, birds=[bird(1, T0)]))
        alert_id = r.json()["alert_ids"][0]
        deadline = time.time() + 10
        while time.time() < deadline and len(_Hook.received) < 2:
            time.sleep(0.05)
        assert len(_Hook.received) == 2, "one failed attempt, then a retry"
        headers, body = _Hook.received[-1]
        sig = headers["X-FlockID-Signature"]
        ts = sig.split(",")[0].removeprefix("t=")
        expected = hmac.new(api_env.app.state.settings.secret(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert sig.endswith(f"v1={expected}")
        assert json.loads(body)["id"] == alert_id and json.loads(body)["kind"] == "headcount_drop"
        while time.time() < deadline:  # the delivery outcome is recorded on the alert row
            with api_env.app.state.sessionmaker() as session:
                if session.get(_alert_model(), alert_id).webhook_status == "sent":
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("webhook_status never became 'sent'")
    finally:
        server.shutdown()
        _Hook.received.clear()
        _Hook.fail_first = True


def test_background_scan_raises_silent_device_alert(tmp_path) -> None:
    from api_env import build_env

    # Its own database: the loop scans every device and loan, and the shared one holds hundreds.
    env = build_env("sqlite", f"sqlite:///{tmp_path / 'scan.db'}", scan_interval_s=0.2, silent_hours=0.0002)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
        deadline = time.time() + 15
        found: list = []
        while time.time() < deadline and not found:
            time.sleep(0.2)
            found = [a for a in c.get("/v1/alerts", params={"kind": "device_silent"},
                                      headers=auth(t.lender_key)).json()["items"]
                     if a["device_id"] == t.device.device_id]
        assert found, "the lifespan scan loop should flag a device that never reported"
