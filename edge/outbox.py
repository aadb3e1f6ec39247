"""Store-and-forward outbox: every signed document is committed to SQLite before any upload.

Durability: WAL journal with `synchronous=FULL`, so a commit survives power loss and SIGKILL.
One `BEGIN IMMEDIATE` transaction reads the chain head (seq, hash), lets the caller build and sign
the payload for seq+1 and stores the envelope and the new head together: two writers (or a crash
between steps) can never fork the chain or reuse a sequence number.

Rows are `pending` until the API acknowledged them (201/200), then `sent`; a row the API rejected
as conflicting is `conflict` and blocks the queue (see edge.uploader). Sent rows are pruned beyond
`keep_sent`; the chain head lives in the `meta` table so pruning never loses it.

Disk policy (`pressure()`): when free disk falls below `min_free_bytes` or the outbox file grows past
`max_bytes`, callers drop optional content first (annotated JPEG snapshots, early registry
snapshots) and all sent rows are pruned; pending flock reports are never dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision.wire import SignedEnvelope, payload_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    envelope TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'conflict')),
    created_at REAL NOT NULL,
    sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state_seq ON outbox (state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    kind: str
    payload_hash: str
    envelope: SignedEnvelope
    state: str
    attempts: int
    created_at: float
    sent_at: float | None
    last_error: str | None


class Outbox:
    """Thread-safe: one connection per thread (sqlite3 connections are not shared across threads)."""

    def __init__(
        self,
        path: Path | str,
        *,
        keep_sent: int = 2000,
        max_bytes: int = 512 * 1024 * 1024,
        min_free_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.path = Path(path)
        self.keep_sent = keep_sent
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._con().executescript(_SCHEMA)

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    class _Tx:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def __enter__(self) -> sqlite3.Connection:
            self.con.execute("BEGIN IMMEDIATE")
            return self.con

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            self.con.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> Outbox._Tx:
        return Outbox._Tx(self._con())

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- chain head -------------------------------------------------------------------------------
    @staticmethod
    def _head(con: sqlite3.Connection) -> tuple[int, str | None]:
        row = con.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        if row is None:
            return -1, None
        head = json.loads(row[0])
        return int(head["seq"]), head["hash"]

    def head(self) -> tuple[int, str | None]:
        """(last seq, its payload hash); (-1, None) for a device that has written nothing yet."""
        return self._head(self._con())

    def append(
        self, build: Callable[[int, str | None], SignedEnvelope], *, meta: dict[str, Any] | None = None
    ) -> OutboxRow:
        """Allocate the next seq, call build(seq, prev_hash) -> signed envelope, store it (and the
        optional meta entries, JSON-encoded) in one transaction."""
        with self._tx() as con:
            last_seq, last_hash = self._head(con)
            seq = last_seq + 1
            env = build(seq, last_hash)
            if env.payload.get("seq") != seq or env.payload.get("prev_hash") != last_hash:
                raise ValueError(f"outbox.append: envelope must carry seq={seq} prev_hash={last_hash}")
            text = env.model_dump_json()
            h = payload_hash(env.payload)
            now = time.time()
            con.execute(
                "INSERT INTO outbox (seq, kind, payload_hash, envelope, state, created_at, size) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (seq, str(env.payload.get("kind")), h, text, now, len(text)),
            )
            con.execute(
                "INSERT INTO meta (key, value) VALUES ('head', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps({"seq": seq, "hash": h}),),
            )
            for k, v in (meta or {}).items():
                self._set_meta(con, k, v)
        return OutboxRow(seq, str(env.payload.get("kind")), h, env, "pending", 0, now, None, None)

    @staticmethod
    def _set_meta(con: sqlite3.Connection, key: str, value: Any) -> None:
        con.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def get_meta(self, key: str) -> Any:
        row = self._con().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _row(r: tuple[Any, ...]) -> OutboxRow:
        return OutboxRow(
            seq=r[0],
            kind=r[1],
            payload_hash=r[2],
            envelope=SignedEnvelope.model_validate_json(r[3]),
            state=r[4],
            attempts=r[5],
            created_at=r[6],
            sent_at=r[7],
            last_error=r[8],
        )

    _COLS = "seq, kind, payload_hash, envelope, state, attempts, created_at, sent_at, last_error"

    def next_unsent(self) -> OutboxRow | None:
        """The lowest-seq row not yet acknowledged (pending or conflict): uploads go strictly in order."""
        r = (
            self._con()
            .execute(f"SELECT {self._COLS} FROM outbox WHERE state != 'sent' ORDER BY seq LIMIT 1")
            .fetchone()
        )
        return None if r is None else self._row(r)

    def rows(self, *, state: str | None = None) -> Iterator[OutboxRow]:
        sql = f"SELECT {self._COLS} FROM outbox"
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        for r in self._con().execute(sql + " ORDER BY seq", args).fetchall():
            yield self._row(r)

    def envelopes(self) -> list[SignedEnvelope]:
        return [r.envelope for r in self.rows()]

    def backlog(self) -> int:
        return int(self._con().execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()[0])

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "sent": 0, "conflict": 0}
        for state, n in self._con().execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
            out[state] = int(n)
        return out

    def last_sent_at(self) -> float | None:
        v = self.get_meta("last_sent_at")
        return None if v is None else float(v)

    # -- state changes ----------------------------------------------------------------------------
    def mark_sent(self, seq: int) -> None:
        now = time.time()
        with self._tx() as con:
            con.execute("UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL WHERE seq = ?", (now, seq))
            self._set_meta(con, "last_sent_at", now)

    def mark_attempt(self, seq: int, error: str | None, *, conflict: bool = False) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, state = ? WHERE seq = ?",
                ((error or "")[:2000] or None, "conflict" if conflict else "pending", seq),
            )

    def requeue_from(self, seq: int) -> int:
        """Mark rows >= seq pending again (the API lost them); returns how many were requeued."""
        with self._tx() as con:
            cur = con.execute("UPDATE outbox SET state = 'pending' WHERE seq >= ? AND state = 'sent'", (seq,))
            return int(cur.rowcount)

    def has_seq(self, seq: int) -> bool:
        return self._con().execute("SELECT 1 FROM outbox WHERE seq = ?", (seq,)).fetchone() is not None

    # -- disk -------------------------------------------------------------------------------------
    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def free_bytes(self) -> int:
        return int(shutil.disk_usage(self.path.parent).free)

    def pressure(self) -> bool:
        """True when optional content (JPEG snapshots, early registry snapshots) should be dropped."""
        return self.free_bytes() < self.min_free_bytes or self.file_bytes() > self.max_bytes

    def prune(self) -> int:
        """Delete sent rows beyond keep_sent (all sent rows under disk pressure); returns rows deleted."""
        keep = 0 if self.pressure() else self.keep_sent
        with self._tx() as con:
            cur = con.execute(
                "DELETE FROM outbox WHERE state = 'sent' AND seq NOT IN "
                "(SELECT seq FROM outbox WHERE state = 'sent' ORDER BY seq DESC LIMIT ?)",
                (keep,),
            )
            n = int(cur.rowcount)
        if n:
            self._con().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n


def open_readonly_envelopes(path: Path) -> list[SignedEnvelope]:
    """All envelopes of an outbox file in seq order, without creating or modifying it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such outbox")
    uri = f"file:{os.path.abspath(path)}?mode=ro"
    con = sqlite3.connect(uri, uri=True)
    try:
        rows = con.execute("SELECT envelope FROM outbox ORDER BY seq").fetchall()
    finally:
        con.close()
    return [SignedEnvelope.model_validate_json(r[0]) for r in rows]
