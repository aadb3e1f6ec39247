"""A tiny but honest implementation of the edge<->api contract for the edge tests (until/besides the
real API): POST /v1/reports verifies the Bearer key and the signature, is idempotent on
(device_id, seq) (200 exact duplicate, 409 conflicting duplicate), and enforces the chain in order
(409 gap with expected_seq, 409 prev-hash mismatch). Storage is SQLite, so it survives restarts.
GET /test/reports lists stored envelopes in order; GET /test/stats gives response counts.

Run: python edge_fake_api.py PORT DB_PATH PUBLIC_KEY_PEM API_KEY
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vision.wire import SignedEnvelope, load_public_key, parse_payload, payload_hash, verify_envelope

P = "https://flockid.dev/problems/"


def main() -> None:
    port, db, pem, api_key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    pub = load_public_key(Path(pem).read_bytes())
    con = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS reports (device TEXT, seq INTEGER, hash TEXT, envelope TEXT, "
        "PRIMARY KEY (device, seq))"
    )
    con.execute("CREATE TABLE IF NOT EXISTS stats (code INTEGER PRIMARY KEY, n INTEGER)")
    lock = threading.RLock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, doc: Any, ctype: str = "application/json") -> None:
            body = json.dumps(doc).encode()
            if self.command == "POST":  # counted when decided, even if the client is gone before the answer
                with lock:
                    con.execute("INSERT INTO stats VALUES (?, 1) ON CONFLICT (code) DO UPDATE SET n = n + 1", (code,))
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _problem(self, code: int, slug: str, detail: str, **extra: Any) -> None:
            self._send(
                code,
                {"type": P + slug, "title": slug, "status": code, "detail": detail, **extra},
                "application/problem+json",
            )

        def do_GET(self) -> None:
            if self.path == "/test/reports":
                with lock:
                    rows = con.execute("SELECT envelope FROM reports ORDER BY device, seq").fetchall()
                self._send(200, [json.loads(r[0]) for r in rows])
            elif self.path == "/test/stats":
                with lock:
                    stats = {str(c): n for c, n in con.execute("SELECT code, n FROM stats")}
                self._send(200, stats)
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            if self.path != "/v1/reports":
                return self._send(404, {})
            if self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._problem(401, "unauthenticated", "bad api key")
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                env = SignedEnvelope.model_validate_json(raw)
                doc = parse_payload(env.payload)
            except ValueError as exc:
                return self._problem(422, "unprocessable", str(exc)[:300])
            try:
                verify_envelope(env, pub)
            except ValueError as exc:
                return self._problem(403, "bad-signature", str(exc))
            h = payload_hash(env.payload)
            with lock:
                row = con.execute(
                    "SELECT hash FROM reports WHERE device = ? AND seq = ?", (doc.device_id, doc.seq)
                ).fetchone()
                if row is not None:
                    if row[0] == h:
                        return self._send(200, {"seq": doc.seq, "duplicate": True})
                    return self._problem(409, "conflicting-duplicate", f"seq {doc.seq} stored with another payload")
                last = con.execute(
                    "SELECT seq, hash FROM reports WHERE device = ? ORDER BY seq DESC LIMIT 1", (doc.device_id,)
                ).fetchone()
                expected = 0 if last is None else last[0] + 1
                if doc.seq != expected:
                    return self._problem(409, "chain-gap", f"expected seq {expected}", expected_seq=expected)
                if last is not None and doc.prev_hash != last[1]:
                    return self._problem(409, "prev-hash-mismatch", "prev_hash does not match")
                con.execute(
                    "INSERT INTO reports VALUES (?, ?, ?, ?)", (doc.device_id, doc.seq, h, env.model_dump_json())
                )
            return self._send(201, {"seq": doc.seq})

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # Clients killed mid-request (the SIGKILL test) are expected; anything else is printed.
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
