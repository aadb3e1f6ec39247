"""The lender API, built by `create_app(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import PROBLEM_MEDIA_TYPE, ProblemError, problem
from api.settings import Settings

log = logging.getLogger("flockid.api")

_STATUS_SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                 405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 413: "request-too-large",
                 415: "unsupported-media-type", 422: "validation-error", 429: "rate-limited"}


def _problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in list(errors)[:50]:
        out.append({"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _domain(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 429 and "retry_after_s" in exc.extra:
            headers = {"Retry-After": str(max(1, round(float(exc.extra["retry_after_s"]) + 0.5)))}
        return _problem_response(exc.status, exc.to_problem(str(request.url.path)), headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _STATUS_SLUGS.get(exc.status_code, "http-error")
        body = problem(exc.status_code, slug, slug.replace("-", " ").capitalize(), str(exc.detail))
        body["instance"] = str(request.url.path)
        return _problem_response(exc.status_code, body, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = problem(422, "validation-error", "Request does not match the schema",
                       "see `errors` for each invalid field", errors=_jsonable_errors(exc.errors()))
        body["instance"] = str(request.url.path)
        return _problem_response(422, body)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL byte or an out-of-range number that PostgreSQL refuses: the input's fault, not ours.
        body = problem(422, "invalid-data", "The database refused a value",
                       str(getattr(exc, "orig", exc)).splitlines()[0][:300])
        body["instance"] = str(request.url.path)
        return _problem_response(422, body)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # A number or date beyond what the database or datetime arithmetic can hold came from the input.
        body = problem(422, "value-out-of-range", "A value is out of range", str(exc)[:300])
        body["instance"] = str(request.url.path)
        return _problem_response(422, body)

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite answers "database is locked" when a read-then-write transaction loses a race; the
        # request did nothing and can be retried.
        log.warning("database operational error on %s: %s", request.url.path, exc.orig)
        body = problem(503, "database-busy", "Database busy", "the database is busy; retry shortly")
        body["instance"] = str(request.url.path)
        return _problem_response(503, body, {"Retry-After": "1"})

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        body = problem(409, "conflict", "Conflicts with existing data", "a unique or foreign key constraint failed")
        body["instance"] = str(request.url.path)
        return _problem_response(409, body)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem(500, "internal-error", "Internal server error", "unexpected error; it has been logged")
        return _problem_response(500, body)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The database schema must exist (`flockid api migrate`); nothing is created here."""
    from api.db.engine import make_engine, make_sessionmaker
    from api.ingest_endpoint import INGEST_PATH, IngestFastPath, IngestWorkers
    from api.metrics import Metrics
    from api.middleware import BodyLimitMiddleware, MetricsMiddleware
    from api.routers import admin, alerts, devices, farms, flocks, health, loans
    from api.services.ingest import TokenBuckets
    from api.webhooks import WebhookDispatcher

    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.scan_interval_s > 0:
            task = asyncio.create_task(_scan_loop(app, settings.scan_interval_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.webhooks.close()
            app.state.ingest_workers.close()
            engine.dispose()

    app = FastAPI(
        title="FlockID lender API",
        version="1.0.0",
        description="Signed flock reports from farm cameras turned into headcount, collateral value and alerts. "
                    "Errors are RFC 9457 problem+json with `type` = https://flockid.dev/problems/<slug>. "
                    "Lists use cursor pagination (`limit`, `cursor` -> `next_cursor`).",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.metrics = Metrics()
    app.state.rate_limiter = TokenBuckets(settings.ingest_rate_per_s, settings.ingest_burst)
    sqlite = engine.dialect.name == "sqlite"
    threads = settings.ingest_threads if settings.ingest_threads is not None else (0 if sqlite else 8)
    app.state.ingest_workers = IngestWorkers(threads, sqlite=sqlite)
    app.state.webhooks = WebhookDispatcher(sessionmaker, settings.secret(), timeout_s=settings.webhook_timeout_s,
                                           retries=settings.webhook_retries)
    install_error_handlers(app)
    for module in (health, admin, farms, devices, flocks, loans, alerts):
        app.include_router(module.router)
    if settings.mount_dashboard:
        from api.dashboard import mount_dashboard

        mount_dashboard(app)
    # Added innermost first: the size limit refuses big bodies before anything else reads them, the
    # metrics see every request, and ingest's fast path runs inside both.
    app.add_middleware(IngestFastPath, fastapi_app=app, route=next(
        r for r in devices.router.routes
        if getattr(r, "path", None) == INGEST_PATH and "POST" in getattr(r, "methods", ())))
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


async def _scan_loop(app: FastAPI, interval: float) -> None:
    from fastapi.concurrency import run_in_threadpool

    from api.services.scan import run_scan

    def once() -> list[int]:
        with app.state.sessionmaker() as session:
            return [a.id for a in run_scan(session, app.state.settings)]

    while True:
        await asyncio.sleep(interval)
        try:
            ids = await run_in_threadpool(once)
            app.state.webhooks.notify(ids)
        except Exception:  # a failed scan must not kill the loop; the next one retries
            log.exception("alert scan failed")
