"""Helpers shared by repositories: ids, portable upserts, cursor pagination."""

from __future__ import annotations

import base64
import binascii
import functools
import operator
import secrets
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session

from api.errors import Unprocessable


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def upsert(session: Session | Connection, model: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update: Sequence[str], keep_existing: Sequence[str] = ()) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on SQLite and PostgreSQL alike (session: a Session, or
    the Connection of its transaction).

    Columns in keep_existing keep their stored value when it is not null (e.g. first_seen)."""
    if not rows:
        return
    conn = session if isinstance(session, Connection) else session.connection()
    stmt = _upsert_statement(conn.dialect.name, model.__table__, tuple(keys), tuple(update), tuple(keep_existing))
    # executemany over one prebuilt statement, as driver SQL: ingest calls this for every report.
    driver_execute(conn, stmt, rows)


def driver_execute(conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]] | dict[str, Any]) -> Any:
    """Execute a Core statement (one parameter dict, or many for executemany) as driver SQL compiled
    once per (dialect, statement, parameter keys). Per execution SQLAlchemy re-derives parameters and
    result set-up for every statement; on the ingest hot path that cost more than SQLite itself.
    Values still pass through each column type's bind processor (UTC datetimes, JSON)."""
    first = rows if isinstance(rows, dict) else rows[0]
    plan = _driver_sql(conn.dialect, stmt, tuple(first))
    convert = plan.convert
    if isinstance(rows, dict):
        return driver_sql(conn, plan.sql, convert(rows))
    return driver_sql(conn, plan.sql, [convert(r) for r in rows], many=True)


class DriverRows:
    """The rows a driver statement returned, with the few Result methods callers use."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def all(self) -> list[Any]:
        return self.rows

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise NoResultFound("no row") if not self.rows else MultipleResultsFound("more than one row")
        return self.rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


def driver_sql(conn: Connection, sql: str, params: Any, *, many: bool = False) -> DriverRows:
    """Run SQL text on the DBAPI cursor of conn's transaction: SQLAlchemy's own execution set-up cost
    as much as SQLite's work for the short statements of ingest. Driver errors are raised wrapped,
    as SQLAlchemy would (so `sqlalchemy.exc.IntegrityError` still marks a concurrent duplicate)."""
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is None:
        raise RuntimeError("driver_sql: the connection is closed")
    cur = dbapi_conn.cursor()
    try:
        if many:
            cur.executemany(sql, params)
        else:
            cur.execute(sql, params)
        return DriverRows(list(cur.fetchall()) if cur.description is not None else [])
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error,
                                  dialect=conn.dialect) from exc
    finally:
        cur.close()


class _DriverPlan:
    """A statement compiled for the driver: its SQL text and the function that turns one row dict into
    the driver's parameters (bind processors applied, binds the caller does not pass filled in)."""

    def __init__(self, sql: str, spec: tuple[tuple[str, Any], ...], defaults: dict[str, Any], positional: bool
                 ) -> None:
        self.sql = sql
        self.convert: Any
        names = tuple(n for n, _ in spec)
        procs = tuple((i, proc) for i, (_, proc) in enumerate(spec) if proc is not None)
        if positional and names and not defaults:
            # Per-row work in C where it can be: one itemgetter pulls every value (ingest binds ~300
            # a report), then only the columns with a processor are touched.
            getter = operator.itemgetter(*names)
            single = len(names) == 1

            def convert(row: dict[str, Any]) -> Any:
                values = getter(row)
                if single:  # itemgetter of one name gives the value itself
                    values = (values,)
                if not procs:
                    return values
                out = list(values)
                for i, proc in procs:
                    out[i] = proc(out[i])
                return out
        elif positional:
            def convert(row: dict[str, Any]) -> Any:
                if defaults:
                    row = {**defaults, **row}
                return tuple([row[n] if proc is None else proc(row[n]) for n, proc in spec])
        else:
            def convert(row: dict[str, Any]) -> Any:
                if defaults:
                    row = {**defaults, **row}
                return {n: row[n] if proc is None else proc(row[n]) for n, proc in spec}
        self.convert = convert


@functools.lru_cache(maxsize=128)
def _driver_sql(dialect: Any, stmt: Any, keys: tuple[str, ...]) -> _DriverPlan:
    """The driver plan of stmt for rows with these keys: SQL text, (name, bind processor or None) per
    parameter in order, and the values of binds the caller does not pass."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup if compiled.positional else dict.fromkeys(compiled.bind_names.values()))
    by_name = {compiled.bind_names[b]: b for b in compiled.binds.values()}
    processors = compiled._bind_processors
    spec = tuple((n, processors.get(n)) for n in names)
    defaults = {n: by_name[n].effective_value for n in names if n in by_name and n not in keys}
    return _DriverPlan(compiled.string, spec, defaults, bool(compiled.positional))


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: Any, keys: tuple[str, ...], update: tuple[str, ...],
                      keep_existing: tuple[str, ...]) -> Any:
    from sqlalchemy import func

    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise ValueError(f"upsert: unsupported dialect {dialect}")
    stmt = insert(table)
    set_: dict[str, Any] = {c: stmt.excluded[c] for c in update}
    for c in keep_existing:
        set_[c] = func.coalesce(table.c[c], stmt.excluded[c])
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)


def encode_cursor(value: str | int) -> str:
    raw = f"{type(value).__name__[0]}:{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type) -> Any:
    """Cursors are opaque to clients: base64 of the last key seen. A bad one is a 422 naming it."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, value = raw.partition(":")
        if kind is int and tag == "i" and abs(int(value)) < 2**63:
            return int(value)
        if kind is str and tag == "s":
            return value
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Unprocessable(f"cursor {cursor[:40]!r} is not a cursor this endpoint issued", slug="invalid-cursor")


def keyset_page(session: Session, query: Select[Any], key: Any, *, limit: int, cursor: str | None,
                descending: bool = False) -> tuple[list[Any], str | None]:
    """One page of the entities `query` selects, in `key` order (an ORM column attribute, unique within
    the query), starting after the key the cursor names (before it when descending). Returns the items
    and the next page's cursor (None on the last page).

    Keyset, not OFFSET: a page costs the same however deep it is, and rows inserted meanwhile neither
    repeat nor vanish. One row past the limit is fetched to know whether another page follows."""
    if limit < 1:
        raise ValueError(f"keyset_page: limit must be >= 1, got {limit}")
    kind = key.type.python_type
    if kind not in (int, str):
        raise ValueError(f"keyset_page: key {key} must be an int or str column, not {kind.__name__}")
    bound = decode_cursor(cursor, kind)
    query = query.order_by(key.desc() if descending else key).limit(limit + 1)
    if bound is not None:
        query = query.where(key < bound if descending else key > bound)
    items = list(session.scalars(query))
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor(getattr(items[-1], key.key))
    return items, None
