"""API fixtures: every app-level test runs on SQLite and on the real PostgreSQL server.

PostgreSQL: one fresh database per test session (`flockid_test_<random>`), schema created by the
Alembic migrations, dropped at the end. Test data uses random names/ids, so tests share a database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from api_env import PG_ADMIN_URL, ApiEnv, _create_pg_database, _drop_pg_database, build_env


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        name, url = _create_pg_database()
    except Exception as exc:  # pragma: no cover - environment problem, say which
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for the api tests: {exc}")
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('apidb') / 'flockid.db'}"


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_env(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[ApiEnv]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    env = build_env(request.param, url)
    with env.client:
        yield env


@pytest.fixture()
def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="session")
def api_root() -> Path:
    return Path(__file__).resolve().parents[2] / "api"
