"""Engine and session factory for SQLite (default, zero set-up) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


_one_name: dict[str, str] = {}


def json_dumps(value: Any) -> str:
    """`json.dumps` (same text) with a memo for one-string lists: every bird row of every report
    carries its camera list, usually one camera, and encoding those was a tenth of ingest's CPU."""
    if type(value) is list and len(value) == 1 and type(value[0]) is str:
        text = _one_name.get(value[0])
        if text is None:
            if len(_one_name) > 4096:
                _one_name.clear()
            text = _one_name[value[0]] = json.dumps(value)
        return text
    return json.dumps(value)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    if not (is_sqlite(url) or url.startswith("postgresql+psycopg://")):
        raise ValueError(f"database_url {url!r}: use sqlite:///path.db or postgresql+psycopg://...")
    if is_sqlite(url):
        # LIFO: ingest's writes are serialised (IngestWorkers' lock) and each commit hands its connection
        # back before the next writer checks one out, so they all reuse one connection. A connection
        # that sees another connection's commit discards its whole page cache (WAL read-transaction
        # start) and re-reads pages with pread: round-robin over the pool cost ~150 reads a report.
        kwargs.setdefault("pool_use_lifo", True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is broken for SAVEPOINT and DDL; we issue BEGIN
            # ourselves. Writers that read-check-write (ingest) start with a write to take the lock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # On the driver connection: SQLAlchemy's statement execution set-up cost more than BEGIN.
            dbapi_error = engine.dialect.loaded_dbapi.Error
            try:
                conn.connection.dbapi_connection.execute("BEGIN")
            except dbapi_error as exc:
                raise DBAPIError.instance("BEGIN", (), exc, dbapi_error, dialect=engine.dialect) from exc

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
