"""Flocks: headcount, time series, birds."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Bird, Farm, Flock
from api.deps import PageParams, get_principal, get_session, get_settings, page_params
from api.errors import Unprocessable
from api.repositories.common import keyset_page, new_id, utcnow
from api.routers import problems
from api.schemas.common import Page
from api.schemas.lending import BirdPublic, FlockCreate, FlockPublic, FlockUpdate, HeadcountPublic, TimeSeries
from api.services import audit
from api.services import flocks as flock_svc
from api.services.auth import Principal, farm_scope, require_role, visible_farm, visible_flock
from api.settings import Settings

router = APIRouter(prefix="/v1/flocks", tags=["flocks"])


@router.post("", status_code=201, response_model=FlockPublic, responses=problems(403, 404))
def create_flock(body: FlockCreate, p: Principal = Depends(get_principal),
                 session: Session = Depends(get_session)) -> Flock:
    require_role(p, "admin", "lender", "farm")
    farm = visible_farm(session, p, body.farm_id)
    if body.placed_at.tzinfo is None:
        raise Unprocessable("placed_at must carry a time zone", slug="invalid-datetime")
    flock = Flock(id=new_id("flock"), farm_id=farm.id, name=body.name, breed=body.breed or farm.breed,
                  placed_at=body.placed_at, placed_count=body.placed_count, created_at=utcnow())
    session.add(flock)
    audit.record(session, p, "flock.create", "flock", flock.id, org_id=farm.org_id, farm_id=farm.id)
    session.commit()
    return flock


@router.get("", response_model=Page[FlockPublic], responses=problems(403))
def list_flocks(farm_id: str | None = Query(None, max_length=40), p: Principal = Depends(get_principal),
                session: Session = Depends(get_session), pp: PageParams = Depends(page_params)) -> dict:
    org_id, scoped_farm = farm_scope(p)
    q = select(Flock).join(Farm, Farm.id == Flock.farm_id)
    if org_id is not None:
        q = q.where(Farm.org_id == org_id)
    if scoped_farm is not None:
        q = q.where(Flock.farm_id == scoped_farm)
    if farm_id is not None:
        q = q.where(Flock.farm_id == farm_id)
    items, nxt = keyset_page(session, q, Flock.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/{flock_id}", response_model=FlockPublic, responses=problems(404))
def get_flock(flock_id: str, p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> Flock:
    return visible_flock(session, p, flock_id)


@router.patch("/{flock_id}", response_model=FlockPublic, responses=problems(403, 404))
def update_flock(flock_id: str, body: FlockUpdate, p: Principal = Depends(get_principal),
                 session: Session = Depends(get_session)) -> Flock:
    flock = visible_flock(session, p, flock_id)
    require_role(p, "admin", "lender", "farm")
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise Unprocessable("name cannot be null", slug="invalid-update")
    closed = changes.get("closed_at")
    if closed is not None and closed.tzinfo is None:
        raise Unprocessable("closed_at must carry a time zone", slug="invalid-datetime")
    if closed is not None and closed < flock.placed_at:
        raise Unprocessable("closed_at is before placed_at", slug="invalid-update")
    for key, value in changes.items():
        setattr(flock, key, value)
    farm = session.get(Farm, flock.farm_id)
    audit.record(session, p, "flock.update", "flock", flock.id, org_id=farm.org_id if farm else None,
                 changes={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()})
    session.commit()
    return flock


@router.get("/{flock_id}/headcount", response_model=HeadcountPublic, responses=problems(404))
def flock_headcount(flock_id: str, p: Principal = Depends(get_principal),
                    session: Session = Depends(get_session)) -> dict:
    """Current verified headcount with its band; stale=true when cameras could not see the flock."""
    flock = visible_flock(session, p, flock_id)
    view = flock_svc.farm_headcount(session, flock.farm_id, flock)
    return {"flock_id": flock.id, "farm_id": flock.farm_id, **view.__dict__}


@router.get("/{flock_id}/timeseries", response_model=TimeSeries, response_model_by_alias=True,
            responses=problems(404))
def flock_timeseries(flock_id: str, start: datetime | None = Query(None, alias="from"),
                     end: datetime | None = Query(None, alias="to"),
                     bucket: str = Query("hour", pattern="^(hour|day)$"),
                     p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> dict:
    """Headcount, mortality, activity, huddling, mean weight and the growth-curve weight per bucket."""
    flock = visible_flock(session, p, flock_id)
    default_end = flock.closed_at or utcnow()
    start, end = flock_svc.resolve_range(start, end or default_end, bucket, utcnow())
    points = flock_svc.timeseries(session, flock.farm_id, max(start, flock.placed_at), end, bucket,
                                  flock.placed_at) if end > flock.placed_at else []
    return {"farm_id": flock.farm_id, "flock_id": flock.id, "bucket": bucket, "start": start, "end": end,
            "points": points}


@router.get("/{flock_id}/birds", response_model=Page[BirdPublic], responses=problems(404))
def flock_birds(flock_id: str,
                health: str | None = Query(None, pattern="^(ok|lethargic|suspected_sick|suspected_dead)$"),
                p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                pp: PageParams = Depends(page_params), settings: Settings = Depends(get_settings)) -> dict:
    """Every registered bird of the flock's farm with last seen, weight and health."""
    flock = visible_flock(session, p, flock_id)
    live_days = settings.live_bird_days
    view = flock_svc.farm_headcount(session, flock.farm_id, flock)
    q = select(Bird).where(Bird.farm_id == flock.farm_id)
    if health is not None:
        q = q.where(Bird.health == health)
    items, nxt = keyset_page(session, q, Bird.bird_id, limit=pp.limit, cursor=pp.cursor)
    horizon = (view.as_of - timedelta(days=live_days)) if view.as_of else None
    out = []
    for b in items:
        data = BirdPublic.model_validate(b).model_dump()
        data["live"] = b.health != "suspected_dead" and (horizon is None or b.last_seen >= horizon)
        out.append(data)
    return {"items": out, "next_cursor": nxt}
