"""`POST /v1/reports` on the hot path: a plain ASGI handler in front of FastAPI's routing.

Devices send hundreds of reports a second to one process; per report, FastAPI's route matching,
dependency solving, request/response wrappers and exception middleware cost about an eighth of its
CPU (profiled on `flockid bench api`). This handler serves exactly `POST /v1/reports`
with the same work (`handle_report`, which the documented FastAPI route in `api.routers.devices`
also calls) and the same error rendering (the app's own exception handlers), and passes every other
request on untouched. It sits inside the body-size limit and the metrics middleware, so both still
apply to it."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect, Request

from api.errors import ProblemError
from api.services.auth import authenticate
from api.services.ingest import ingest

INGEST_PATH = "/v1/reports"
_JSON = (b"content-type", b"application/json")


def _route_path(scope: dict[str, Any]) -> str:
    """The path the app routes on: without the root path a proxy mounts it under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def bearer_header(authorization: str | None) -> str | None:
    """What `HTTPBearer(auto_error=False)` passes on: `Bearer <token>` for a bearer header, else None
    (authentication then answers 401 and names what is missing)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return f"{scheme} {token}"


class WriterLock:
    """One SQLite writer of this process at a time, queued on a lock that hands over the moment a commit
    ends (SQLite's busy handler would poll with 1-100 ms sleeps). A writer that gets no turn within
    timeout_s gives up as SQLite's busy timeout would: OperationalError, answered 503 database-busy."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self.timeout_s):
            raise OperationalError("ingest writer lock", None,
                                   TimeoutError(f"database is locked: no turn to write within {self.timeout_s:g} s"))

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class IngestWorkers:
    """The threads that run `handle_report`: a plain executor (asyncio's `run_in_executor`), cheaper per
    call than the shared AnyIO thread pool FastAPI uses for sync endpoints, and sized on its own so a
    burst of reports cannot take every thread the other endpoints need. For SQLite it also holds the
    process's `WriterLock`. With threads=0 reports are handled on the event loop itself: a report is
    CPU-bound under the GIL either way, and the two thread hand-offs per report (futex ping-pong between
    the loop and the worker) were a fifth of the server's CPU on SQLite; the price is that the loop
    waits whenever another endpoint holds SQLite's write lock."""

    def __init__(self, threads: int, *, sqlite: bool) -> None:
        if threads < 0:
            raise ValueError(f"IngestWorkers: threads must be >= 0, got {threads}")
        self.threads = threads
        # SQLite's busy timeout (api.db.engine) is 30 s; waiting for a turn here counts against the same.
        self.write_lock: WriterLock | None = WriterLock(30.0) if sqlite else None
        self._executor: ThreadPoolExecutor | None = None
        self._guard = threading.Lock()

    async def run(self, fn: Any, *args: Any) -> Any:
        if self.threads == 0:
            return fn(*args)  # inline (see the class docstring)
        executor = self._executor
        if executor is None:
            with self._guard:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ingest")
                executor = self._executor
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def close(self) -> None:
        """Wait for reports in progress and stop the threads (a later `run` starts new ones)."""
        with self._guard:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@dataclass(frozen=True)
class IngestReply:
    status: int
    body: bytes
    location: str


def handle_report(state: Any, header: str | None, raw: bytes) -> IngestReply:
    """Authenticate, ingest and count one report (blocking: run it in a worker thread). Raises
    ProblemError and database errors for the app's exception handlers to render."""
    metrics = state.metrics
    # One session for auth and ingest: no separate dependency session on the hot path.
    session = state.sessionmaker()
    try:
        principal = authenticate(session, header, state.settings.secret())
        result = ingest(session, state.settings, principal, raw, state.rate_limiter,
                        write_lock=state.ingest_workers.write_lock)
    except ProblemError as exc:
        metrics.count_report(exc.slug)
        raise
    finally:
        session.close()
    metrics.count_report("stored" if result.status == 201 else "duplicate")
    if result.alert_ids:
        state.webhooks.notify(result.alert_ids)
    body = json.dumps({"report_id": result.report_id, "device_id": result.device_id, "seq": result.seq,
                       "kind": result.kind, "payload_hash": result.payload_hash,
                       "duplicate": result.status == 200, "alert_ids": result.alert_ids},
                      ensure_ascii=False, separators=(",", ":")).encode()
    return IngestReply(result.status, body, f"{INGEST_PATH}/{result.report_id}")


class IngestFastPath:
    """ASGI middleware serving `POST /v1/reports` (see the module docstring). `fastapi_app` gives the
    state and the exception handlers; `route` is the documented FastAPI route, set as the request's
    route so metrics label it as routing would."""

    def __init__(self, app: Any, fastapi_app: Any, route: Any) -> None:
        if getattr(route, "path", None) != INGEST_PATH or "POST" not in getattr(route, "methods", ()):
            raise ValueError(f"IngestFastPath: route must be the POST {INGEST_PATH} route, got {route!r}")
        self.app, self.fastapi_app, self.route = app, fastapi_app, route
        self._handlers: dict[Any, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != INGEST_PATH:
            await self.app(scope, receive, send)
            return
        if self._handlers is None:
            # Exception (500) stays with ServerErrorMiddleware, exactly as Starlette splits them.
            self._handlers = {k: v for k, v in self.fastapi_app.exception_handlers.items()
                              if k not in (500, Exception)}
        scope["route"] = self.route
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            state = self.fastapi_app.state
            reply = await state.ingest_workers.run(handle_report, state, bearer_header(authorization), raw)
        except Exception as exc:
            # As Starlette's ExceptionMiddleware does: the app's handler for the exception's class, else
            # on to ServerErrorMiddleware (500, logged).
            handler = next((self._handlers[c] for c in type(exc).__mro__ if c in self._handlers), None)
            if handler is None:
                raise
            request = Request(scope, receive)
            response: Any
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(b"content-length", str(len(reply.body)).encode()), _JSON,
                                (b"location", reply.location.encode())]})
        await send({"type": "http.response.body", "body": reply.body})
