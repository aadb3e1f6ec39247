"""Builders for API tests: tenants (organisation, lender key, farm, flock, loan, device) and a
simulated device that signs hash-chained reports exactly like the edge does."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from vision.wire import canonical_bytes, generate_keypair, payload_hash, public_key_pem, sign_payload

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"0" * 64 + b"\xff\xd9").decode()


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@dataclass
class DeviceSim:
    device_id: str
    farm_id: str
    key: Any = field(default_factory=generate_keypair)
    seq: int = 0
    prev_hash: str | None = None
    api_key: str = ""

    @property
    def public_pem(self) -> str:
        return public_key_pem(self.key)

    def _base(self, kind: str, t: datetime) -> dict[str, Any]:
        return {"schema_version": 1, "kind": kind, "device_id": self.device_id, "farm_id": self.farm_id,
                "seq": self.seq, "prev_hash": self.prev_hash, "device_clock": iso(t), "monotonic_s": 1000.0 + self.seq}

    def _seal(self, payload: dict[str, Any], advance: bool) -> dict[str, Any]:
        env = sign_payload(payload, self.key).model_dump()
        if advance:
            self.prev_hash = payload_hash(payload)
            self.seq += 1
        return env

    def flock(self, t: datetime, *, headcount: int = 100, band: int = 2, birds: list[dict] | None = None,
              alerts: list[dict] | None = None, stale: bool = False, fingerprints: list[str] | None = None,
              snapshots: dict[str, str] | None = None, mean_weight_g: float | None = None,
              advance: bool = True, **extra: Any) -> dict[str, Any]:
        p = self._base("flock_report", t)
        p.update({
            "window_start": iso(t - timedelta(hours=1)), "window_end": iso(t), "camera_ids": ["cam0"],
            "frames_seen": 100, "frames_processed": 50,
            "headcount": {"value": headcount, "low": max(0, headcount - band), "high": headcount + band,
                          "instantaneous_max": headcount, "stale": stale},
            "birds": birds if birds is not None else [],
            "alerts": alerts or [],
            "signals": {"activity_index": 1.5, "huddling_index": 0.2, "mean_weight_g": mean_weight_g,
                        "mortality_unseen": 0},
            "fingerprints": [{"camera_id": "cam0", "at": iso(t - timedelta(minutes=i)), "phash": h}
                             for i, h in enumerate(fingerprints or [])],
            "snapshots": [{"camera_id": c, "at": iso(t), "jpeg_b64": b} for c, b in (snapshots or {}).items()],
        })
        p.update(extra)
        return self._seal(p, advance)

    def registry(self, t: datetime, vectors: np.ndarray, *, ids: list[str] | None = None,
                 embedder: str = "a" * 64) -> dict[str, Any]:
        p = self._base("registry_snapshot", t)
        birds = []
        for i, v in enumerate(vectors):
            v = v / np.linalg.norm(v)
            birds.append({"bird_id": (ids[i] if ids else f"bird-{i:06d}"),
                          "prototype_f16_b64": base64.b64encode(v.astype("<f2").tobytes()).decode(),
                          "dim": int(v.size), "first_seen": iso(T0), "last_seen": iso(t), "observations": 10})
        p.update({"taken_at": iso(t), "embedder": embedder, "birds": birds})
        return self._seal(p, True)


def bird(i: int, t: datetime, weight: float = 2000.0, spread: float = 100.0, health: list[str] | None = None,
         **extra: Any) -> dict[str, Any]:
    b = {"bird_id": f"bird-{i:06d}", "identity_confidence": 0.9, "last_seen": iso(t), "first_seen": iso(T0),
         "activity_bl_per_h": 3.0, "weight_g": weight, "weight_g_low": weight - spread,
         "weight_g_high": weight + spread, "health": health or ["ok"], "cameras": ["cam0"]}
    b.update(extra)
    return b


def rand(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Tenant:
    """One lender with a farm, a flock, a loan and a registered device."""

    org_id: str
    lender_key: str
    farm_id: str
    flock_id: str
    loan_id: str
    device: DeviceSim
    farm_key: str


def make_tenant(client: Any, admin_key: str, *, price: float = 2.0, outstanding: float = 100.0,
                ltv_limit: float = 0.8, placed_at: datetime = T0) -> Tenant:
    a = auth(admin_key)
    r = client.post("/v1/organizations", json={"name": rand("Bank")}, headers=a)
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    r = client.post("/v1/api-keys", json={"role": "lender", "org_id": org}, headers=a)
    assert r.status_code == 201, r.text
    lender = r.json()["api_key"]
    r = client.post("/v1/farms", json={"name": rand("Farm"), "owner_name": "Ada", "location": "Somewhere",
                                       "breed": "broiler", "price_per_kg": price}, headers=auth(lender))
    assert r.status_code == 201, r.text
    farm = r.json()["id"]
    r = client.post("/v1/api-keys", json={"role": "farm", "farm_id": farm}, headers=a)
    assert r.status_code == 201, r.text
    farm_key = r.json()["api_key"]
    r = client.post("/v1/flocks", json={"farm_id": farm, "name": "house 1", "placed_at": iso(placed_at)},
                    headers=auth(lender))
    assert r.status_code == 201, r.text
    flock = r.json()["id"]
    r = client.post("/v1/loans", json={"flock_id": flock, "principal": outstanding, "start_date": iso(placed_at),
                                       "ltv_limit": ltv_limit}, headers=auth(lender))
    assert r.status_code == 201, r.text
    loan = r.json()["id"]
    dev = DeviceSim(rand("dev"), farm)
    r = client.post("/v1/devices", json={"device_id": dev.device_id, "farm_id": farm,
                                         "public_key_pem": dev.public_pem}, headers=auth(farm_key))
    assert r.status_code == 201, r.text
    dev.api_key = r.json()["api_key"]
    return Tenant(org, lender, farm, flock, loan, dev, farm_key)


def post_report(client: Any, dev: DeviceSim, env: dict[str, Any]) -> Any:
    return client.post("/v1/reports", json=env, headers=auth(dev.api_key))


__all__ = ["JPEG", "T0", "DeviceSim", "Tenant", "auth", "bird", "canonical_bytes", "iso", "make_tenant",
           "post_report", "rand"]
