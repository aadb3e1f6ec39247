"""Service settings from the environment (prefix `FLOCKID_`).

Development mode runs with zero set-up (SQLite file, a fixed development secret). Production
refuses to start with a missing or development secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "flockid-development-secret-do-not-use-in-production"

DEFAULT_HAIRCUTS: dict[str, float] = {
    "ok": 1.0,
    "lethargic": 0.8,
    "suspected_sick": 0.5,
    "suspected_dead": 0.0,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOCKID_", extra="forbid")

    mode: Literal["development", "production"] = "development"
    database_url: str = Field(default="sqlite:///flockid.db", min_length=1)
    secret_key: SecretStr | None = Field(
        default=None, description="pepper for API-key hashes and webhook signatures; required in production"
    )
    # Size: a report may carry several base64 JPEG snapshots (<= 400 kB each in the wire schema).
    max_body_bytes: int = Field(default=4_000_000, ge=1_024, le=64_000_000)
    ingest_rate_per_s: float = Field(default=20.0, gt=0, le=1e6, description="sustained reports/s per device")
    ingest_burst: int = Field(default=200, ge=1, le=1_000_000)
    ingest_threads: int | None = Field(
        default=None, ge=0, le=256,
        description="threads that verify and store reports; 0 = on the event loop itself, no thread hand-off. "
                    "Default 0 on SQLite (one writer at a time anyway; ~20% more reports per CPU-second than 2 "
                    "threads, but a long write by another endpoint stalls every request, not only ingest), "
                    "8 on PostgreSQL (network waits release the GIL)")
    clock_skew_s: float = Field(default=300.0, ge=0, le=86_400, description="future tolerance for device_clock")
    headcount_drop_fraction: float = Field(default=0.05, gt=0, lt=1)
    headcount_drop_min_birds: int = Field(
        default=3, ge=1, le=1_000_000,
        description="a headcount-drop alert also needs at least this many birds lost (small flocks)")
    mortality_spike_fraction: float = Field(default=0.01, gt=0, lt=1)
    silent_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    double_pledge_cosine: float = Field(default=0.92, gt=0, le=1)
    double_pledge_fraction: float = Field(default=0.5, gt=0, le=1)
    replay_hamming: int = Field(default=6, ge=0, le=7, description="max Hamming distance of a repeated frame hash")
    replay_offset_tolerance_s: float = Field(
        default=600.0, ge=0, le=86_400,
        description="replayed frames must all be shifted from their originals by one offset, within this")
    replay_min_matches: int = Field(default=3, ge=1, le=10_000)
    replay_fraction: float = Field(default=0.5, gt=0, le=1)
    replay_min_age_s: float = Field(default=3600.0, ge=0, description="only frames this much older count as a replay")
    health_haircuts: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_HAIRCUTS))
    live_bird_days: float = Field(default=3.0, gt=0, le=365, description="a bird unseen this long is not counted")
    ltv_check_interval_s: float = Field(default=3600.0, ge=0, description="min report time between LTV checks")
    scan_interval_s: float = Field(default=300.0, ge=0, description="background alert scan period; 0 disables it")
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    webhook_retries: int = Field(default=3, ge=0, le=10)
    mount_dashboard: bool = True
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry instrumentation (global providers). Off by default: the "
                    "API exports Prometheus metrics at /metrics, and the per-request provider checks cost "
                    "a few percent of ingest")

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.mode == "production":
            secret = self.secret_key.get_secret_value() if self.secret_key else ""
            if not secret or secret == DEV_SECRET:
                raise ValueError("FLOCKID_SECRET_KEY must be set to a non-default value in production mode")
            if len(secret) < 32:
                raise ValueError("FLOCKID_SECRET_KEY must be at least 32 characters in production mode")
        for name, cut in self.health_haircuts.items():
            if not 0.0 <= cut <= 1.0:
                raise ValueError(f"health_haircuts[{name!r}] must be within [0, 1], got {cut}")
        return self

    def secret(self) -> bytes:
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        return DEV_SECRET.encode()
