"""Alerts: list, read, acknowledge; an admin-triggered scan for the periodic rules."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Alert
from api.deps import DbId, PageParams, get_principal, get_session, get_settings, page_params
from api.errors import NotFound
from api.repositories.common import keyset_page
from api.routers import problems
from api.schemas.common import Page
from api.schemas.lending import AlertPublic
from api.services import audit
from api.services.alerts import ALERT_KINDS
from api.services.auth import Principal, require_role
from api.services.scan import run_scan
from api.settings import Settings

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
KIND_PATTERN = "^(" + "|".join(ALERT_KINDS) + ")$"


def _scoped(p: Principal):  # type: ignore[no-untyped-def]
    q = select(Alert)
    if p.role == "lender":
        q = q.where(Alert.org_id == p.org_id)
    elif p.role == "farm":
        # Farm operators see their farm's operational alerts, never loan-level ones.
        q = q.where(Alert.farm_id == p.farm_id, Alert.loan_id.is_(None))
    elif p.role != "admin":
        q = q.where(Alert.id < 0)
    return q


@router.get("", response_model=Page[AlertPublic], responses=problems(403))
def list_alerts(status: str | None = Query(None, pattern="^(open|acknowledged|resolved)$"),
                kind: str | None = Query(None, pattern=KIND_PATTERN),
                farm_id: str | None = Query(None, max_length=40), loan_id: str | None = Query(None, max_length=40),
                p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                pp: PageParams = Depends(page_params)) -> dict:
    """Newest first."""
    require_role(p, "admin", "lender", "farm")
    q = _scoped(p)
    if status is not None:
        q = q.where(Alert.status == status)
    if kind is not None:
        q = q.where(Alert.kind == kind)
    if farm_id is not None:
        q = q.where(Alert.farm_id == farm_id)
    if loan_id is not None:
        q = q.where(Alert.loan_id == loan_id)
    items, nxt = keyset_page(session, q, Alert.id, limit=pp.limit, cursor=pp.cursor, descending=True)
    return {"items": items, "next_cursor": nxt}


def _visible_alert(session: Session, p: Principal, alert_id: int) -> Alert:
    alert = session.scalar(_scoped(p).where(Alert.id == alert_id)) if p.role != "device" else None
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


@router.get("/{alert_id}", response_model=AlertPublic, responses=problems(404))
def get_alert(alert_id: DbId, p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> Alert:
    return _visible_alert(session, p, alert_id)


@router.post("/{alert_id}/ack", response_model=AlertPublic, responses=problems(403, 404))
def ack_alert(alert_id: DbId, p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> Alert:
    alert = _visible_alert(session, p, alert_id)
    require_role(p, "admin", "lender")
    alert.status = "acknowledged"
    audit.record(session, p, "alert.ack", "alert", str(alert.id), org_id=alert.org_id)
    session.commit()
    return alert


@router.post("/scan", response_model=list[AlertPublic], responses=problems(403))
def scan(request: Request, p: Principal = Depends(get_principal), session: Session = Depends(get_session),
         settings: Settings = Depends(get_settings)) -> list[Alert]:
    """Run the periodic rules now (silent devices, LTV above limit after price or loan changes)."""
    require_role(p, "admin")
    alerts = run_scan(session, settings)
    if alerts:
        request.app.state.webhooks.notify([a.id for a in alerts])
    return alerts
