"""`flockid bench api`: fill a database with farms x days of hourly reports, then time ingest
(signed reports through POST /v1/reports: in process, and through one uvicorn server) and valuation /
time-series queries.

The generated history goes straight into the tables (a generator, not the ingest path) and its stored
envelopes are placeholders, not signed documents; the ingest rate is measured separately on fresh
devices with real Ed25519-signed, hash-chained reports, into the filled database."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flockid.console import progress, stderr


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    idx = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[idx]


def _pg_create(url: str) -> tuple[str, str]:
    import psycopg

    from api.db.engine import normalise_url

    full = normalise_url(url)
    base, _, _db = full.rpartition("/")
    name = f"flockid_bench_{secrets.token_hex(4)}"
    with psycopg.connect(full.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{base}/{name}"


def _pg_drop(admin_url: str, name: str) -> None:
    import psycopg

    from api.db.engine import normalise_url

    full = normalise_url(admin_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(full, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(url: str, *, farms: int, days: int, birds: int, seed: int, end: datetime) -> dict[str, Any]:
    import numpy as np
    from sqlalchemy import insert

    from api.db.engine import make_engine, make_sessionmaker
    from api.db.models import Bird, Device, Farm, Flock, Loan, Organization, Report
    from api.services.auth import new_key
    from api.settings import Settings
    from vision.wire import generate_keypair, key_id, public_key_pem

    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    settings = Settings(database_url=url)
    hours = days * 24
    start = end - timedelta(hours=hours)
    placed = start - timedelta(days=1)
    key = generate_keypair()
    pem, kid = public_key_pem(key), key_id(key)
    now = datetime.now(timezone.utc)
    with sm() as s:
        org = Organization(id="org_bench", name=f"Bench {secrets.token_hex(3)}", created_at=now)
        s.add(org)
        s.flush()
        _, lender_key = new_key(s, role="lender", pepper=settings.secret(), org_id=org.id)
        farm_rows, flock_rows, loan_rows, dev_rows = [], [], [], []
        for f in range(farms):
            fid = f"farm_b{f:05d}"
            farm_rows.append({"id": fid, "org_id": org.id, "name": f"Farm {f}", "owner_name": "", "location": "",
                              "breed": "broiler", "price_source": "farm", "price_per_kg": 1.8, "currency": "USD",
                              "created_at": now})
            flock_rows.append({"id": f"flock_b{f:05d}", "farm_id": fid, "name": "house", "breed": "broiler",
                               "placed_at": placed, "created_at": now})
            loan_rows.append({"id": f"loan_b{f:05d}", "org_id": org.id, "flock_id": f"flock_b{f:05d}",
                              "reference": "", "principal": 50_000.0, "outstanding": 40_000.0, "currency": "USD",
                              "start_date": placed, "ltv_limit": 0.8, "status": "active", "created_at": now})
            dev_rows.append({"id": f"dev_b{f:05d}", "farm_id": fid, "public_key_pem": pem, "key_id": kid,
                             "label": "", "created_at": now, "head_seq": hours - 1,
                             "head_hash": secrets.token_hex(32), "last_report_at": end})
        for model, rows in ((Farm, farm_rows), (Flock, flock_rows), (Loan, loan_rows), (Device, dev_rows)):
            s.execute(insert(model), rows)
        s.commit()
    envelope = '{"generated":"flockid bench api: not a signed document"}'
    t0 = time.perf_counter()
    total = 0
    with sm() as s:
        for f in progress(range(farms), total=farms, description="generating reports"):
            base_hc = int(rng.integers(5_000, 20_000))
            hcs = base_hc - np.cumsum(rng.integers(0, 3, size=hours))
            weights = 60 + 2800 * np.arange(hours) / max(hours, 1)
            rows = []
            for h in range(hours):
                t = start + timedelta(hours=h + 1)
                hc = int(hcs[h])
                rows.append({"device_id": f"dev_b{f:05d}", "farm_id": f"farm_b{f:05d}", "seq": h,
                             "kind": "flock_report", "payload_hash": "0" * 64, "prev_hash": None,
                             "envelope": envelope, "received_at": t, "device_clock": t,
                             "window_start": t - timedelta(hours=1), "window_end": t, "headcount": hc,
                             "headcount_low": hc - 20, "headcount_high": hc + 20, "stale": False,
                             "dead_count": int(rng.integers(0, 3)), "mortality_unseen": 0,
                             "activity": float(rng.random() * 5), "huddling": float(rng.random()),
                             "mean_weight_g": float(weights[h]), "n_birds": birds})
            s.execute(insert(Report), rows)
            total += len(rows)
            bird_rows = [{"farm_id": f"farm_b{f:05d}", "bird_id": f"bird-{b:06d}", "first_seen": placed,
                          "last_seen": end, "identity_confidence": 0.9, "activity_bl_per_h": 2.0,
                          "weight_g": float(weights[-1] + rng.normal(0, 100)), "weight_g_low": float(weights[-1] - 200),
                          "weight_g_high": float(weights[-1] + 200), "health": "ok", "cameras": ["cam0"],
                          "report_id": 0} for b in range(birds)]
            s.execute(insert(Bird), bird_rows)
            if f % 20 == 19:
                s.commit()
        s.commit()
    fill_s = time.perf_counter() - t0
    engine.dispose()
    return {"lender_key": lender_key, "reports": total, "fill_s": fill_s, "org_id": "org_bench"}


def _signed_reports(client: Any, admin_key: str, org_id: str, n_reports: int, birds: int, end: datetime,
                    n_devices: int = 10) -> list[tuple[int, bytes, str]]:
    """Register n_devices fresh devices (each on its own pledged farm) and sign n_reports chained
    reports round-robin over them: (device index, body, device api key), in sending order."""
    from vision.wire import generate_keypair, payload_hash, public_key_pem, sign_payload

    h = {"Authorization": f"Bearer {admin_key}"}
    devices = []
    for i in range(n_devices):
        farm = client.post("/v1/farms", json={"org_id": org_id, "name": f"ingest {i}", "price_per_kg": 1.8},
                           headers=h).json()["id"]
        flock = client.post("/v1/flocks", json={"farm_id": farm, "name": "h", "placed_at": (
            end - timedelta(days=30)).isoformat()}, headers=h).json()["id"]
        client.post("/v1/loans", json={"flock_id": flock, "principal": 1000.0, "start_date": (
            end - timedelta(days=30)).isoformat()}, headers=h)
        key = generate_keypair()
        dev_id = f"ingest-{secrets.token_hex(4)}"
        r = client.post("/v1/devices", json={"device_id": dev_id, "farm_id": farm,
                                             "public_key_pem": public_key_pem(key)}, headers=h)
        devices.append({"id": dev_id, "farm": farm, "key": key, "api": r.json()["api_key"], "prev": None})
    out = []
    start = end - timedelta(seconds=n_reports)
    for i in range(n_reports):
        d = devices[i % n_devices]
        t = (start + timedelta(seconds=i)).isoformat()
        payload = {
            "schema_version": 1, "kind": "flock_report", "device_id": d["id"], "farm_id": d["farm"],
            "seq": i // n_devices, "prev_hash": d["prev"], "device_clock": t, "monotonic_s": float(i),
            "window_start": t, "window_end": t, "camera_ids": ["cam0"], "frames_seen": 100, "frames_processed": 50,
            "headcount": {"value": 1000, "low": 990, "high": 1010, "instantaneous_max": 900, "stale": False},
            "birds": [{"bird_id": f"bird-{b:06d}", "identity_confidence": 0.9, "last_seen": t,
                       "activity_bl_per_h": 2.0, "weight_g": 2000.0 + b, "weight_g_low": 1900.0,
                       "weight_g_high": 2100.0, "health": ["ok"], "cameras": ["cam0"]} for b in range(birds)],
            "signals": {"activity_index": 1.0, "huddling_index": 0.1, "mean_weight_g": 2000.0},
            "fingerprints": [{"camera_id": "cam0", "at": t, "phash": secrets.token_hex(8)} for _ in range(4)],
        }
        out.append((i % n_devices, sign_payload(payload, d["key"]).model_dump_json().encode(), d["api"]))
        d["prev"] = payload_hash(payload)
    return out


def _asgi_post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    """A coroutine that sends one POST to the ASGI app as a server would (one body message) and
    returns the response status: the app's own work, without an HTTP client's."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"bench"), (b"content-length", str(len(body)).encode()),
                                          *headers],
             "client": ("127.0.0.1", 50000), "server": ("bench", 80), "state": {}}
    status: list[int] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    async def call() -> int:
        await app(scope, receive, send)
        return status[0]

    return call()


