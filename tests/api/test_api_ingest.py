"""POST /v1/reports: the ingest contract edge devices code against."""

from __future__ import annotations

import copy
from datetime import timedelta

from api_testkit import T0, DeviceSim, auth, bird, make_tenant, post_report

PROBLEM = "https://flockid.dev/problems/"


def _slug(r) -> str:  # type: ignore[no-untyped-def]
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    body = r.json()
    assert body["status"] == r.status_code
    return body["type"].removeprefix(PROBLEM)


def test_ingest_chain_duplicates_and_refusals(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    e0 = dev.flock(T0, birds=[bird(1, T0)])
    r = post_report(c, dev, e0)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["seq"] == 0 and not first["duplicate"]
    # exact duplicate: idempotent 200, same report id
    r = post_report(c, dev, e0)
    assert r.status_code == 200 and r.json()["report_id"] == first["report_id"] and r.json()["duplicate"]
    # conflicting duplicate: same seq, different signed content
    other = DeviceSim(dev.device_id, dev.farm_id, key=dev.key)
    r = post_report(c, dev, other.flock(T0, headcount=99))
    assert r.status_code == 409 and _slug(r) == "conflicting-duplicate"
    # gap: seq 2 before seq 1
    e1 = dev.flock(T0 + timedelta(hours=1))
    e2 = dev.flock(T0 + timedelta(hours=2))
    r = post_report(c, dev, e2)
    assert r.status_code == 409 and _slug(r) == "chain-gap" and r.json()["expected_seq"] == 1
    assert post_report(c, dev, e1).status_code == 201
    assert post_report(c, dev, e2).status_code == 201
    # prev_hash mismatch: right seq, wrong link
    forged = DeviceSim(dev.device_id, dev.farm_id, key=dev.key, seq=dev.seq, prev_hash="0" * 64)
    r = post_report(c, dev, forged.flock(T0 + timedelta(hours=3)))
    assert r.status_code == 409 and _slug(r) == "prev-hash-mismatch"
    # a registry snapshot shares the chain
    import numpy as np

    r = post_report(c, dev, dev.registry(T0 + timedelta(hours=3), np.eye(4, 8, dtype=np.float32)))
    assert r.status_code == 201 and r.json()["kind"] == "registry_snapshot" and r.json()["seq"] == 3
    # the chain re-verifies and the refusals raised chain_broken alerts for the lender
    v = c.get(f"/v1/devices/{dev.device_id}/chain/verify", headers=auth(t.lender_key)).json()
    assert v["ok"] and v["reports"] == 4 and v["last_seq"] == 3 and v["problems"] == []
    kinds = [a["kind"] for a in c.get("/v1/alerts", headers=auth(t.lender_key)).json()["items"]]
    assert "chain_broken" in kinds
    rep = c.get(f"/v1/reports/{first['report_id']}", headers=auth(t.lender_key)).json()
    assert rep["envelope"] == e0 and rep["seq"] == 0


def test_ingest_signature_auth_and_schema(api_env, now) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    env = dev.flock(T0, advance=False)
    # unsigned
    r = c.post("/v1/reports", json={"payload": env["payload"]}, headers=auth(dev.api_key))
    assert r.status_code == 401 and _slug(r) == "unsigned-report"
    # tampered payload: signature no longer matches
    bad = copy.deepcopy(env)
    bad["payload"]["headcount"]["value"] = 101
    bad["payload"]["headcount"]["high"] = 103
    r = post_report(c, dev, bad)
    assert r.status_code == 403 and _slug(r) == "bad-signature"
    # signed by another key
    stranger = DeviceSim(dev.device_id, dev.farm_id)
    r = post_report(c, dev, stranger.flock(T0))
    assert r.status_code == 403 and _slug(r) == "bad-signature"
    # no key / wrong key / a lender key
    assert _slug(c.post("/v1/reports", json=env)) == "unauthenticated"
    assert c.post("/v1/reports", json=env, headers=auth("fk_nope_nope")).status_code == 401
    r = c.post("/v1/reports", json=env, headers=auth(t.lender_key))
    assert r.status_code == 403 and _slug(r) == "forbidden"
    # a device key for another device
    t2 = make_tenant(c, api_env.admin_key)
    r = c.post("/v1/reports", json=env, headers=auth(t2.device.api_key))
    assert r.status_code == 403 and _slug(r) == "device-mismatch"
    # not JSON / not an envelope / payload off-schema (validly signed)
    r = c.post("/v1/reports", content=b"{not json", headers={**auth(dev.api_key), "content-type": "application/json"})
    assert r.status_code == 422 and _slug(r) == "malformed-json"
    r = post_report(c, dev, {"payload": {}, "signature": "x", "key_id": "zz"})
    assert r.status_code == 422 and _slug(r) == "invalid-envelope"
    r = post_report(c, dev, dev.flock(T0, advance=False, frames_seen=-1))
    assert r.status_code == 422 and _slug(r) == "invalid-report"
    # future-dated beyond the clock-skew tolerance
    r = post_report(c, dev, dev.flock(now + timedelta(hours=1), advance=False))
    assert r.status_code == 422 and _slug(r) == "future-dated"
    # a naive timestamp, or a clock that was never set
    r = post_report(c, dev, dev.flock(T0, advance=False, device_clock="2026-01-01T00:00:00"))
    assert r.status_code == 422 and _slug(r) == "invalid-report" and "device_clock" in r.json()["detail"]
    r = post_report(c, dev, dev.flock(T0.replace(year=1970), advance=False))
    assert r.status_code == 422 and _slug(r) == "invalid-report" and "unset" in r.json()["detail"]
    # numbers the database cannot hold are refused up front
    huge = dev.flock(T0, advance=False, headcount=2**40)
    r = post_report(c, dev, huge)
    assert r.status_code == 422 and _slug(r) == "invalid-report" and "headcount" in r.json()["detail"]
    assert c.get(f"/v1/reports/{2**70}", headers=auth(t.lender_key)).status_code == 422
    # within tolerance is fine
    assert post_report(c, dev, dev.flock(now + timedelta(seconds=30))).status_code == 201


def test_ingest_body_limit_and_rate_limit(api_env) -> None:
    from api_env import build_env

    env = build_env(api_env.backend, api_env.url, max_body_bytes=4096, ingest_rate_per_s=0.001, ingest_burst=3)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
        dev = t.device
        big = dev.flock(T0, advance=False, birds=[bird(i, T0) for i in range(40)])
        r = post_report(c, dev, big)
        assert r.status_code == 413 and _slug(r) == "request-too-large"
        codes = [post_report(c, dev, dev.flock(T0 + timedelta(hours=i))).status_code for i in range(5)]
        assert codes[:3] == [201, 201, 201] and codes[3:] == [429, 429]
        r = post_report(c, dev, dev.flock(T0 + timedelta(hours=9), advance=False))
        assert _slug(r) == "rate-limited" and int(r.headers["retry-after"]) >= 1
