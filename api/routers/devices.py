"""Devices (public keys), report ingest, report lookup and chain audit."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Device, Farm, Report
from api.deps import DbId, PageParams, bearer, get_principal, get_session, page_params
from api.errors import Conflict, NotFound, Unprocessable
from api.ingest_endpoint import handle_report
from api.repositories.common import keyset_page, utcnow
from api.routers import problems
from api.schemas.admin import DeviceCreate, DeviceCreated, DevicePublic
from api.schemas.common import Page
from api.schemas.lending import ChainVerification, IngestResponse, ReportDetail, ReportPublic
from api.services import audit
from api.services.auth import (
    Principal,
    farm_scope,
    new_key,
    require_role,
    visible_device,
    visible_farm,
)
from vision.wire import ChainProblem, SignedEnvelope, key_id, load_public_key, verify_chain

router = APIRouter(prefix="/v1", tags=["devices"])


@router.post("/devices", status_code=201, response_model=DeviceCreated, responses=problems(403, 404, 409))
def register_device(body: DeviceCreate, request: Request, p: Principal = Depends(get_principal),
                    session: Session = Depends(get_session)) -> dict:
    """Register a device's Ed25519 public key to a farm; returns the device's API key once."""
    require_role(p, "admin", "farm")
    farm = visible_farm(session, p, body.farm_id)
    try:
        pub = load_public_key(body.public_key_pem)
    except ValueError as exc:
        raise Unprocessable(f"public_key_pem: {exc}", slug="invalid-public-key") from exc
    if session.get(Device, body.device_id) is not None:
        raise Conflict(f"device {body.device_id} is already registered", slug="duplicate")
    device = Device(id=body.device_id, farm_id=farm.id, public_key_pem=body.public_key_pem.strip() + "\n",
                    key_id=key_id(pub), label=body.label, created_at=utcnow())
    session.add(device)
    session.flush()
    _row, key = new_key(session, role="device", pepper=request.app.state.settings.secret(), device_id=device.id,
                       label=f"device {device.id}")
    audit.record(session, p, "device.register", "device", device.id, org_id=farm.org_id, farm_id=farm.id,
                 key_id=device.key_id)
    session.commit()
    return {**DevicePublic.model_validate(device).model_dump(), "api_key": key}


@router.get("/devices", response_model=Page[DevicePublic], responses=problems(403))
def list_devices(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                 pp: PageParams = Depends(page_params)) -> dict:
    org_id, farm_id = farm_scope(p)
    q = select(Device).join(Farm, Farm.id == Device.farm_id)
    if org_id is not None:
        q = q.where(Farm.org_id == org_id)
    if farm_id is not None:
        q = q.where(Device.farm_id == farm_id)
    items, nxt = keyset_page(session, q, Device.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=problems(404))
def get_device(device_id: str, p: Principal = Depends(get_principal),
               session: Session = Depends(get_session)) -> Device:
    return visible_device(session, p, device_id)


@router.get("/devices/{device_id}/reports", response_model=Page[ReportPublic], responses=problems(404))
def list_device_reports(device_id: str, p: Principal = Depends(get_principal),
                        session: Session = Depends(get_session), pp: PageParams = Depends(page_params)) -> dict:
    """Newest first."""
    device = visible_device(session, p, device_id)
    q = select(Report).where(Report.device_id == device.id)
    items, nxt = keyset_page(session, q, Report.seq, limit=pp.limit, cursor=pp.cursor, descending=True)
    return {"items": items, "next_cursor": nxt}


@router.get("/devices/{device_id}/chain/verify", response_model=ChainVerification, responses=problems(404))
def verify_device_chain(device_id: str, p: Principal = Depends(get_principal),
                        session: Session = Depends(get_session)) -> dict:
    """Re-verify every stored report of the device: signatures against the registered key and every link."""
    device = visible_device(session, p, device_id)
    pub = load_public_key(device.public_key_pem)
    envelopes = []
    seqs: list[int] = []
    last_hash = None
    rows = session.execute(select(Report.seq, Report.envelope, Report.payload_hash)
                           .where(Report.device_id == device.id).order_by(Report.seq))
    for seq, text, phash in rows:
        envelopes.append(SignedEnvelope.model_validate_json(text))
        seqs.append(seq)
        last_hash = phash
    problems_found = verify_chain(envelopes, pub)
    if seqs and seqs[0] != 0:
        problems_found.insert(0, ChainProblem(seqs[0], "gap", f"chain starts at seq {seqs[0]}, not 0"))
    if seqs and device.head_hash != last_hash:
        problems_found.append(ChainProblem(device.head_seq, "head_mismatch",
                                           "the device's recorded chain head is not the last stored report"))
    return {"device_id": device.id, "reports": len(seqs), "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None, "head_hash": device.head_hash, "ok": not problems_found,
            "problems": [{"seq": pr.seq, "kind": pr.kind, "detail": pr.detail} for pr in problems_found]}


@router.post("/reports", status_code=201, response_model=IngestResponse,
             responses={200: {"description": "exact duplicate of a stored report (idempotent)",
                              "model": IngestResponse}, **problems(403, 409, 413, 429)},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": SignedEnvelope.model_json_schema()}}}})
async def post_report(request: Request,
                      creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
    """Ingest one signed report. 201 stored, 200 exact duplicate, 409 chain problem."""
    # Requests are served by api.ingest_endpoint.IngestFastPath before routing; this route documents the
    # endpoint and does the same work if the app is ever assembled without that middleware.
    raw = await request.body()
    header = f"{creds.scheme} {creds.credentials}" if creds is not None else None
    reply = await request.app.state.ingest_workers.run(handle_report, request.app.state, header, raw)
    return Response(reply.body, status_code=reply.status, media_type="application/json",
                    headers={"Location": reply.location})


@router.get("/reports/{report_id}", response_model=ReportDetail, responses=problems(404))
def get_report(report_id: DbId, p: Principal = Depends(get_principal),
               session: Session = Depends(get_session)) -> dict:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"report {report_id} not found")
    try:
        visible_device(session, p, report.device_id)
    except NotFound:
        raise NotFound(f"report {report_id} not found") from None
    data = ReportPublic.model_validate(report).model_dump()
    data["envelope"] = json.loads(report.envelope)
    return data
