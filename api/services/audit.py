"""Audit trail: who changed what. Written in the same transaction as the change itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.db.models import AuditEvent
from api.repositories.common import utcnow
from api.services.auth import Principal


def record(session: Session, who: Principal | None, action: str, target_type: str, target_id: str,
           org_id: str | None = None, **details: Any) -> None:
    session.add(AuditEvent(
        at=utcnow(), actor=who.key_id if who else "system",
        org_id=org_id if org_id is not None else (who.org_id if who else None),
        action=action, target_type=target_type, target_id=target_id, details=details,
    ))
