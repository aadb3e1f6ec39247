"""The ingest hot path's driver-level SQL helpers behave like SQLAlchemy execution."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, NoResultFound

from api.db.engine import json_dumps, make_engine
from api.db.types import UTCDateTime
from api.repositories.common import driver_execute, upsert

META = MetaData()
THINGS = Table("things", META, Column("id", Integer, primary_key=True, autoincrement=True),
               Column("name", String(20), unique=True), Column("at", UTCDateTime()), Column("tags", JSON))


class _Model:
    __table__ = THINGS


@pytest.fixture()
def conn(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    META.create_all(engine)
    with engine.connect() as c:
        yield c
    engine.dispose()


def test_driver_execute_converts_types_and_returns_rows(conn) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=2)))
    new_id = driver_execute(conn, insert(THINGS).returning(THINGS.c.id),
                            {"name": "a", "at": at, "tags": ["cam0", "cam1"]}).scalar_one()
    driver_execute(conn, insert(THINGS), [{"name": "b", "at": at, "tags": []}, {"name": "c", "at": at, "tags": []}])
    row = conn.execute(select(THINGS).where(THINGS.c.id == new_id)).one()
    # Read back through SQLAlchemy: the stored form is exactly what its own execution would write.
    assert row.at == at and row.at.tzinfo is not None and row.tags == ["cam0", "cam1"]
    assert conn.execute(select(THINGS.c.name).order_by(THINGS.c.name)).scalars().all() == ["a", "b", "c"]
    stmt = update(THINGS).where(THINGS.c.name == bindparam("n"))
    driver_execute(conn, stmt, {"n": "b", "tags": ["x"]})
    assert conn.execute(select(THINGS.c.tags).where(THINGS.c.name == "b")).scalar_one() == ["x"]
    with pytest.raises(NoResultFound):
        driver_execute(conn, select(THINGS.c.id).where(THINGS.c.name == bindparam("n")), {"n": "zz"}).one()


def test_driver_errors_are_sqlalchemy_errors(conn) -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    driver_execute(conn, insert(THINGS), {"name": "dup", "at": at, "tags": []})
    with pytest.raises(IntegrityError):
        driver_execute(conn, insert(THINGS), {"name": "dup", "at": at, "tags": []})
    with pytest.raises(ValueError, match="naive"):
        driver_execute(conn, insert(THINGS), {"name": "naive", "at": datetime(2026, 1, 1), "tags": []})


def test_upsert_keeps_existing_and_updates(conn) -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    upsert(conn, _Model, [{"name": "u", "at": at, "tags": ["a"]}], ["name"], ["tags"], keep_existing=["at"])
    upsert(conn, _Model, [{"name": "u", "at": at + timedelta(days=1), "tags": ["b"]}], ["name"], ["tags"],
           keep_existing=["at"])
    row = conn.execute(select(THINGS).where(THINGS.c.name == "u")).one()
    assert row.tags == ["b"] and row.at == at


@pytest.mark.parametrize("value", [["cam0"], ['a"b', "é"], [], {"k": [1, 2]}, [1, 2], ["x"] * 9, "s"])
def test_json_dumps_matches_json(value) -> None:
    assert json_dumps(value) == json.dumps(value)
    assert json_dumps(value) == json.dumps(value)  # memoised path


@pytest.mark.parametrize("value", [
    datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 1, 1, tzinfo=timezone.utc),
    datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(2026, 3, 3, 1, 2, 3, 7, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    None,
])
def test_sqlite_datetime_binding_matches_sqlalchemy(value) -> None:
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    dialect = sqlite.dialect()
    col = UTCDateTime()
    generic = TypeDecorator.bind_processor(col.dialect_impl(dialect), dialect)
    assert generic is not None
    assert col._cached_bind_processor(dialect)(value) == generic(value)


@pytest.mark.parametrize(("value", "error"), [(datetime(2026, 1, 1), ValueError), ("2026-01-01", TypeError)])
def test_sqlite_datetime_binding_refuses_like_sqlalchemy(value, error) -> None:
    from sqlalchemy.dialects import sqlite

    with pytest.raises(error):
        UTCDateTime()._cached_bind_processor(sqlite.dialect())(value)


def test_sqlite_datetime_memo_is_by_instant_and_skips_folds() -> None:
    from zoneinfo import ZoneInfo

    from pydantic import TypeAdapter
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    dialect = sqlite.dialect()
    col = UTCDateTime()
    fast = col._cached_bind_processor(dialect)
    generic = TypeDecorator.bind_processor(col.dialect_impl(dialect), dialect)
    assert generic is not None
    parse = TypeAdapter(datetime).validate_python  # pydantic's own fixed-offset TzInfo
    london = ZoneInfo("Europe/London")
    values = [
        parse("2026-01-02T03:04:05.600000+02:00"), parse("2026-01-02T01:04:05.600000Z"),
        datetime(2026, 1, 2, 1, 4, 5, 600000, tzinfo=timezone.utc), parse("2026-01-02T03:04:05.600001+02:00"),
        parse("2026-01-02T03:04:05.600000+01:00"),
        # 01:30 happens twice in London on 2024-10-27: fold tells which, and the memo must not mix them.
        datetime(2024, 10, 27, 1, 30, tzinfo=london), datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=london),
    ]
    for _ in range(2):  # the second round reads the memo
        assert [fast(v) for v in values] == [generic(v) for v in values]
    assert fast(values[0]) == fast(values[2]) == "2026-01-02 01:04:05.600000"
    assert fast(values[5]) != fast(values[6])
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2026, 1, 2, 1, 4, 5, 600000))