def _ingest_in_process(client: Any, bodies: list[tuple[int, bytes, str]], block: int = 50) -> dict[str, Any]:
    """One request at a time, in blocks that alternate between two drivers so both see the same database
    and the same machine load: the ASGI app called directly (the app's cost per report) and an
    in-process httpx client (adds the client's own CPU per request)."""
    import asyncio

    import httpx

    totals = {"asgi": [0.0, 0.0, 0], "httpx": [0.0, 0.0, 0]}
    codes: dict[int, int] = {}

    async def send_all() -> None:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for b0 in range(0, len(bodies), block):
                driver = "asgi" if (b0 // block) % 2 == 0 else "httpx"
                chunk = bodies[b0:b0 + block]
                t0, c0 = time.perf_counter(), time.process_time()
                for _dev, body, api_key in chunk:
                    if driver == "asgi":
                        code = await _asgi_post(client.app, "/v1/reports", body, [
                            (b"authorization", f"Bearer {api_key}".encode()),
                            (b"content-type", b"application/json")])
                    else:
                        code = (await http.post("/v1/reports", content=body, headers={
                            "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})).status_code
                    codes[code] = codes.get(code, 0) + 1
                t = totals[driver]
                t[0] += time.perf_counter() - t0
                t[1] += time.process_time() - c0
                t[2] += len(chunk)

    asyncio.run(send_all())
    out: dict[str, Any] = {"ingest_reports": len(bodies)}
    for driver, prefix in (("asgi", "ingest"), ("httpx", "ingest_httpx")):
        dt, cpu, n = totals[driver]
        out[f"{prefix}_reports_per_s"] = round(n / dt, 1) if dt > 0 else None
        out[f"{prefix}_reports_per_cpu_s"] = round(n / cpu, 1) if cpu > 0 else None
    out["ingest_s"] = round(totals["asgi"][0] + totals["httpx"][0], 3)
    out["ingest_status_codes"] = {str(k): v for k, v in codes.items()}
    return out


def _http_requests(host: str, bodies: list[tuple[bytes, str]]) -> list[bytes]:
    """Each report as the complete bytes of one keep-alive HTTP/1.1 POST /v1/reports."""
    out = []
    for body, key in bodies:
        head = (f"POST /v1/reports HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
        out.append(head + body)
    return out


def _post_all(port: int, requests: list[bytes], codes: dict[int, int], lock: Any) -> None:
    """Send prebuilt requests one after another on one keep-alive connection, reading each response
    (status line, Content-Length, body) before the next: a load generator that costs the machine a few
    microseconds a request, so the server's figure is not the client's."""
    import socket

    counts: dict[int, int] = {}
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        for request in requests:
            sock.sendall(request)
            while (end := buf.find(b"\r\n\r\n")) < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("bench: the server closed the connection mid-response")
                buf += chunk
            head = buf[:end].decode("latin-1").split("\r\n")
            status = int(head[0].split(" ", 2)[1])
            length = None
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError(f"bench: response {head[0]!r} has no Content-Length")
            need = end + 4 + length
            while len(buf) < need:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("bench: the server closed the connection mid-body")
                buf += chunk
            buf = buf[need:]
            counts[status] = counts.get(status, 0) + 1
    with lock:
        for code, n in counts.items():
            codes[code] = codes.get(code, 0) + n


def _ingest_uvicorn(url: str, bodies: list[tuple[int, bytes, str]], clients: int = 4) -> dict[str, Any]:
    """One uvicorn server process, clients in this process on keep-alive connections; the server's own
    CPU time (psutil) gives its capacity per core independently of the client's share of the machine.
    The clients send prebuilt request bytes over plain sockets (see `_post_all`); their CPU time (this
    process's, while they run) is reported too: client and server share the machine's cores, so
    reports/s is the server's figure only while the two together fit in them."""
    import importlib.util
    import os
    import socket
    import subprocess
    import sys
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import psutil

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FLOCKID_DATABASE_URL": url, "FLOCKID_MOUNT_DASHBOARD": "false",
           "FLOCKID_INGEST_RATE_PER_S": "1000000", "FLOCKID_INGEST_BURST": "1000000", "FLOCKID_SCAN_INTERVAL_S": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("bench: uvicorn did not start")
            time.sleep(0.1)
        server = psutil.Process(proc.pid)
        lanes: list[list[tuple[bytes, str]]] = [[] for _ in range(clients)]
        for dev, body, key in bodies:  # a device's reports stay in order on one connection
            lanes[dev % clients].append((body, key))
        requests = [_http_requests(f"127.0.0.1:{port}", items) for items in lanes]
        codes: dict[int, int] = {}
        lock = threading.Lock()
        c0 = sum(server.cpu_times()[:2])
        t0, me0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda reqs: _post_all(port, reqs, codes, lock), requests))
        dt, client_cpu = time.perf_counter() - t0, time.process_time() - me0
        cpu = sum(server.cpu_times()[:2]) - c0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    n = len(bodies)
    return {"uvicorn_ingest_reports_per_s": round(n / dt, 1), "uvicorn_server_cpu_s": round(cpu, 3),
            "uvicorn_ingest_reports_per_server_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
            "uvicorn_client_cpu_s": round(client_cpu, 3),
            # What uvicorn's "auto" picks: httptools and uvloop when installed (uvicorn[standard]).
            "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "uvicorn_clients": clients, "uvicorn_status_codes": {str(k): v for k, v in codes.items()}}


def _time_queries(client: Any, key: str, farms: int, n: int, seed: int, end: datetime) -> dict[str, Any]:
    import random

    rnd = random.Random(seed)
    h = {"Authorization": f"Bearer {key}"}
    out: dict[str, Any] = {}
    specs = {
        "valuation": lambda f: (f"/v1/loans/loan_b{f:05d}/valuation", None),
        "timeseries_7d_hourly": lambda f: (f"/v1/flocks/flock_b{f:05d}/timeseries",
                                           {"from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat(),
                                            "bucket": "hour"}),
        "timeseries_90d_daily": lambda f: (f"/v1/flocks/flock_b{f:05d}/timeseries",
                                           {"from": (end - timedelta(days=90)).isoformat(), "to": end.isoformat(),
                                            "bucket": "day"}),
    }
    for name, spec in specs.items():
        lat, cpu = [], []
        for _ in range(n):
            url, params = spec(rnd.randrange(farms))
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(url, params=params, headers=h)
            lat.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"bench query {url} -> {r.status_code}: {r.text[:300]}")
        out[f"{name}_p50_ms"] = round(statistics.median(lat), 2)
        out[f"{name}_p95_ms"] = round(_pct(lat, 0.95), 2)
        # CPU time of this process per query (client + app): separates our cost from a busy machine's waits.
        out[f"{name}_cpu_p95_ms"] = round(_pct(cpu, 0.95), 2)
    return out


def run_bench(*, farms: int, days: int, birds: int, ingest_reports: int, queries: int,
              database_url: str | None, keep: bool, seed: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.db import migrate
    from api.db.engine import is_sqlite, make_engine, make_sessionmaker, normalise_url
    from api.services.auth import new_key
    from api.settings import Settings

    tmp = None
    pg_name = None
    if database_url is None:
        tmp = tempfile.mkdtemp(prefix="flockid-bench-")
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    elif is_sqlite(database_url):
        url = database_url
    else:
        pg_name, url = _pg_create(database_url)
    backend = "sqlite" if is_sqlite(normalise_url(url)) else "postgresql"
    try:
        migrate.upgrade(url)
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        stderr.print(f"bench api: {backend}, {farms} farms x {days} days hourly")
        filled = _fill(url, farms=farms, days=days, birds=birds, seed=seed, end=end)
        settings = Settings(database_url=url, mount_dashboard=False, ingest_rate_per_s=1e6, ingest_burst=1_000_000)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as s:
            _, admin = new_key(s, role="admin", pepper=settings.secret())
            s.commit()
        engine.dispose()
        if backend == "sqlite":
            eng = make_engine(url)
            with eng.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
            eng.dispose()
        else:
            eng = make_engine(url)
            with eng.connect() as conn:
                conn.exec_driver_sql("COMMIT")
                conn.exec_driver_sql("ANALYZE")
            eng.dispose()
        with TestClient(create_app(settings)) as client:
            ingest = _ingest_in_process(client, _signed_reports(client, admin, filled["org_id"], ingest_reports,
                                                                birds, end))
            ingest["ingest_birds_per_report"] = birds
            live = _signed_reports(client, admin, filled["org_id"], ingest_reports, birds, end)
            q = _time_queries(client, filled["lender_key"], farms, queries, seed, end)
        ingest.update(_ingest_uvicorn(url, live))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {"backend": backend, "load_avg_1m": round(load, 2) if load is not None else None,
                "cpu_count": os.cpu_count(), "farms": farms, "days": days, "reports_in_db": filled["reports"],
                "birds_per_farm": birds, "fill_s": round(filled["fill_s"], 1),
                "history_signed": False, **ingest, "queries_each": queries, **q,
                "database": url if keep else "(dropped)"}
    finally:
        if not keep:
            if pg_name is not None and database_url is not None:
                _pg_drop(database_url, pg_name)
            if tmp is not None:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
