"""SQLAlchemy 2 typed models. The schema itself is created by Alembic migrations (api/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.db.types import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    farm_id: Mapped[str | None] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Farm(Base):
    __tablename__ = "farms"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    breed: Mapped[str] = mapped_column(String(100), default="")
    price_source: Mapped[str] = mapped_column(String(10), default="farm")  # farm | market
    market: Mapped[str | None] = mapped_column(String(100))
    price_per_kg: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[datetime]


class MarketPrice(Base):
    __tablename__ = "market_prices"
    __table_args__ = (UniqueConstraint("org_id", "market", name="uq_market_prices_org_market"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    market: Mapped[str] = mapped_column(String(100))
    price_per_kg: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    set_at: Mapped[datetime]


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), index=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    head_seq: Mapped[int | None] = mapped_column(BigInteger)
    head_hash: Mapped[str | None] = mapped_column(String(64))
    last_report_at: Mapped[datetime | None]
    last_device_clock: Mapped[datetime | None]
    # The last non-stale flock report (for the headcount-drop rule without another query per ingest).
    good_report_id: Mapped[int | None] = mapped_column(BigInteger)
    good_headcount: Mapped[int | None] = mapped_column(Integer)


class Flock(Base):
    __tablename__ = "flocks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    breed: Mapped[str] = mapped_column(String(100), default="")
    placed_at: Mapped[datetime]
    placed_count: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Loan(Base):
    __tablename__ = "loans"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    flock_id: Mapped[str] = mapped_column(ForeignKey("flocks.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(100), default="")
    principal: Mapped[float] = mapped_column(Float)
    outstanding: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    start_date: Mapped[datetime]
    ltv_limit: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | closed
    created_at: Mapped[datetime]


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("device_id", "seq", name="uq_reports_device_seq"),
        Index("ix_reports_farm_window", "farm_id", "window_end"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    payload_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    # The envelope exactly as received (JSON text) so the chain can be re-verified at any time.
    envelope: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    device_clock: Mapped[datetime]
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    headcount: Mapped[int | None] = mapped_column(Integer)
    headcount_low: Mapped[int | None] = mapped_column(Integer)
    headcount_high: Mapped[int | None] = mapped_column(Integer)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    dead_count: Mapped[int] = mapped_column(Integer, default=0)
    mortality_unseen: Mapped[int] = mapped_column(Integer, default=0)
    activity: Mapped[float | None] = mapped_column(Float)
    huddling: Mapped[float | None] = mapped_column(Float)
    mean_weight_g: Mapped[float | None] = mapped_column(Float)
    n_birds: Mapped[int] = mapped_column(Integer, default=0)


class Bird(Base):
    """Latest registry summary of one bird on one farm."""

    __tablename__ = "birds"
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), primary_key=True)
    bird_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_seen: Mapped[datetime | None]
    last_seen: Mapped[datetime]
    identity_confidence: Mapped[float] = mapped_column(Float)
    activity_bl_per_h: Mapped[float] = mapped_column(Float)
    weight_g: Mapped[float | None] = mapped_column(Float)
    weight_g_low: Mapped[float | None] = mapped_column(Float)
    weight_g_high: Mapped[float | None] = mapped_column(Float)
    health: Mapped[str] = mapped_column(String(20), default="ok")
    cameras: Mapped[list[Any]] = mapped_column(JSON, default=list)
    report_id: Mapped[int] = mapped_column(BigInteger)


class FarmRegistry(Base):
    """Latest signed registry snapshot of a farm: float16 prototypes, for double-pledge checks."""

    __tablename__ = "farm_registries"
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime]
    embedder: Mapped[str] = mapped_column(String(80))
    dim: Mapped[int] = mapped_column(Integer)
    bird_ids: Mapped[list[Any]] = mapped_column(JSON)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)


class Fingerprint(Base):
    """A frame's 64-bit perceptual hash split into four 16-bit chunks: two hashes within Hamming
    distance 3 share at least one chunk exactly (pigeonhole), so candidates come from an index."""

    __tablename__ = "fingerprints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(128))
    farm_id: Mapped[str] = mapped_column(String(40))
    camera_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    phash: Mapped[str] = mapped_column(String(16))
    c0: Mapped[int] = mapped_column(Integer, index=True)
    c1: Mapped[int] = mapped_column(Integer, index=True)
    c2: Mapped[int] = mapped_column(Integer, index=True)
    c3: Mapped[int] = mapped_column(Integer, index=True)


class CameraSnapshot(Base):
    __tablename__ = "camera_snapshots"
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128))
    report_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_org_status", "org_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    farm_id: Mapped[str | None] = mapped_column(String(40), index=True)
    loan_id: Mapped[str | None] = mapped_column(String(40), index=True)
    device_id: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dedupe_key: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged | resolved
    created_at: Mapped[datetime]
    webhook_status: Mapped[str] = mapped_column(String(16), default="none")  # none | pending | sent | failed


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[str | None] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
