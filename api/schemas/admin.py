from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.common import Body, Public

Name = Field(min_length=1, max_length=200)
Currency = Field("USD", pattern=r"^[A-Z]{3}$")


class OrganizationCreate(Body):
    name: str = Name
    webhook_url: str | None = Field(None, max_length=500, pattern=r"^https?://\S+$")


class OrganizationPublic(Public):
    id: str
    name: str
    webhook_url: str | None
    created_at: datetime


class ApiKeyCreate(Body):
    role: Literal["admin", "lender", "farm", "device"]
    org_id: str | None = Field(None, max_length=40)
    farm_id: str | None = Field(None, max_length=40)
    device_id: str | None = Field(None, max_length=128)
    label: str = Field("", max_length=200)


class ApiKeyPublic(Public):
    id: str
    role: str
    org_id: str | None
    farm_id: str | None
    device_id: str | None
    label: str
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    api_key: str = Field(description="the full key: shown once, only its hash is stored")


class FarmCreate(Body):
    org_id: str | None = Field(None, max_length=40, description="admin only; a lender's farms are its own")
    name: str = Name
    owner_name: str = Field("", max_length=200)
    location: str = Field("", max_length=300)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    breed: str = Field("", max_length=100)
    price_source: Literal["farm", "market"] = "farm"
    market: str | None = Field(None, min_length=1, max_length=100)
    price_per_kg: float | None = Field(None, ge=0, le=1e6)
    currency: str = Currency


class FarmUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    owner_name: str | None = Field(None, max_length=200)
    location: str | None = Field(None, max_length=300)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    breed: str | None = Field(None, max_length=100)
    price_source: Literal["farm", "market"] | None = None
    market: str | None = Field(None, min_length=1, max_length=100)
    price_per_kg: float | None = Field(None, ge=0, le=1e6)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class FarmPublic(Public):
    id: str
    org_id: str
    name: str
    owner_name: str
    location: str
    latitude: float | None
    longitude: float | None
    breed: str
    price_source: str
    market: str | None
    price_per_kg: float | None
    currency: str
    created_at: datetime


class MarketPriceSet(Body):
    market: str = Field(min_length=1, max_length=100)
    price_per_kg: float = Field(ge=0, le=1e6)
    currency: str = Currency
    org_id: str | None = Field(None, max_length=40, description="admin only")


class MarketPricePublic(Public):
    org_id: str
    market: str
    price_per_kg: float
    currency: str
    set_at: datetime


class DeviceCreate(Body):
    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    farm_id: str = Field(min_length=1, max_length=40)
    public_key_pem: str = Field(min_length=40, max_length=2000)
    label: str = Field("", max_length=200)


class DevicePublic(Public):
    id: str
    farm_id: str
    key_id: str
    label: str
    created_at: datetime
    head_seq: int | None
    last_report_at: datetime | None
    last_device_clock: datetime | None


class DeviceCreated(DevicePublic):
    api_key: str = Field(description="device role key for POST /v1/reports: shown once")


class AuditEventPublic(Public):
    id: int
    at: datetime
    actor: str
    org_id: str | None
    action: str
    target_type: str
    target_id: str
    details: dict
