"""End-to-end kit: the real API on localhost and edge boxes fed with synthetic farm footage.

Footage is filmed in sparse bursts (flockid.demo_world) and the edge runs the real FlockPipeline
(tracker, identity registry, headcount, health) with ground-truth detection and appearance
(flockid.demo_pipeline.ground_truth_pipeline), so these tests exercise the edge and the API
deterministically and fast whatever the state of the ONNX models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flockid.demo_edge import GROUND_TRUTH, EdgeDevice, burst_options
from flockid.demo_stack import LocalApi, Tenant
from flockid.demo_world import BurstPlan, farm_world, fit_px_per_cm, record_farm

REPO_ROOT = Path(__file__).resolve().parents[2]

# The demo's filming plan: per 6-hour report window, 8 bursts of 4 frames 40 minutes apart.
PLAN = BurstPlan(days=1)
DAY = 86400.0


def _epoch0(days_back: float) -> float:
    """Footage that ends well before now (reports dated in the future are refused), window-aligned."""
    now = datetime.now(timezone.utc).timestamp()
    return (now // PLAN.window_s) * PLAN.window_s - days_back * DAY


@dataclass
class Farm:
    """One farm: its synthetic world, its lender tenancy and its edge box."""

    api: LocalApi
    tenant: Tenant
    device: EdgeDevice
    world: Any
    plan: BurstPlan
    epoch0: float
    workdir: Path
    runs: list[Any] = field(default_factory=list)
    _part: int = 0

    def film(self, times_s: list[float], *, replay_from: list[float] | None = None) -> list[Any]:
        self._part += 1
        return record_farm(self.world, times_s, self.workdir / f"footage{self._part}", replay_from=replay_from)

    def run(self, times_s: list[float], *, replay_from: list[float] | None = None) -> Any:
        recs = self.film(times_s, replay_from=replay_from)
        if not self.device.calibration:
            self.device.calibration = {r.camera_id: {"px_per_cm": fit_px_per_cm(r)} for r in recs}
        stats = self.device.run(recs)
        self.runs.append(stats)
        return stats

    def windows(self, first: int, last: int) -> list[float]:
        return [t for w in range(first, last) for t in self.plan.window_times(w)]

    # The lender's view, through the API with the lender's own key.
    def get(self, path: str, **params: Any) -> Any:
        return self.api.get(path, self.tenant.lender_key, **params)

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.api.alerts(self.tenant.lender_key) if kind is None or a["kind"] == kind]

    def headcount(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/flocks/{self.tenant.flock_id}/headcount")
        return result

    def valuation(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/loans/{self.tenant.loan_id}/valuation")
        return result

    def birds(self) -> list[dict[str, Any]]:
        return self.api.items(f"/v1/flocks/{self.tenant.flock_id}/birds", self.tenant.lender_key)

    def reports(self) -> list[dict[str, Any]]:
        rows = self.api.items(f"/v1/devices/{self.device.device_id}/reports", self.tenant.lender_key)
        return sorted(rows, key=lambda r: r["seq"])


class FarmFactory:
    def __init__(self, api: LocalApi, root: Path) -> None:
        self.api = api
        self.root = root
        self.count = 0

    def __call__(self, *, lender: str, seed: int, appearance_seed: int | None = None, days_back: float = 3.0,
                 plan: BurstPlan = PLAN, principal_fraction: float = 0.6,
                 pipeline_options: dict[str, Any] | None = None, **world: Any) -> Farm:
        """pipeline_options: the edge pipeline's tuning (default: the burst tuning of the plan); the
        ground-truth appearance seed is added either way."""
        self.count += 1
        name = f"farm{self.count}-s{seed}"
        epoch0 = _epoch0(days_back)
        times = [t for w in range(plan.windows) for t in plan.window_times(w)]
        # 24 birds: one bird more or less (4%) stays under the API's 5% headcount-drop threshold.
        fields = {"birds": 24, **world}
        if appearance_seed is not None:
            fields["appearance_seed"] = appearance_seed
        # The world must span every instant any part of the test films (schedules use its duration).
        span = max(times[-1], days_back * DAY - plan.window_s)
        w = farm_world([0.0, span], epoch0, seed=seed, **fields)
        n = fields["birds"]
        weight_kg = sum(b.weight_g(w.config.start_day) for b in w.birds) / n / 1000.0
        placed = datetime.fromtimestamp(epoch0, timezone.utc) - timedelta(days=w.config.start_day)
        tenant = self.api.enrol_tenant(lender=lender, farm=name, placed_at=placed, placed_count=n,
                                       principal=round(principal_fraction * n * weight_kg * 2.0, 2),
                                       price_per_kg=2.0)
        workdir = self.root / name
        if pipeline_options is None:
            options = burst_options(plan.window_s, plan.burst_every_s, appearance_seed=w.config.bird_seed,
                                    burst_frames=plan.frames)
        else:
            options = {**pipeline_options, "appearance_seed": w.config.bird_seed}
        device = EdgeDevice(workdir / "edge", f"edge-{name}", tenant.farm_id, factory=GROUND_TRUTH,
                            options=options, window_s=plan.window_s, snapshot_width=320)
        device.connect(self.api.url, self.api.enrol_device(tenant, device.device_id, device.public_key_pem))
        return Farm(self.api, tenant, device, w, plan, epoch0, workdir)


