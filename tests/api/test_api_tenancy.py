"""Tenancy: every endpoint of the OpenAPI document is tried with another tenant's keys.

Lender B (and B's farm and device keys) must never read or change lender A's farms, flocks, loans,
devices, reports, alerts, prices or audit events: id-bearing routes answer 404 (or 403 for a role
that may never call them), and lists never contain A's ids."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import numpy as np
from api_testkit import JPEG, T0, auth, bird, iso, make_tenant, post_report

PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}


def _world(c, admin_key):  # type: ignore[no-untyped-def]
    a = make_tenant(c, admin_key)
    b = make_tenant(c, admin_key)
    for t in (a, b):
        d = t.device
        post_report(c, d, d.flock(T0, headcount=100, birds=[bird(1, T0)], snapshots={"cam0": JPEG}))
        post_report(c, d, d.flock(T0 + timedelta(hours=1), headcount=50, birds=[bird(1, T0)]))  # drop alert
        post_report(c, d, d.registry(T0 + timedelta(hours=1), np.eye(3, 8, dtype=np.float32)))
    h = auth(a.lender_key)
    assert c.put("/v1/market-prices", json={"market": "secret-market-a", "price_per_kg": 9.0}, headers=h).is_success
    a_alert = c.get("/v1/alerts", headers=h).json()["items"][0]["id"]
    a_report = c.get(f"/v1/devices/{a.device.device_id}/reports", headers=h).json()["items"][0]["id"]
    a_key = c.get("/v1/api-keys", headers=auth(admin_key)).json()["items"][0]["id"]
    return a, b, {"org_id": a.org_id, "farm_id": a.farm_id, "flock_id": a.flock_id, "loan_id": a.loan_id,
                  "device_id": a.device.device_id, "report_id": a_report, "alert_id": a_alert,
                  "camera_id": "cam0", "key_id": a_key}


def _bodies(a, ids):  # type: ignore[no-untyped-def]
    """Bodies that point at A's objects, for every write endpoint."""
    from vision.wire import generate_keypair, public_key_pem

    return {
        ("POST", "/v1/organizations"): {"name": "evil"},
        ("POST", "/v1/api-keys"): {"role": "lender", "org_id": ids["org_id"]},
        ("POST", "/v1/farms"): {"name": "x", "org_id": ids["org_id"]},
        ("PATCH", "/v1/farms/{farm_id}"): {"name": "hijacked", "price_per_kg": 0.0},
        ("PUT", "/v1/market-prices"): {"market": "m", "price_per_kg": 1.0, "org_id": ids["org_id"]},
        ("POST", "/v1/devices"): {"device_id": "evil-dev", "farm_id": ids["farm_id"],
                                  "public_key_pem": public_key_pem(generate_keypair())},
        ("POST", "/v1/reports"): a.device.flock(T0 + timedelta(hours=5), advance=False),
        ("POST", "/v1/flocks"): {"farm_id": ids["farm_id"], "name": "x", "placed_at": iso(T0)},
        ("PATCH", "/v1/flocks/{flock_id}"): {"name": "hijacked"},
        ("POST", "/v1/loans"): {"flock_id": ids["flock_id"], "principal": 1.0, "start_date": iso(T0)},
        ("PATCH", "/v1/loans/{loan_id}"): {"outstanding": 0.0},
        ("POST", "/v1/alerts/{alert_id}/ack"): None,
        ("POST", "/v1/alerts/scan"): None,
        ("DELETE", "/v1/api-keys/{key_id}"): None,
    }


def _a_ids(a, ids) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.org_id, a.farm_id, a.flock_id, a.loan_id, a.device.device_id, "secret-market-a"]


def test_every_endpoint_across_tenants(api_env) -> None:
    c = api_env.client
    a, b, ids = _world(c, api_env.admin_key)
    bodies = _bodies(a, ids)
    spec = c.get("/openapi.json").json()
    ops = [(m.upper(), path) for path, item in spec["paths"].items() for m in item
           if m in ("get", "post", "put", "patch", "delete")]
    assert len(ops) >= 35
    tried: set[tuple[str, str]] = set()
    secrets_of_a = _a_ids(a, ids)
    for role, key in (("lender", b.lender_key), ("farm", b.farm_key), ("device", b.device.api_key)):
        for method, path in ops:
            if (method, path) in PUBLIC or not path.startswith("/v1"):
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
            body = bodies.get((method, path))
            params = {"farm_id": a.farm_id} if path in ("/v1/alerts", "/v1/flocks") else None
            r = c.request(method, url, headers=auth(key), params=params,
                          json=body if method in ("POST", "PUT", "PATCH") and body is not None else None)
            tried.add((method, path))
            has_target = "{" in path or (method in ("POST", "PUT") and body is not None and path not in (
                "/v1/organizations",))
            where = f"{role} {method} {path} -> {r.status_code}: {r.text[:200]}"
            assert r.status_code < 500, where
            if has_target or method != "GET":
                assert r.status_code in (401, 403, 404, 422), where
            else:
                assert r.status_code in (200, 403), where
            if r.status_code < 300:
                text = r.text
                leaked = [s for s in secrets_of_a if s in text]
                assert not leaked, f"{where} leaks {leaked}"
    missing = {op for op in ops if op not in PUBLIC and op[1].startswith("/v1")} - tried
    assert not missing, f"endpoints never tried across tenants: {sorted(missing)}"
    # A's objects are unchanged and A still sees them
    h = auth(a.lender_key)
    assert c.get(f"/v1/farms/{a.farm_id}", headers=h).json()["price_per_kg"] == 2.0
    assert c.get(f"/v1/loans/{a.loan_id}", headers=h).json()["outstanding"] == 100.0
    assert c.get(f"/v1/alerts/{ids['alert_id']}", headers=h).json()["status"] == "open"
    assert c.get(f"/v1/devices/{a.device.device_id}", headers=h).json()["head_seq"] == 2
    # and B sees its own things through the same endpoints
    hb = auth(b.lender_key)
    listed = json.dumps(c.get("/v1/portfolio", headers=hb).json())
    assert b.loan_id in listed and a.loan_id not in listed
    assert c.get(f"/v1/loans/{b.loan_id}/valuation", headers=hb).status_code == 200


def test_unauthenticated_everywhere(api_env) -> None:
    c = api_env.client
    spec = c.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        url = re.sub(r"\{(\w+)\}", "x1", path)
        for method in item:
            r = c.request(method.upper(), url, headers={"Authorization": "Bearer fk_abc_wrong"})
            assert r.status_code == 401, f"{method} {path}: {r.status_code}"
            assert r.json()["type"] == "https://flockid.dev/problems/unauthenticated"
