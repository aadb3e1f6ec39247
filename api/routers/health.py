"""Liveness/readiness and Prometheus metrics (unauthenticated, outside /v1)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok", "database": "ok"})
    except Exception as exc:  # any driver error means not ready; the message says which
        return JSONResponse({"status": "error", "database": str(exc)[:200]}, status_code=503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    data, content_type = request.app.state.metrics.render()
    return Response(content=data, media_type=content_type)
