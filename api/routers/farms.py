"""Farms, their time series, cameras and latest snapshots."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import CameraSnapshot, Farm, Organization
from api.deps import PageParams, get_principal, get_session, page_params
from api.errors import NotFound, Unprocessable
from api.repositories.common import keyset_page, new_id, utcnow
from api.routers import problems
from api.schemas.admin import FarmCreate, FarmPublic, FarmUpdate
from api.schemas.common import Page
from api.schemas.lending import CameraPublic, TimeSeries
from api.services import audit
from api.services import flocks as flock_svc
from api.services.auth import Principal, farm_scope, require_role, visible_farm

router = APIRouter(prefix="/v1/farms", tags=["farms"])


@router.post("", status_code=201, response_model=FarmPublic, responses=problems(403, 404))
def create_farm(body: FarmCreate, p: Principal = Depends(get_principal),
                session: Session = Depends(get_session)) -> Farm:
    require_role(p, "admin", "lender")
    if p.role == "lender":
        if body.org_id not in (None, p.org_id):
            raise NotFound(f"organisation {body.org_id} not found")
        org_id = p.org_id
    else:
        if body.org_id is None:
            raise Unprocessable("admin keys must name the farm's org_id", slug="org-required")
        org_id = body.org_id
    if org_id is None or session.get(Organization, org_id) is None:
        raise NotFound(f"organisation {org_id} not found")
    if body.price_source == "market" and not body.market:
        raise Unprocessable("price_source 'market' needs a market name", slug="market-required")
    data = body.model_dump(exclude={"org_id"})
    farm = Farm(id=new_id("farm"), org_id=org_id, created_at=utcnow(), **data)
    session.add(farm)
    audit.record(session, p, "farm.create", "farm", farm.id, org_id=org_id, name=body.name)
    session.commit()
    return farm


@router.get("", response_model=Page[FarmPublic], responses=problems(403))
def list_farms(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
               pp: PageParams = Depends(page_params)) -> dict:
    org_id, farm_id = farm_scope(p)
    q = select(Farm)
    if org_id is not None:
        q = q.where(Farm.org_id == org_id)
    if farm_id is not None:
        q = q.where(Farm.id == farm_id)
    items, nxt = keyset_page(session, q, Farm.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/{farm_id}", response_model=FarmPublic, responses=problems(404))
def get_farm(farm_id: str, p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> Farm:
    return visible_farm(session, p, farm_id)


@router.patch("/{farm_id}", response_model=FarmPublic, responses=problems(403, 404))
def update_farm(farm_id: str, body: FarmUpdate, p: Principal = Depends(get_principal),
                session: Session = Depends(get_session)) -> Farm:
    """Lenders set the price per kg (or the market it follows) here."""
    farm = visible_farm(session, p, farm_id)
    require_role(p, "admin", "lender")
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key in ("name", "owner_name", "location", "breed", "price_source", "currency"):
            raise Unprocessable(f"{key} cannot be null", slug="invalid-update")
        setattr(farm, key, value)
    if farm.price_source == "market" and not farm.market:
        raise Unprocessable("price_source 'market' needs a market name", slug="market-required")
    audit.record(session, p, "farm.update", "farm", farm.id, org_id=farm.org_id,
                 changes={k: v for k, v in changes.items()})
    session.commit()
    return farm


@router.get("/{farm_id}/timeseries", response_model=TimeSeries, response_model_by_alias=True,
            responses=problems(404))
def farm_timeseries(farm_id: str, start: datetime | None = Query(None, alias="from"),
                    end: datetime | None = Query(None, alias="to"),
                    bucket: str = Query("hour", pattern="^(hour|day)$"),
                    p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> dict:
    farm = visible_farm(session, p, farm_id)
    start, end = flock_svc.resolve_range(start, end, bucket, utcnow())
    points = flock_svc.timeseries(session, farm.id, start, end, bucket)
    return {"farm_id": farm.id, "flock_id": None, "bucket": bucket, "start": start, "end": end, "points": points}


@router.get("/{farm_id}/cameras", response_model=list[CameraPublic], responses=problems(404))
def list_cameras(farm_id: str, p: Principal = Depends(get_principal),
                 session: Session = Depends(get_session)) -> list[dict]:
    farm = visible_farm(session, p, farm_id)
    rows = session.execute(select(CameraSnapshot.camera_id, CameraSnapshot.device_id, CameraSnapshot.at,
                                  CameraSnapshot.report_id)
                           .where(CameraSnapshot.farm_id == farm.id).order_by(CameraSnapshot.camera_id)).all()
    return [{"farm_id": farm.id, "camera_id": r.camera_id, "device_id": r.device_id, "snapshot_at": r.at,
             "report_id": r.report_id, "snapshot_url": f"/v1/farms/{farm.id}/cameras/{r.camera_id}/snapshot.jpg"}
            for r in rows]


@router.get("/{farm_id}/cameras/{camera_id}/snapshot.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}, "description": "latest JPEG"}, **problems(404)})
def camera_snapshot(farm_id: str, camera_id: str, p: Principal = Depends(get_principal),
                    session: Session = Depends(get_session)) -> Response:
    farm = visible_farm(session, p, farm_id)
    snap = session.get(CameraSnapshot, (farm.id, camera_id))
    if snap is None:
        raise NotFound(f"no snapshot from camera {camera_id} on farm {farm_id}")
    return Response(content=snap.jpeg, media_type="image/jpeg",
                    headers={"X-Report-Id": str(snap.report_id), "X-Snapshot-At": snap.at.isoformat(),
                             "Cache-Control": "private, max-age=60"})
