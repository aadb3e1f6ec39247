"""Loans, valuation, portfolio."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.models import Alert, Farm, Flock, Loan, Organization
from api.deps import PageParams, get_principal, get_session, get_settings, page_params
from api.errors import NotFound, Unprocessable
from api.repositories.common import keyset_page, new_id, utcnow
from api.routers import problems
from api.schemas.common import Page
from api.schemas.lending import LoanCreate, LoanPublic, LoanUpdate, PortfolioRow, Valuation, ValuationHistory
from api.services import audit
from api.services import flocks as flock_svc
from api.services.alerts import double_pledge_alerts
from api.services.auth import Principal, require_role, visible_flock, visible_loan
from api.services.valuation import resolve_price, valuation_history, value_loan
from api.settings import Settings

router = APIRouter(prefix="/v1", tags=["loans"])


@router.post("/loans", status_code=201, response_model=LoanPublic, responses=problems(403, 404))
def create_loan(body: LoanCreate, request: Request, p: Principal = Depends(get_principal),
                session: Session = Depends(get_session), settings: Settings = Depends(get_settings)) -> Loan:
    require_role(p, "admin", "lender")
    flock = visible_flock(session, p, body.flock_id)
    farm = session.get(Farm, flock.farm_id)
    if farm is None:
        raise NotFound(f"flock {body.flock_id} not found")
    if p.role == "lender":
        if body.org_id not in (None, p.org_id):
            raise NotFound(f"organisation {body.org_id} not found")
        org_id = p.org_id
    else:
        org_id = body.org_id or farm.org_id
        if session.get(Organization, org_id) is None:
            raise NotFound(f"organisation {org_id} not found")
        if org_id != farm.org_id:
            # A loan is always the farm's lender's: otherwise its lender would see a farm it does not own.
            raise Unprocessable(f"flock {flock.id} belongs to organisation {farm.org_id}, not {org_id}",
                                slug="loan-org-mismatch")
    if org_id is None:
        raise NotFound("organisation not found")
    if body.start_date.tzinfo is None:
        raise Unprocessable("start_date must carry a time zone", slug="invalid-datetime")
    outstanding = body.outstanding if body.outstanding is not None else body.principal
    loan = Loan(id=new_id("loan"), org_id=org_id, flock_id=flock.id, reference=body.reference,
                principal=body.principal, outstanding=outstanding, currency=body.currency,
                start_date=body.start_date, ltv_limit=body.ltv_limit, status="active", created_at=utcnow())
    session.add(loan)
    session.flush()
    audit.record(session, p, "loan.create", "loan", loan.id, org_id=org_id, flock_id=flock.id,
                 principal=body.principal)
    alerts = double_pledge_alerts(session, settings, farm.id)
    session.commit()
    if alerts:
        request.app.state.webhooks.notify([a.id for a in alerts])
    return loan


def _loan_query(p: Principal):  # type: ignore[no-untyped-def]
    q = select(Loan)
    if p.role == "lender":
        q = q.where(Loan.org_id == p.org_id)
    return q


@router.get("/loans", response_model=Page[LoanPublic], responses=problems(403))
def list_loans(status: str | None = Query(None, pattern="^(active|closed)$"), p: Principal = Depends(get_principal),
               session: Session = Depends(get_session), pp: PageParams = Depends(page_params)) -> dict:
    require_role(p, "admin", "lender")
    q = _loan_query(p)
    if status is not None:
        q = q.where(Loan.status == status)
    items, nxt = keyset_page(session, q, Loan.id, limit=pp.limit, cursor=pp.cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/portfolio", response_model=Page[PortfolioRow], responses=problems(403))
def portfolio(p: Principal = Depends(get_principal), session: Session = Depends(get_session),
              settings: Settings = Depends(get_settings), pp: PageParams = Depends(page_params)) -> dict:
    """Every loan with its farm, headcount, value, LTV, open alerts and a status for the dashboard."""
    require_role(p, "admin", "lender")
    loans, nxt = keyset_page(session, _loan_query(p), Loan.id, limit=pp.limit, cursor=pp.cursor)
    rows = []
    for loan in loans:
        v = value_loan(session, settings, loan)
        farm = session.get(Farm, v["farm_id"])
        open_alerts = session.scalar(select(func.count(Alert.id)).where(
            Alert.org_id == loan.org_id, Alert.status == "open",
            (Alert.loan_id == loan.id) | ((Alert.loan_id.is_(None)) & (Alert.farm_id == v["farm_id"])))) or 0
        if v["value"] is None:
            status = "no_data"
        elif v["above_limit"]:
            status = "breach"
        elif open_alerts or v["headcount_stale"] or (v["ltv"] or 0) > 0.9 * loan.ltv_limit:
            status = "watch"
        else:
            status = "ok"
        rows.append({"loan": LoanPublic.model_validate(loan), "farm_id": v["farm_id"],
                     "farm_name": farm.name if farm else "", "headcount": v["headcount"],
                     "headcount_stale": v["headcount_stale"], "value": v["value"], "ltv": v["ltv"],
                     "above_limit": v["above_limit"], "open_alerts": open_alerts, "status": status,
                     "report_ids": v["report_ids"]})
    return {"items": rows, "next_cursor": nxt}


@router.get("/loans/{loan_id}", response_model=LoanPublic, responses=problems(404))
def get_loan(loan_id: str, p: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> Loan:
    return visible_loan(session, p, loan_id)


@router.patch("/loans/{loan_id}", response_model=LoanPublic, responses=problems(404))
def update_loan(loan_id: str, body: LoanUpdate, p: Principal = Depends(get_principal),
                session: Session = Depends(get_session)) -> Loan:
    loan = visible_loan(session, p, loan_id)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Unprocessable(f"{key} cannot be null", slug="invalid-update")
        setattr(loan, key, value)
    audit.record(session, p, "loan.update", "loan", loan.id, org_id=loan.org_id, changes=changes)
    session.commit()
    return loan


@router.get("/loans/{loan_id}/valuation", response_model=Valuation, responses=problems(404))
def loan_valuation(loan_id: str, p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                   settings: Settings = Depends(get_settings)) -> dict:
    """Collateral value (with low/high band), LTV and the report ids behind every figure."""
    loan = visible_loan(session, p, loan_id)
    return value_loan(session, settings, loan)


@router.get("/loans/{loan_id}/valuation/history", response_model=ValuationHistory, responses=problems(404))
def loan_valuation_history(loan_id: str, start: datetime | None = Query(None, alias="from"),
                           end: datetime | None = Query(None, alias="to"),
                           bucket: str = Query("day", pattern="^(hour|day)$"),
                           p: Principal = Depends(get_principal), session: Session = Depends(get_session),
                           settings: Settings = Depends(get_settings)) -> dict:
    loan = visible_loan(session, p, loan_id)
    start, end = flock_svc.resolve_range(start, end, bucket, utcnow())
    flock = session.get(Flock, loan.flock_id)
    farm = session.get(Farm, flock.farm_id) if flock else None
    price = resolve_price(session, farm, loan.org_id) if farm else None
    return {"loan_id": loan.id, "bucket": bucket, "price_per_kg": price["price_per_kg"] if price else None,
            "points": valuation_history(session, settings, loan, start, end, bucket)}
