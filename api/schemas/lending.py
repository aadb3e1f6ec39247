from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.common import Body, Public


class FlockCreate(Body):
    farm_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    breed: str = Field("", max_length=100)
    placed_at: datetime
    placed_count: int | None = Field(None, ge=0, le=10_000_000)


class FlockUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    closed_at: datetime | None = None


class FlockPublic(Public):
    id: str
    farm_id: str
    name: str
    breed: str
    placed_at: datetime
    placed_count: int | None
    closed_at: datetime | None
    created_at: datetime


class LoanCreate(Body):
    flock_id: str = Field(min_length=1, max_length=40)
    reference: str = Field("", max_length=100)
    principal: float = Field(gt=0, le=1e12)
    outstanding: float | None = Field(None, ge=0, le=1e12)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    start_date: datetime
    ltv_limit: float = Field(0.8, gt=0, le=10)
    org_id: str | None = Field(None, max_length=40, description="admin only")


class LoanUpdate(Body):
    outstanding: float | None = Field(None, ge=0, le=1e12)
    ltv_limit: float | None = Field(None, gt=0, le=10)
    status: Literal["active", "closed"] | None = None
    reference: str | None = Field(None, max_length=100)


class LoanPublic(Public):
    id: str
    org_id: str
    flock_id: str
    reference: str
    principal: float
    outstanding: float
    currency: str
    start_date: datetime
    ltv_limit: float
    status: str
    created_at: datetime


class HeadcountPublic(Body):
    flock_id: str
    farm_id: str
    value: int | None
    low: int | None
    high: int | None
    stale: bool = Field(description="a camera could not see the flock; value is the last good one")
    stale_since: datetime | None
    as_of: datetime | None
    mean_weight_g: float | None
    devices: int
    report_ids: list[int]
    stale_report_ids: list[int]


class SeriesPoint(Body):
    t: datetime
    headcount: float | None
    headcount_low: int | None
    headcount_high: int | None
    stale: bool
    mortality: int
    activity: float | None
    huddling: float | None
    mean_weight_g: float | None
    expected_weight_g: float | None = Field(description="growth-curve weight at the flock's age")
    report_ids: list[int]


class TimeSeries(Body):
    farm_id: str
    flock_id: str | None
    bucket: Literal["hour", "day"]
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[SeriesPoint]


class BirdPublic(Public):
    bird_id: str
    first_seen: datetime | None
    last_seen: datetime
    identity_confidence: float
    activity_bl_per_h: float
    weight_g: float | None
    weight_g_low: float | None
    weight_g_high: float | None
    health: str
    cameras: list[str]
    report_id: int
    live: bool = True


class Valuation(Body):
    loan_id: str
    flock_id: str
    farm_id: str
    currency: str
    outstanding: float
    ltv_limit: float
    headcount: int | None
    headcount_low: int | None
    headcount_high: int | None
    headcount_stale: bool
    stale_since: datetime | None
    as_of: datetime | None
    price_per_kg: float | None
    price_source: str | None
    mean_weight_g: float | None
    live_birds: int
    birds_by_health: dict[str, int]
    value: float | None
    value_low: float | None
    value_high: float | None
    ltv: float | None
    ltv_low: float | None
    ltv_high: float | None
    above_limit: bool | None
    report_ids: list[int]
    warnings: list[str]


class ValuationPoint(Body):
    t: datetime
    value: float | None
    headcount: float | None
    mean_weight_g: float | None
    stale: bool
    ltv: float | None
    report_ids: list[int]


class ValuationHistory(Body):
    loan_id: str
    bucket: Literal["hour", "day"]
    price_per_kg: float | None
    points: list[ValuationPoint]


class PortfolioRow(Body):
    loan: LoanPublic
    farm_id: str
    farm_name: str
    headcount: int | None
    headcount_stale: bool
    value: float | None
    ltv: float | None
    above_limit: bool | None
    open_alerts: int
    status: Literal["ok", "watch", "breach", "no_data"]
    report_ids: list[int]


class AlertPublic(Public):
    id: int
    org_id: str
    kind: str
    severity: str
    farm_id: str | None
    loan_id: str | None
    device_id: str | None
    message: str
    details: dict[str, Any]
    report_ids: list[int]
    status: str
    created_at: datetime


class ReportPublic(Public):
    id: int
    device_id: str
    farm_id: str
    seq: int
    kind: str
    payload_hash: str
    prev_hash: str | None
    received_at: datetime
    device_clock: datetime
    window_start: datetime | None
    window_end: datetime | None
    headcount: int | None
    headcount_low: int | None
    headcount_high: int | None
    stale: bool
    verified: bool = True


class ReportDetail(ReportPublic):
    envelope: dict[str, Any]


class IngestResponse(Body):
    report_id: int
    device_id: str
    seq: int
    kind: str
    payload_hash: str
    duplicate: bool
    alert_ids: list[int]


class ChainProblemPublic(Body):
    seq: int | None
    kind: str
    detail: str


class ChainVerification(Body):
    device_id: str
    reports: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    ok: bool
    problems: list[ChainProblemPublic]


class CameraPublic(Body):
    farm_id: str
    camera_id: str
    device_id: str
    snapshot_at: datetime
    report_id: int
    snapshot_url: str
