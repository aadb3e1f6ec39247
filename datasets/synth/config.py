"""Configuration of the synthetic flock world (pydantic, extra="forbid", bounded)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FlockKind = Literal["mixed", "uniform"]
CameraKind = Literal["oblique", "topdown", "random"]
SceneKind = Literal["run", "barn", "random"]
TamperKind = Literal["covered", "dark", "moved", "frozen"]
HealthState = Literal["ok", "sick", "dead"]

FLOCK_KINDS = ("mixed", "uniform")
CAMERA_KINDS = ("oblique", "topdown", "random")
SCENE_KINDS = ("run", "barn", "random")
TAMPER_KINDS = ("covered", "dark", "moved", "frozen")

# 2026-03-01 00:00:00 UTC: a fixed epoch so timestamps (and the overlay) are reproducible.
DEFAULT_START_EPOCH = 1_772_323_200.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthEvent(_Strict):
    """Bird `bird` (0-based index in the flock) becomes `state` at simulated time `at_s`."""

    bird: int = Field(ge=0)
    state: Literal["sick", "dead", "ok"]
    at_s: float = Field(ge=0)


class Removal(_Strict):
    """A fraction of the (remaining) birds leaves the farm for good at `at_s` (sold or stolen)."""

    at_s: float = Field(ge=0)
    fraction: float = Field(gt=0, le=1)


class Tamper(_Strict):
    """Camera tampering between start_s and end_s (simulated seconds). camera=None: every camera."""

    kind: TamperKind
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    camera: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _order(self) -> Tamper:
        if self.end_s <= self.start_s:
            raise ValueError(f"tamper {self.kind}: end_s={self.end_s} must be > start_s={self.start_s}")
        return self


class WorldConfig(_Strict):
    """Everything that defines one synthetic farm sequence.

    `seed` drives the scene, cameras and behaviour; `appearance_seed` (default: seed) drives the birds'
    looks and growth, so the same birds can be placed on another farm (double-pledge fraud tests).
    Times are simulated seconds since the first frame; `time_step_s` (default 1/fps) lets a few
    frames cover hours or days.
    """

    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    appearance_seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    birds: int = Field(default=40, ge=1, le=2000)
    frames: int | None = Field(default=600, ge=1, le=10_000_000)
    fps: float = Field(default=10.0, gt=0, le=240)
    time_step_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    size_wh: tuple[int, int] = (640, 360)
    flock: FlockKind = "mixed"
    camera: CameraKind = "oblique"
    scene: SceneKind = "random"
    cameras: int = Field(default=1, ge=1, le=4)
    night_fraction: float = Field(default=0.0, ge=0, le=1)
    start_day: float = Field(default=28.0, ge=0, le=120)
    start_epoch: float = Field(default=DEFAULT_START_EPOCH, ge=0)
    # Typical bird length in pixels at start_day in the middle of the view; None = randomised.
    bird_px: float | None = Field(default=None, ge=8, le=400)
    # Health scripting: random sick/dead birds with onset windows (simulated seconds), plus explicit events.
    sick_birds: int = Field(default=0, ge=0)
    dead_birds: int = Field(default=0, ge=0)
    sick_window_s: tuple[float, float] | None = None
    dead_window_s: tuple[float, float] | None = None
    health_events: list[HealthEvent] = Field(default_factory=list)
    # A bird that falls sick or dies is moved to a spot well inside this camera's view (each incident its
    # own spot), so the event is filmed rather than lost out of every view; None: it stays where it is.
    incident_camera: int | None = Field(default=None, ge=0)
    # Across a gap of over a minute between filmed instants a sick bird is found about where it was left
    # (sick broilers sit most of the day) instead of wherever the behaviour's jump over the gap put it.
    sick_stay_put: bool = False
    # Leaving and re-entering the view: trips per bird-hour and absence durations (log-uniform).
    leave_rate_per_hour: float = Field(default=14.0, ge=0, le=3600)
    absence_s: tuple[float, float] = (3.0, 180.0)
    removals: list[Removal] = Field(default_factory=list)
    tamper: list[Tamper] = Field(default_factory=list)
    # Image degradations (None = randomised per scene).
    jpeg_quality: int | None = Field(default=None, ge=5, le=100)
    compression: bool = True
    # Barrel distortion strength of the wide-angle lens (0 = pinhole); None = random in 0..0.3.
    lens_distortion: float | None = Field(default=None, ge=0, le=0.6)
    noise: bool = True
    blur: bool = True
    shake: bool = True
    overlay: bool = True
    randomize: float = Field(default=1.0, ge=0, le=1)
    # Boxes below this visibility are not written to MOT gt (nobody could annotate them).
    gt_min_visibility: float = Field(default=0.1, ge=0, le=1)

    @field_validator("size_wh")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        w, h = v
        if not (64 <= w <= 4096 and 64 <= h <= 4096):
            raise ValueError(f"size_wh={v}: width and height must be in 64..4096")
        return v

    @field_validator("absence_s", "sick_window_s", "dead_window_s")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 <= v[0] <= v[1]):
            raise ValueError(f"window {v}: need 0 <= lo <= hi")
        return v

    @model_validator(mode="after")
    def _counts(self) -> WorldConfig:
        if self.sick_birds + self.dead_birds > self.birds:
            raise ValueError(
                f"sick_birds ({self.sick_birds}) + dead_birds ({self.dead_birds}) > birds ({self.birds})"
            )
        for ev in self.health_events:
            if ev.bird >= self.birds:
                raise ValueError(f"health_events: bird {ev.bird} out of range (birds={self.birds})")
        for t in self.tamper:
            if t.camera is not None and t.camera >= self.cameras:
                raise ValueError(f"tamper: camera {t.camera} out of range (cameras={self.cameras})")
        if self.incident_camera is not None and self.incident_camera >= self.cameras:
            raise ValueError(f"incident_camera {self.incident_camera} out of range (cameras={self.cameras})")
        if self.absence_s[0] <= 0:
            raise ValueError(f"absence_s={self.absence_s}: minimum must be > 0")
        return self

    @property
    def step_s(self) -> float:
        """Simulated seconds between consecutive frames."""
        return self.time_step_s if self.time_step_s is not None else 1.0 / self.fps

    @property
    def bird_seed(self) -> int:
        return self.seed if self.appearance_seed is None else self.appearance_seed

    @property
    def duration_s(self) -> float:
        n = self.frames if self.frames is not None else 1
        return max(n - 1, 0) * self.step_s
