"""Periodic rules: silent devices and LTV above limit (prices and loans change without reports)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Alert, Flock, Loan
from api.services.alerts import silent_device_alerts
from api.services.valuation import ltv_alerts
from api.settings import Settings


def run_scan(session: Session, settings: Settings, now: datetime | None = None) -> list[Alert]:
    alerts = silent_device_alerts(session, settings, now)
    rows = session.execute(select(Loan, Flock.farm_id).join(Flock, Flock.id == Loan.flock_id)
                           .where(Loan.status == "active")).all()
    by_farm: dict[str, list[Loan]] = {}
    for loan, farm_id in rows:
        by_farm.setdefault(farm_id, []).append(loan)
    for farm_id, loans in by_farm.items():
        alerts += ltv_alerts(session, settings, farm_id, loans)
    session.commit()
    return alerts
