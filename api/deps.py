"""FastAPI dependencies: database session, settings, the authenticated principal, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.services.auth import Principal, authenticate
from api.settings import Settings

# Integer ids are 64-bit in the database; larger values must be a 422, not a driver overflow.
DbId = Annotated[int, Path(ge=1, le=2**63 - 1)]

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer fk_<id>_<secret>`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


def get_principal(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer),
                  session: Session = Depends(get_session)) -> Principal:
    header = f"{creds.scheme} {creds.credentials}" if creds is not None else None
    principal = authenticate(session, header, request.app.state.settings.secret())
    session.rollback()  # end the auth read; handlers start their own transaction
    return principal


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(limit: int = Query(50, ge=1, le=500, description="page size"),
                cursor: str | None = Query(None, max_length=200, description="from the previous page")
                ) -> PageParams:
    return PageParams(limit, cursor)
