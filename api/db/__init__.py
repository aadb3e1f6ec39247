"""Database layer: typed models, engine/session factory, migrations runner."""

from api.db.engine import make_engine, make_sessionmaker, normalise_url
from api.db.models import Base

__all__ = ["Base", "make_engine", "make_sessionmaker", "normalise_url"]
