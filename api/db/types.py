"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic_core import TzInfo
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLAlchemy's default SQLite DATETIME storage format, which `isoformat(" ", "microseconds")` of a naive
# datetime writes identically.
_SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


# Fixed-offset zones: an instant's text does not depend on `fold`, and two such datetimes are equal
# (and hash alike) exactly when they are the same instant, whatever their offsets. pydantic gives
# parsed datetimes its own TzInfo.
_FIXED_OFFSET_ZONES = (timezone, TzInfo)
_texts: dict[datetime, str] = {}


def _utc_text(value: datetime) -> str:
    # Aware isoformat ends in "+00:00"; the first 26 characters are the naive text (years 0001-9999).
    return value.astimezone(timezone.utc).isoformat(" ", "microseconds")[:26]


def _sqlite_datetime_text(value: Any) -> str | None:
    if type(value) is datetime and type(value.tzinfo) in _FIXED_OFFSET_ZONES:
        # Memoised: a report's birds share the timestamps of the frames they were last seen in, and
        # converting a pydantic-zoned datetime costs ~2 us (ingest binds ~50 a report).
        text = _texts.get(value)
        if text is None:
            text = _utc_text(value)
            if len(_texts) > 4096:
                _texts.clear()
            _texts[value] = text
        return text
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: give a time zone")
    return _utc_text(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones); always returned time-zone aware (UTC).

    Naive datetimes are refused on the way in: guessing their zone would silently shift reports."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give a time zone")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Any:
        # SQLite: one function per value instead of this class's check, then SQLAlchemy's wrapper, then
        # SQLite DATETIME's text formatting (ingest binds ~50 datetimes a report). Same text, same
        # refusals; any other dialect or storage format keeps the generic chain.
        impl = self.impl_instance.dialect_impl(dialect)
        if dialect.name == "sqlite" and getattr(impl, "_storage_format", None) == _SQLITE_DATETIME_FORMAT:
            return _sqlite_datetime_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite raw text in some aggregate paths
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
