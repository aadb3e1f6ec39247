"""A local lender API for the demo and the end-to-end tests: migrated database, an admin key,
uvicorn serving the real app on a free localhost port in a thread, and an HTTP client that enrols
lenders, farms, flocks, loans and devices the way any API user would.

Nothing here reaches into the edge: devices are enrolled over HTTP with a public key, and the edge
uploads through its own uploader.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError(f"datetime {ts!r} has no time zone")
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class ApiCallError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class Tenant:
    """One lender with one farm, flock and loan; `device_*` set once a device is enrolled."""

    org_id: str
    lender_key: str
    farm_id: str
    flock_id: str
    loan_id: str
    farm_key: str


class LocalApi:
    """The real FastAPI app on 127.0.0.1:<port>, backed by a SQLite file (or any database URL)."""

    def __init__(self, workdir: Path, *, port: int = 0, database_url: str | None = None,
                 settings_overrides: dict[str, Any] | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.database_url = database_url or f"sqlite:///{(self.workdir / 'flockid.db').resolve()}"
        self.overrides = dict(settings_overrides or {})
        self.admin_key = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._client: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LocalApi:
        import httpx
        import uvicorn

        from api.app import create_app
        from api.db.engine import make_engine, make_sessionmaker
        from api.db.migrate import upgrade
        from api.services.auth import new_key
        from api.settings import Settings

        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = Settings(database_url=self.database_url, **self.overrides)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            with make_sessionmaker(engine)() as session:
                _row, self.admin_key = new_key(session, role="admin", pepper=settings.secret(), label="demo admin")
                session.commit()
        finally:
            engine.dispose()
        app = create_app(settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="flockid-api", daemon=True)
        self._thread.start()
        self._client = httpx.Client(base_url=self.url, timeout=30.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"the API server on port {self.port} exited during start-up")
            try:
                if self._client.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the API on {self.url} did not answer /healthz within {timeout_s:g} s")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the CLI)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

    # ---- HTTP -----------------------------------------------------------------------------------
    def call(self, method: str, path: str, key: str | None = None, *, json: Any = None,
             params: dict[str, Any] | None = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        if self._client is None:
            raise RuntimeError("LocalApi.call before start()")
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        res = self._client.request(method, path, json=json, params=params, headers=headers)
        if res.status_code not in expect:
            raise ApiCallError(method, path, res.status_code, res.text)
        if res.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
            return res.json()
        return res.content

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        return self.call("GET", path, key, params={k: v for k, v in params.items() if v is not None})

    def items(self, path: str, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(path, key, limit=500, cursor=cursor, **params)
            out.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    # ---- enrolment ------------------------------------------------------------------------------
    def enrol_tenant(self, *, lender: str, farm: str, placed_at: datetime, placed_count: int,
                     principal: float, price_per_kg: float = 2.0, currency: str = "USD",
                     ltv_limit: float = 0.8, location: str = "", breed: str = "broiler") -> Tenant:
        """A lender organisation with its key, one farm (priced per kg), a flock and a loan on it."""
        org = self.call("POST", "/v1/organizations", json={"name": lender})
        lender_key = self.call("POST", "/v1/api-keys",
                               json={"role": "lender", "org_id": org["id"], "label": f"{lender} dashboard"})["api_key"]
        farm_row = self.call("POST", "/v1/farms", lender_key, json={
            "name": farm, "owner_name": f"{farm} owner", "location": location, "breed": breed,
            "price_source": "farm", "price_per_kg": price_per_kg, "currency": currency})
        flock = self.call("POST", "/v1/flocks", lender_key, json={
            "farm_id": farm_row["id"], "name": f"{farm} flock 1", "breed": breed, "placed_at": iso(placed_at),
            "placed_count": placed_count})
        loan = self.call("POST", "/v1/loans", lender_key, json={
            "flock_id": flock["id"], "reference": f"{lender[:12]}-{farm[:12]}".replace(" ", "-"),
            "principal": principal, "currency": currency, "start_date": iso(placed_at), "ltv_limit": ltv_limit})
        farm_key = self.call("POST", "/v1/api-keys",
                             json={"role": "farm", "farm_id": farm_row["id"], "label": f"{farm} farm"})["api_key"]
        return Tenant(org["id"], lender_key, farm_row["id"], flock["id"], loan["id"], farm_key)

    def enrol_device(self, tenant: Tenant, device_id: str, public_key_pem: str) -> str:
        """Register the edge box's public key with its farm (as the farm would); returns its API key."""
        row = self.call("POST", "/v1/devices", tenant.farm_key, json={
            "device_id": device_id, "farm_id": tenant.farm_id, "public_key_pem": public_key_pem,
            "label": f"edge box {device_id}"})
        key: str = row["api_key"]
        return key

    def alerts(self, key: str, **params: Any) -> list[dict[str, Any]]:
        return self.items("/v1/alerts", key, **params)
