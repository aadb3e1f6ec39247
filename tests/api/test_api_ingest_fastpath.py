"""`POST /v1/reports` is served by `api.ingest_endpoint.IngestFastPath` ahead of FastAPI's routing; the
documented FastAPI route does the same work. Both must answer every case alike."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from api_testkit import T0, DeviceSim, auth, bird, make_tenant

from api.ingest_endpoint import bearer_header

PROBLEM = "https://flockid.dev/problems/"


def _without_fast_path(env: Any) -> None:
    from api.ingest_endpoint import IngestFastPath

    # Before the first request: Starlette builds the middleware stack once, on first use.
    env.app.user_middleware = [m for m in env.app.user_middleware if m.cls is not IngestFastPath]


def _answers(client: Any, admin_key: str) -> list[tuple[Any, ...]]:
    """Status, content type, body shape and key headers of one report's worth of ingest cases."""
    t = make_tenant(client, admin_key)
    dev = t.device
    e0 = dev.flock(T0, birds=[bird(1, T0)])
    gap = DeviceSim(dev.device_id, dev.farm_id, key=dev.key, seq=5, prev_hash="0" * 64).flock(T0)
    stranger = DeviceSim(dev.device_id, dev.farm_id).flock(T0)
    cases: list[tuple[dict[str, str], Any]] = [
        (auth(dev.api_key), e0),                          # 201 stored
        (auth(dev.api_key), e0),                          # 200 duplicate
        ({}, e0),                                         # 401 no key
        ({"Authorization": f"Basic {dev.api_key}"}, e0),  # 401 not a bearer key
        (auth("fk_nope_nope"), e0),                       # 401 unknown key
        (auth(t.lender_key), e0),                         # 403 wrong role
        (auth(dev.api_key), b"{not json"),                # 422 malformed
        (auth(dev.api_key), stranger),                    # 403 bad signature
        (auth(dev.api_key), gap),                         # 409 chain gap
    ]
    out = []
    for headers, body in cases:
        if isinstance(body, bytes):
            r = client.post("/v1/reports", content=body, headers={**headers, "content-type": "application/json"})
        else:
            r = client.post("/v1/reports", json=body, headers=headers)
        data = r.json()
        if r.headers["content-type"] == "application/problem+json":
            shape: Any = (data["type"].removeprefix(PROBLEM), data["title"], data["status"], data["instance"],
                          data.get("expected_seq"))
        else:
            assert r.headers["location"] == f"/v1/reports/{data['report_id']}"
            assert data["device_id"] == dev.device_id and data["seq"] == 0 and len(data["payload_hash"]) == 64
            shape = (sorted(data), data["kind"], data["duplicate"], data["alert_ids"])
        out.append((r.status_code, r.headers["content-type"], r.headers.get("www-authenticate"), shape))
    return out


def test_fast_path_and_route_answer_alike(api_env) -> None:
    from api_env import build_env

    fast = _answers(api_env.client, api_env.admin_key)
    env = build_env(api_env.backend, api_env.url)
    _without_fast_path(env)
    with env.client as c:
        routed = _answers(c, env.admin_key)
    assert [a[0] for a in fast] == [201, 200, 401, 401, 401, 403, 422, 403, 409]
    assert fast == routed


def test_ingest_on_the_event_loop_answers_like_worker_threads(api_env) -> None:
    """FLOCKID_INGEST_THREADS=0 runs ingest inline on the event loop: the same answers, no threads."""
    from api_env import build_env

    threaded = _answers(api_env.client, api_env.admin_key)
    env = build_env(api_env.backend, api_env.url, ingest_threads=0)
    assert env.app.state.ingest_workers.threads == 0
    with env.client as c:
        inline = _answers(c, env.admin_key)
    assert inline == threaded
    assert env.app.state.ingest_workers._executor is None  # no worker thread was ever started


def test_fast_path_keeps_the_body_limit_and_rate_limit_headers(api_env) -> None:
    from api_env import build_env

    env = build_env(api_env.backend, api_env.url, max_body_bytes=4096, ingest_rate_per_s=0.001, ingest_burst=1)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
        dev = t.device
        # Streamed without a Content-Length: counted while read.
        big = dev.flock(T0, advance=False, birds=[bird(i, T0) for i in range(40)])
        r = c.post("/v1/reports", content=iter([json.dumps(big).encode()]), headers=auth(dev.api_key))
        assert r.status_code == 413 and r.json()["type"] == PROBLEM + "request-too-large"
        assert c.post("/v1/reports", json=dev.flock(T0), headers=auth(dev.api_key)).status_code == 201
        r = c.post("/v1/reports", json=dev.flock(T0 + timedelta(hours=1)), headers=auth(dev.api_key))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer fk_a_b", "bearer  fk_a_b ",
                                    "BEARER fk_a_b"])
def test_bearer_header_matches_httpbearer(header: str | None) -> None:
    import asyncio

    from starlette.requests import Request

    from api.deps import bearer

    headers = [] if header is None else [(b"authorization", header.encode())]
    creds = asyncio.run(bearer(Request({"type": "http", "headers": headers})))
    assert bearer_header(header) == (f"{creds.scheme} {creds.credentials}" if creds is not None else None)


def test_sqlite_writer_lock_times_out_as_database_busy(api_env) -> None:
    if api_env.backend != "sqlite":
        pytest.skip("the in-process writer lock exists for SQLite only")
    from api_env import build_env

    env = build_env(api_env.backend, api_env.url)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
        lock = env.app.state.ingest_workers.write_lock
        lock.timeout_s = 0.05
        with lock:  # another writer of this process holds its turn
            r = c.post("/v1/reports", json=t.device.flock(T0, advance=False), headers=auth(t.device.api_key))
        assert r.status_code == 503 and r.json()["type"] == PROBLEM + "database-busy" and r.headers["retry-after"]
        assert c.post("/v1/reports", json=t.device.flock(T0), headers=auth(t.device.api_key)).status_code == 201
