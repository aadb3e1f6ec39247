"""API keys and tenancy.

A key is `fk_<id>_<secret>`; only HMAC-SHA256(server secret, secret) is stored. Roles:
admin (everything), lender (its organisation's farms, flocks, loans, alerts), farm (one farm's
devices and flock data, no loans), device (ingest for one device only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import ApiKey, Device, Farm, Flock, Loan
from api.errors import Forbidden, NotFound, Unauthenticated, Unprocessable

ROLES = ("admin", "lender", "farm", "device")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    org_id: str | None = None
    farm_id: str | None = None
    device_id: str | None = None


def hash_secret(secret: str, pepper: bytes) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def new_key(session: Session, *, role: str, pepper: bytes, org_id: str | None = None,
            farm_id: str | None = None, device_id: str | None = None, label: str = "") -> tuple[ApiKey, str]:
    """Create a key row; returns (row, the full key). The full key is never stored or shown again."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "lender" and not org_id:
        raise Unprocessable("a lender key needs an organisation (org_id)")
    if role == "farm" and not farm_id:
        raise Unprocessable("a farm key needs a farm (farm_id)")
    if role == "device" and not device_id:
        raise Unprocessable("a device key needs a device (device_id)")
    if farm_id is not None:
        farm = session.get(Farm, farm_id)
        if farm is None:
            raise NotFound(f"farm {farm_id} not found")
        org_id = farm.org_id
    if device_id is not None:
        device = session.get(Device, device_id)
        if device is None:
            raise NotFound(f"device {device_id} not found")
        farm_id = device.farm_id
        farm = session.get(Farm, farm_id)
        org_id = farm.org_id if farm else org_id
    kid = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(id=kid, secret_hash=hash_secret(secret, pepper), role=role, org_id=org_id, farm_id=farm_id,
                 device_id=device_id, label=label, created_at=datetime.now(timezone.utc))
    session.add(row)
    return row, f"fk_{kid}_{secret}"


_CACHE_TTL_S = 30.0
_principals: dict[str, tuple[Principal, float]] = {}


def forget_cached_keys() -> None:
    """Drop cached principals (after a revocation, so it takes effect at once in this process)."""
    _principals.clear()


def authenticate(session: Session, authorization: str | None, pepper: bytes) -> Principal:
    """Resolve `Bearer fk_<id>_<secret>`. Verified keys are cached for 30 s in process (ingest calls this
    hundreds of times a second); a revocation elsewhere takes at most that long to apply here."""
    if authorization:
        hit = _principals.get(authorization)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
    principal = _authenticate(session, authorization, pepper)
    if len(_principals) > 10_000:
        _principals.clear()
    _principals[authorization or ""] = (principal, time.monotonic() + _CACHE_TTL_S)
    return principal


def _authenticate(session: Session, authorization: str | None, pepper: bytes) -> Principal:
    if not authorization:
        raise Unauthenticated("send `Authorization: Bearer <api key>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization must be `Bearer <api key>`")
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "fk" or not parts[1] or not parts[2]:
        raise Unauthenticated("malformed API key")
    row = session.get(ApiKey, parts[1])
    # Compare even when the id is unknown so timing does not reveal which key ids exist.
    expected = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(expected, hash_secret(parts[2], pepper)) or row is None:
        raise Unauthenticated("unknown or wrong API key")
    if row.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    return Principal(key_id=row.id, role=row.role, org_id=row.org_id, farm_id=row.farm_id, device_id=row.device_id)


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role!r} may not do this (needs {' or '.join(roles)})")


# Visibility: an object outside the caller's tenancy is "not found", never "forbidden".

def can_see_farm(principal: Principal, farm: Farm) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "lender":
        return farm.org_id == principal.org_id
    if principal.role == "farm":
        return farm.id == principal.farm_id
    return False


def visible_farm(session: Session, principal: Principal, farm_id: str) -> Farm:
    farm = session.get(Farm, farm_id)
    if farm is None or not can_see_farm(principal, farm):
        raise NotFound(f"farm {farm_id} not found")
    return farm


def visible_flock(session: Session, principal: Principal, flock_id: str) -> Flock:
    flock = session.get(Flock, flock_id)
    if flock is None:
        raise NotFound(f"flock {flock_id} not found")
    farm = session.get(Farm, flock.farm_id)
    if farm is None or not can_see_farm(principal, farm):
        raise NotFound(f"flock {flock_id} not found")
    return flock


def visible_loan(session: Session, principal: Principal, loan_id: str) -> Loan:
    if principal.role not in ("admin", "lender"):
        raise NotFound(f"loan {loan_id} not found")
    loan = session.get(Loan, loan_id)
    if loan is None or (principal.role == "lender" and loan.org_id != principal.org_id):
        raise NotFound(f"loan {loan_id} not found")
    return loan


def visible_device(session: Session, principal: Principal, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    if principal.role == "device":
        if device.id != principal.device_id:
            raise NotFound(f"device {device_id} not found")
        return device
    farm = session.get(Farm, device.farm_id)
    if farm is None or not can_see_farm(principal, farm):
        raise NotFound(f"device {device_id} not found")
    return device


def farm_scope(principal: Principal) -> tuple[str | None, str | None]:
    """(org_id, farm_id) filters for list queries; (None, None) = everything (admin)."""
    if principal.role == "admin":
        return None, None
    if principal.role == "lender":
        return principal.org_id, None
    if principal.role == "farm":
        return None, principal.farm_id
    raise Forbidden("device keys may only send reports")


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
