"""Atomic ingest: kill -9 a real uvicorn server while reports stream in, restart, resend everything:
each report is stored exactly once and the chain verifies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import httpx
import pytest
from api_testkit import T0, auth, bird, make_tenant

N_REPORTS = 80


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "FLOCKID_DATABASE_URL": url, "FLOCKID_MOUNT_DASHBOARD": "false",
           "FLOCKID_INGEST_RATE_PER_S": "100000", "FLOCKID_INGEST_BURST": "100000"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("uvicorn did not start within 60 s")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_mid_ingest_then_resend(backend, request, tmp_path) -> None:
    from api_env import build_env

    url = f"sqlite:///{tmp_path / 'kill.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    env = build_env(backend, url)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
    dev = t.device
    envelopes = [dev.flock(T0 + timedelta(minutes=i), headcount=500, birds=[bird(k, T0) for k in range(10)])
                 for i in range(N_REPORTS)]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(url, port)
    stored_before_kill: list[int] = []
    errors: list[str] = []

    def send() -> None:
        with httpx.Client(timeout=10) as http:
            for e in envelopes:
                try:
                    r = http.post(f"{base}/v1/reports", json=e, headers=auth(dev.api_key))
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    return
                if r.status_code == 201:
                    stored_before_kill.append(r.json()["seq"])

    sender = threading.Thread(target=send)
    sender.start()
    try:
        deadline = time.time() + 60
        while len(stored_before_kill) < 20 and time.time() < deadline and sender.is_alive():
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        proc.wait(timeout=10)
        sender.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 20 <= len(stored_before_kill) < N_REPORTS, "the kill must land mid-ingest"
    assert errors, "the sender should have seen the connection die"
    proc = _start(url, port)
    try:
        codes = []
        with httpx.Client(timeout=10) as http:
            for e in envelopes:
                codes.append(http.post(f"{base}/v1/reports", json=e, headers=auth(dev.api_key)).status_code)
            assert set(codes) <= {200, 201}, codes
            # everything the first server acknowledged is a duplicate now
            assert all(codes[s] == 200 for s in stored_before_kill)
            v = http.get(f"{base}/v1/devices/{dev.device_id}/chain/verify", headers=auth(t.lender_key)).json()
        assert v["ok"] and v["reports"] == N_REPORTS and v["last_seq"] == N_REPORTS - 1, v
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    from sqlalchemy import func, select

    from api.db.engine import make_engine, make_sessionmaker
    from api.db.models import Report

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            n = s.scalar(select(func.count()).select_from(Report).where(Report.device_id == dev.device_id))
            distinct = s.scalar(select(func.count(func.distinct(Report.seq))).where(Report.device_id == dev.device_id))
    finally:
        engine.dispose()
    assert n == distinct == N_REPORTS
