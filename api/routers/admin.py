"""Organisations, API keys, market prices, audit events."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.models import ApiKey, AuditEvent, MarketPrice, Organization
from api.deps import PageParams, get_principal, get_session, page_params
from api.errors import Conflict, Forbidden, NotFound, Unprocessable
from api.repositories.common import keyset_page, new_id, upsert, utcnow
from api.routers import problems
from api.schemas.admin import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AuditEventPublic,
    MarketPricePublic,
    MarketPriceSet,
    OrganizationCreate,
    OrganizationPublic,
)
from api.schemas.common import Page
from api.services import audit
from api.services.auth import Principal, forget_cached_keys, new_key, require_role

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post("/organizations", status_code=201, response_model=OrganizationPublic, responses=problems(403, 409))
def create_organization(body: OrganizationCreate, p: Principal = Depends(get_principal),
                        session: Session = Depends(get_session)) -> Organization:
    require_role(p, "admin")
    if session.scalar(select(Organization.id).where(Organization.name == body.name)):
        raise Conflict(f"organisation {body.name!r} exists", slug="duplicate")
    org = Organization(id=new_id("org"), name=body.name, webhook_url=body.webhook_url, created_at=utcnow())
    session.add(org)
    audit.record(session, p, "organization.create", "organization", org.id, org_id=org.id, name=body.name)
    try:
        session.commit()
    except IntegrityError as exc:
        raise Conflict(f"organisation {body.name!r} exists", slug="duplicate") from exc
    return org


@router.get("/organizations", response_model=Page[OrganizationPublic], responses=problems(403))
def list_organizations(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                       pp: PageParams = Depends(page_params)) -> dict:
    if p.role not in ("admin", "lender"):
        raise Forbidden("only admin and lender keys list organisations")
    q = select(Organization)
    if p.role == "lender":
        q = q.where(Organization.id == p.org_id)
    items, nxt = keyset_page(session, q, Organization.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/organizations/{org_id}", response_model=OrganizationPublic, responses=problems(404))
def get_organization(org_id: str, p: Principal = Depends(get_principal),
                     session: Session = Depends(get_session)) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or not (p.role == "admin" or (p.role == "lender" and p.org_id == org_id)):
        raise NotFound(f"organisation {org_id} not found")
    return org


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, responses=problems(403, 404))
def create_api_key(body: ApiKeyCreate, request: Request, p: Principal = Depends(get_principal),
                   session: Session = Depends(get_session)) -> dict:
    require_role(p, "admin")
    if body.org_id is not None and session.get(Organization, body.org_id) is None:
        raise NotFound(f"organisation {body.org_id} not found")
    row, key = new_key(session, role=body.role, pepper=request.app.state.settings.secret(), org_id=body.org_id,
                       farm_id=body.farm_id, device_id=body.device_id, label=body.label)
    audit.record(session, p, "api_key.create", "api_key", row.id, org_id=row.org_id, role=body.role)
    session.commit()
    return {**ApiKeyPublic.model_validate(row).model_dump(), "api_key": key}


@router.get("/api-keys", response_model=Page[ApiKeyPublic], responses=problems(403))
def list_api_keys(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                  pp: PageParams = Depends(page_params)) -> dict:
    require_role(p, "admin")
    q = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    items, nxt = keyset_page(session, q, ApiKey.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.delete("/api-keys/{key_id}", status_code=204, responses=problems(403, 404))
def revoke_api_key(key_id: str, p: Principal = Depends(get_principal),
                   session: Session = Depends(get_session)) -> None:
    require_role(p, "admin")
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"api key {key_id} not found")
    row.revoked_at = utcnow()
    audit.record(session, p, "api_key.revoke", "api_key", key_id, org_id=row.org_id)
    session.commit()
    forget_cached_keys()


@router.put("/market-prices", response_model=MarketPricePublic, responses=problems(403, 404))
def set_market_price(body: MarketPriceSet, p: Principal = Depends(get_principal),
                     session: Session = Depends(get_session)) -> MarketPrice:
    """The lender's own price per kg for a market; farms with price_source=market use it."""
    require_role(p, "admin", "lender")
    if p.role == "lender":
        if body.org_id not in (None, p.org_id):
            raise NotFound(f"organisation {body.org_id} not found")
        org_id = p.org_id
    else:
        if body.org_id is None:
            raise Unprocessable("admin keys must name org_id", slug="org-required")
        if session.get(Organization, body.org_id) is None:
            raise NotFound(f"organisation {body.org_id} not found")
        org_id = body.org_id
    if org_id is None:
        raise Forbidden("this lender key has no organisation")
    upsert(session, MarketPrice, [{"org_id": org_id, "market": body.market, "price_per_kg": body.price_per_kg,
                                   "currency": body.currency, "set_at": utcnow()}],
           ["org_id", "market"], ["price_per_kg", "currency", "set_at"])
    audit.record(session, p, "market_price.set", "market", body.market, org_id=org_id,
                 price_per_kg=body.price_per_kg, currency=body.currency)
    session.commit()
    row = session.scalar(select(MarketPrice).where(MarketPrice.org_id == org_id, MarketPrice.market == body.market))
    if row is None:
        raise NotFound(f"market {body.market} not found")
    return row


@router.get("/market-prices", response_model=Page[MarketPricePublic], responses=problems(403))
def list_market_prices(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                       pp: PageParams = Depends(page_params)) -> dict:
    require_role(p, "admin", "lender")
    q = select(MarketPrice)
    if p.role == "lender":
        q = q.where(MarketPrice.org_id == p.org_id)
    items, nxt = keyset_page(session, q, MarketPrice.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/audit-events", response_model=Page[AuditEventPublic], responses=problems(403))
def list_audit_events(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                      pp: PageParams = Depends(page_params)) -> dict:
    require_role(p, "admin", "lender")
    q = select(AuditEvent)
    if p.role == "lender":
        q = q.where(AuditEvent.org_id == p.org_id)
    items, nxt = keyset_page(session, q, AuditEvent.id, limit=pp.limit, cursor=pp.cursor, descending=True)
    return {"items": items, "next_cursor": nxt}
