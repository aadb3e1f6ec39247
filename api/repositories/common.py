"""Helpers shared by repositories: ids, portable upserts, cursor pagination."""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from api.errors import Unprocessable


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def upsert(session: Session, model: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update: Sequence[str], keep_existing: Sequence[str] = ()) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on SQLite and PostgreSQL alike.

    Columns in keep_existing keep their stored value when it is not null (e.g. first_seen)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = _upsert_statement(dialect, model.__table__, tuple(keys), tuple(update), tuple(keep_existing))
    # executemany over one prebuilt statement: ingest calls this for every report.
    session.connection().execute(stmt, list(rows))


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


def page(items: list[Any], limit: int, key: Any) -> tuple[list[Any], str | None]:
    """Items were fetched with limit+1: trim and build the next cursor from the last kept key."""
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor(key(items[-1]))
    return items, None
