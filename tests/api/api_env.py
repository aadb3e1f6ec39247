"""Building blocks of the API test environment (a uniquely named module: test files import it,
since `conftest` is ambiguous when several test folders have one)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

PG_ADMIN_URL = os.environ.get("FLOCKID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class ApiEnv:
    backend: str
    url: str
    client: Any
    app: Any
    admin_key: str


def _create_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"flockid_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_env(backend: str, url: str, **settings_kw: Any) -> ApiEnv:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.db import migrate
    from api.db.engine import make_engine, make_sessionmaker
    from api.services.auth import new_key
    from api.settings import Settings

    migrate.upgrade(url)
    settings_kw.setdefault("ingest_rate_per_s", 1e6)
    settings_kw.setdefault("ingest_burst", 1_000_000)
    settings = Settings(database_url=url, mount_dashboard=False, **settings_kw)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        _, key = new_key(session, role="admin", pepper=settings.secret(), label="tests")
        session.commit()
    engine.dispose()
    app = create_app(settings)
    client = TestClient(app, raise_server_exceptions=True)
    return ApiEnv(backend, url, client, app, key)
