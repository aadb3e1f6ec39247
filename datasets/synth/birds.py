"""Individual birds: persistent appearance traits, growth curve and health timeline.

Appearance comes from `appearance_seed` only, so the same birds can be placed on another farm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PATTERNS = ("solid", "barred", "speckled", "two-tone")
COMBS = ("single", "rose", "pea")

# (name, pattern, primary BGR, secondary BGR, comb, jitter): free-range breeds seen on small farms.
_BREEDS: tuple[tuple[str, str, tuple[int, int, int], tuple[int, int, int], str, float], ...] = (
    ("white", "solid", (232, 236, 238), (215, 222, 226), "single", 8),
    ("black", "solid", (38, 36, 34), (52, 60, 40), "single", 8),
    ("red-brown", "solid", (40, 75, 150), (25, 40, 85), "single", 14),
    ("buff", "solid", (105, 175, 222), (80, 150, 205), "single", 12),
    ("blue-grey", "solid", (140, 128, 118), (95, 88, 80), "rose", 10),
    ("barred-rock", "barred", (205, 205, 208), (45, 45, 50), "single", 8),
    ("cuckoo", "barred", (150, 148, 150), (70, 68, 70), "single", 10),
    ("speckled-sussex", "speckled", (40, 70, 125), (225, 228, 232), "single", 12),
    ("mille-fleur", "speckled", (60, 110, 170), (30, 30, 35), "rose", 12),
    ("columbian", "two-tone", (230, 234, 236), (40, 40, 44), "pea", 8),
    ("partridge", "two-tone", (50, 95, 150), (30, 40, 70), "pea", 12),
    ("golden-laced", "speckled", (50, 135, 200), (30, 35, 40), "rose", 12),
)
_BROILER = ("broiler-white", "solid", (226, 232, 236), (214, 222, 228), "single", 5.0)


@dataclass(frozen=True)
class GrowthCurve:
    """Gompertz growth: weight_g(age_days) = w_max * exp(-b * exp(-k * age)), b = ln(w_max / w0)."""

    w0_g: float
    w_max_g: float
    k_per_day: float

    def weight_g(self, age_days: float) -> float:
        b = math.log(self.w_max_g / self.w0_g)
        return float(self.w_max_g * math.exp(-b * math.exp(-self.k_per_day * max(age_days, 0.0))))


@dataclass(frozen=True)
class BirdTraits:
    """What a bird looks like, for life. Colours are BGR."""

    breed: str
    pattern: str
    primary_bgr: tuple[int, int, int]
    secondary_bgr: tuple[int, int, int]
    comb: str
    comb_size: float  # 0..1, relative to head
    comb_bgr: tuple[int, int, int]
    leg_bgr: tuple[int, int, int]
    shape: float  # body length multiplier around the weight-derived length
    pattern_period: float  # stripe/speckle spacing as a fraction of body length
    twin_of: int | None = None  # bird_id of the bird this one was cloned from (near-twin)

    def descriptor(self) -> np.ndarray:
        """Numeric appearance vector used to decide which birds look alike."""
        return np.asarray([*self.primary_bgr, *self.secondary_bgr, self.shape * 100.0], dtype=np.float64)


@dataclass
class Bird:
    """One individual: id (1-based, also the MOT track id), traits, growth and health/removal timeline."""

    bird_id: int
    traits: BirdTraits
    growth: GrowthCurve
    sex: str
    health: list[tuple[float, str]] = field(default_factory=lambda: [(0.0, "ok")])
    removed_at_s: float | None = None

    def state_at(self, t_s: float) -> str:
        state = "ok"
        for at, st in self.health:
            if at <= t_s:
                state = st
            else:
                break
        return state

    def weight_g(self, age_days: float) -> float:
        return self.growth.weight_g(age_days)

    def length_m(self, age_days: float) -> float:
        """Body length (beak to tail) from weight: length grows with the cube root of weight."""
        return body_length_m(self.weight_g(age_days)) * self.traits.shape

    def to_json(self, start_day: float, end_day: float) -> dict[str, Any]:
        days = list(range(math.floor(start_day), math.ceil(end_day) + 1))
        return {
            "bird_id": self.bird_id,
            "sex": self.sex,
            "traits": asdict(self.traits),
            "growth": asdict(self.growth),
            "weight_g_by_day": {str(d): round(self.weight_g(d), 1) for d in days},
            "health": [{"at_s": round(at, 3), "state": st} for at, st in self.health],
            "removed_at_s": self.removed_at_s,
        }


def body_length_m(weight_g: float) -> float:
    # A 2.5 kg broiler is about 40 cm beak to tail; a day-old chick (42 g) about 10 cm.
    return 0.40 * (max(weight_g, 1.0) / 2500.0) ** (1.0 / 3.0)


def _jitter(rng: np.random.Generator, bgr: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    # Correlated brightness jitter plus a little per-channel hue noise.
    common = rng.normal(0, amount)
    vals = [int(np.clip(c + common + rng.normal(0, amount * 0.4), 0, 255)) for c in bgr]
    return (vals[0], vals[1], vals[2])


def _make_traits(rng: np.random.Generator, flock: str) -> BirdTraits:
    breed: tuple[str, str, tuple[int, int, int], tuple[int, int, int], str, float]
    breed = _BROILER if flock == "uniform" else _BREEDS[int(rng.integers(len(_BREEDS)))]
    name, pattern, p, s, comb, jit = breed
    comb_red = (int(rng.integers(20, 50)), int(rng.integers(20, 45)), int(rng.integers(170, 225)))
    leg = (40, 170, 215) if rng.random() < 0.7 else (110, 120, 125)
    return BirdTraits(
        breed=name,
        pattern=pattern,
        primary_bgr=_jitter(rng, p, jit),
        secondary_bgr=_jitter(rng, s, jit),
        comb=comb,
        comb_size=float(rng.uniform(0.3, 1.0)) if flock == "mixed" else float(rng.uniform(0.25, 0.45)),
        comb_bgr=comb_red,
        leg_bgr=leg,
        shape=float(rng.normal(1.0, 0.05 if flock == "mixed" else 0.03)),
        pattern_period=float(rng.uniform(0.07, 0.12)),
    )


def _twin(rng: np.random.Generator, t: BirdTraits, of_id: int) -> BirdTraits:
    return BirdTraits(
        breed=t.breed,
        pattern=t.pattern,
        primary_bgr=_jitter(rng, t.primary_bgr, 3),
        secondary_bgr=_jitter(rng, t.secondary_bgr, 3),
        comb=t.comb,
        comb_size=float(np.clip(t.comb_size + rng.normal(0, 0.04), 0.2, 1.0)),
        comb_bgr=_jitter(rng, t.comb_bgr, 4),
        leg_bgr=t.leg_bgr,
        shape=float(t.shape + rng.normal(0, 0.015)),
        pattern_period=float(t.pattern_period * rng.uniform(0.95, 1.05)),
        twin_of=of_id,
    )


def _growth(rng: np.random.Generator, flock: str) -> GrowthCurve:
    if flock == "uniform":
        # Broiler-like: ~2.5 kg at 35 days.
        return GrowthCurve(
            w0_g=float(rng.normal(42, 3)),
            w_max_g=float(rng.normal(5800, 350)),
            k_per_day=float(rng.normal(0.050, 0.0025)),
        )
    # Free-range dual-purpose breeds grow slower and vary more.
    return GrowthCurve(
        w0_g=float(rng.normal(38, 4)),
        w_max_g=float(rng.normal(3400, 450)),
        k_per_day=float(rng.normal(0.040, 0.004)),
    )


def make_flock(n: int, flock: str, appearance_seed: int) -> list[Bird]:
    """N birds with ids 1..N. In `mixed` flocks at least a quarter of birds have a near-twin."""
    if flock not in ("mixed", "uniform"):
        raise ValueError(f"flock={flock!r}: valid kinds are 'mixed', 'uniform'")
    rng = np.random.default_rng([appearance_seed, 0xB1D5])
    traits: list[BirdTraits] = [_make_traits(rng, flock) for _ in range(n)]
    if flock == "mixed" and n >= 2:
        # Each twin pair gives two birds with a near-twin; 0.15 * n pairs -> >= 30 % of the flock.
        n_pairs = max(1, math.ceil(0.15 * n))
        order = rng.permutation(n)
        for k in range(min(n_pairs, n // 2)):
            src, dst = int(order[2 * k]), int(order[2 * k + 1])
            traits[dst] = _twin(rng, traits[src], src + 1)
    birds = []
    for i, t in enumerate(traits):
        birds.append(
            Bird(bird_id=i + 1, traits=t, growth=_growth(rng, flock), sex="hen" if rng.random() < 0.85 else "cock")
        )
    return birds


def lookalike_pairs_from_traits(traits: list[dict[str, Any]], max_dist: float = 30.0) -> list[tuple[int, int]]:
    """Pairs of indices whose traits (as in birds.json) look alike: same pattern and comb, similar
    primary and secondary colours (BGR distance < max_dist each) and body shape within 8 %."""
    out: list[tuple[int, int]] = []
    for i in range(len(traits)):
        a = traits[i]
        for j in range(i + 1, len(traits)):
            b = traits[j]
            if a["pattern"] != b["pattern"] or a["comb"] != b["comb"]:
                continue
            dp = float(np.linalg.norm(np.subtract(a["primary_bgr"], b["primary_bgr"])))
            ds = float(np.linalg.norm(np.subtract(a["secondary_bgr"], b["secondary_bgr"])))
            if dp < max_dist and ds < max_dist and abs(a["shape"] / b["shape"] - 1.0) < 0.08:
                out.append((i, j))
    return out
