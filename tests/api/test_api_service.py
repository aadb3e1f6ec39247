"""Settings, migrations, CLI, health, metrics, problem+json, pagination, import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from api_testkit import T0, auth, make_tenant, post_report, rand
from pydantic import ValidationError


def test_production_refuses_default_or_missing_secret(monkeypatch) -> None:
    from api.settings import DEV_SECRET, Settings

    for key in ("FLOCKID_SECRET_KEY", "FLOCKID_MODE"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValidationError, match="FLOCKID_SECRET_KEY"):
        Settings(mode="production")
    with pytest.raises(ValidationError, match="FLOCKID_SECRET_KEY"):
        Settings(mode="production", secret_key=DEV_SECRET)
    with pytest.raises(ValidationError, match="32 characters"):
        Settings(mode="production", secret_key="short")
    monkeypatch.setenv("FLOCKID_MODE", "production")
    monkeypatch.setenv("FLOCKID_SECRET_KEY", "x" * 40)
    s = Settings()
    assert s.mode == "production" and s.secret() == b"x" * 40
    assert Settings(mode="development", secret_key=None).secret() == DEV_SECRET.encode()
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="health_haircuts"):
        Settings(health_haircuts={"ok": 1.5})


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_match_models_and_downgrade(backend, request, tmp_path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from api.db import migrate
    from api.db.engine import make_engine
    from api.db.models import Base

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        from api_env import _create_pg_database, _drop_pg_database

        name, url = _create_pg_database()
        request.addfinalizer(lambda: _drop_pg_database(name))
    migrate.upgrade(url)
    assert migrate.current(url) == "0001"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def _cli(*args: str, env_url: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from api.cli import api_app

    return CliRunner().invoke(api_app, [*args, "--database-url", env_url])


def test_cli_migrate_and_create_key(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    r = _cli("migrate", env_url=url)
    assert r.exit_code == 0 and "0001" in r.output, r.output
    r = _cli("create-key", "--role", "lender", "--org", "Bank CLI", "--json", env_url=url)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["role"] == "lender" and out["api_key"].startswith("fk_") and out["org_id"].startswith("org_")
    r = _cli("create-key", "--role", "wizard", env_url=url)
    assert r.exit_code != 0 and "wizard" in r.output
    r = _cli("create-key", "--role", "farm", env_url=url)
    assert r.exit_code != 0 and "farm" in r.output
    with TestClient(create_app(Settings(database_url=url, mount_dashboard=False))) as c:
        orgs = c.get("/v1/organizations", headers=auth(out["api_key"])).json()["items"]
        assert [o["name"] for o in orgs] == ["Bank CLI"]
    # the key is stored hashed: the secret part appears nowhere in the database file
    secret = out["api_key"].split("_", 2)[2]
    assert secret.encode() not in (tmp_path / "cli.db").read_bytes()


def test_health_metrics_problems_and_pagination(api_env) -> None:
    c = api_env.client
    assert c.get("/healthz").json() == {"status": "ok", "database": "ok"}
    t = make_tenant(c, api_env.admin_key)
    post_report(c, t.device, t.device.flock(T0))
    m = c.get("/metrics")
    assert m.status_code == 200 and 'flockid_reports_total{outcome="stored"}' in m.text
    assert 'route="/v1/reports"' in m.text
    r = c.get("/v1/nowhere", headers=auth(api_env.admin_key))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "https://flockid.dev/problems/not-found"
    r = c.post("/v1/farms", json={"name": "x", "bogus": 1}, headers=auth(t.lender_key))
    assert r.status_code == 422 and r.json()["type"].endswith("validation-error") and r.json()["errors"]
    h = auth(api_env.admin_key)
    names = [rand("Org") for _ in range(5)]
    for n in names:
        assert c.post("/v1/organizations", json={"name": n}, headers=h).status_code == 201
    assert c.post("/v1/organizations", json={"name": names[0]}, headers=h).status_code == 409
    seen, cursor = [], None
    while True:
        page = c.get("/v1/organizations", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                     headers=h).json()
        assert len(page["items"]) <= 2
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and seen == sorted(seen) and len(seen) >= 6
    all_names = {o["name"] for o in c.get("/v1/organizations", params={"limit": 500}, headers=h).json()["items"]}
    assert set(names) <= all_names
    events = c.get("/v1/audit-events", headers=auth(t.lender_key)).json()["items"]
    assert {"farm.create", "flock.create", "loan.create", "device.register"} <= {e["action"] for e in events}
    assert all(e["org_id"] == t.org_id for e in events)


def test_api_imports_no_edge_torch_or_ultralytics() -> None:
    code = ("import sys, api.app, api.cli, api.bench, api.services.ingest; "
            "bad=[m for m in sys.modules if m.split('.')[0] in ('edge','torch','ultralytics')]; print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr + r.stdout


def test_revoked_key_is_refused_at_once(api_env) -> None:
    c = api_env.client
    h = auth(api_env.admin_key)
    org = c.post("/v1/organizations", json={"name": rand("Rev")}, headers=h).json()["id"]
    made = c.post("/v1/api-keys", json={"role": "lender", "org_id": org}, headers=h).json()
    assert c.get("/v1/farms", headers=auth(made["api_key"])).status_code == 200  # now cached
    assert c.delete(f"/v1/api-keys/{made['id']}", headers=h).status_code == 204
    r = c.get("/v1/farms", headers=auth(made["api_key"]))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_create_app_mounts_the_dashboard(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.db import migrate
    from api.settings import Settings

    url = f"sqlite:///{tmp_path / 'dash.db'}"
    migrate.upgrade(url)
    with TestClient(create_app(Settings(database_url=url))) as c:
        r = c.get("/dashboard", follow_redirects=True)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
