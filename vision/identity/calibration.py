"""Appearance thresholds derived from the re-ID model card, never tuned to one model by hand.

Cosine similarities mean different things for different re-ID models: the shipped models have put the
same-bird / different-bird boundary anywhere from ~0.3 to ~0.45, and a retrained model moves it again.
So every appearance threshold of the tracker, the identity registry and the headcount is derived here
from where the model's similarities fall, as measured on crops of birds it never saw in training:

- the card's `similarity_calibration` block (written by `training.eval_reid.similarity_calibration`
  from a crop set's query x gallery pairs): `same` {p5, p50, ...} and `different` {p50, p95, p99,
  p99.9, ...} percentiles and the balanced `threshold`;
- without it, the card's `match_threshold` alone (the training run's balanced threshold t): the
  percentiles are then estimated as t -/+ fixed fractions of (1 - t) (`FALLBACK_SHAPE`, the shape of the
  block measured for the shipped model), so a retrained model still moves every threshold with its t;
- without either (a user's own export): `None`, and every stage keeps its plain defaults.

The rules (percentiles of single crops of one bird at different times, so a track's smoothed
embedding, which is steadier, clears them more easily):

- tracker `app_reject` (a cosine distance) = 1 - same.p5: veto a pair only when 95 % of same-bird
  pairs look more alike;
- tracker `app_rescue` = 1 - different.p99.9 (<= app_reject): no box overlap needed when different
  birds almost never look this alike;
- tracker `reid_min_sim` = different.p99: a lost/dormant track is re-identified only above what 99 %
  of other birds reach; tracker `reid_margin` = 0.2 x spread, registry `margin` = 0.1 x spread, where
  spread = same.p50 - different.p50 is how far apart the two populations sit;
- registry `match_threshold` = different.p99: a known bird's id needs a similarity other birds
  rarely reach; `new_threshold` = same.p50 (<= match_threshold): a track whose best bird is less alike
  than a typical pair of views of one bird is a new bird; `reverify_drop` = 0.4 x spread (how far a
  holder may drift below match_threshold before it drops its id); `exemplar_novelty` =
  (1 + same.p50) / 2 (a new view is kept as an exemplar only when it adds something); `relink_min_sim` =
  same.p5 (a track that starts where a bird just vanished is that bird unless it looks less alike than
  95 % of same-bird pairs: the tracker's veto rule);
- counting `duplicate_sim` = different.p99: a bird enrolled this close to another one is a possible
  duplicate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD_BLOCK = "similarity_calibration"
SAME_KEYS = ("p5", "p50")
DIFFERENT_KEYS = ("p50", "p99", "p99.9")
# Percentiles as t + k * (1 - t) when only the card's match_threshold t is known: the block measured for
# the shipped re-ID model on a mixed and a uniform crop set (t 0.35: same p5 0.10 / p50 0.54, different
# p50 0.16 / p99 0.77 / p99.9 0.89) expressed relative to its own threshold, so that the fallback moves
# with whatever t a retrained model has.
FALLBACK_SHAPE = {"same_p5": -0.385, "same_p50": 0.286, "diff_p50": -0.29, "diff_p99": 0.649, "diff_p999": 0.832}


@dataclass(frozen=True)
class AppearanceCalibration:
    """Where a re-ID model's cosine similarities fall for the same bird and for different birds."""

    same_p5: float
    same_p50: float
    diff_p50: float
    diff_p99: float
    diff_p999: float
    threshold: float
    source: str

    def __post_init__(self) -> None:
        for name in ("same_p5", "same_p50", "diff_p50", "diff_p99", "diff_p999", "threshold"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not -1 <= v <= 1:
                raise ValueError(f"{self.source}: {name} must be a cosine similarity in [-1, 1], got {v!r}")
        if not self.same_p5 <= self.same_p50:
            raise ValueError(f"{self.source}: same.p5 ({self.same_p5}) must be <= same.p50 ({self.same_p50})")
        if not self.diff_p50 <= self.diff_p99 <= self.diff_p999:
            raise ValueError(
                f"{self.source}: different percentiles must increase (p50 {self.diff_p50}, p99 {self.diff_p99}, "
                f"p99.9 {self.diff_p999})"
            )

    @property
    def spread(self) -> float:
        """Distance between the typical same-bird and different-bird similarity (>= 0.05 so margins exist)."""
        return max(0.05, self.same_p50 - self.diff_p50)

    def tracker_config(self) -> dict[str, float]:
        """FlockTracker appearance thresholds (cosine distances for the costs, similarities for re-ID)."""
        reject = _clip(1.0 - self.same_p5, 0.05, 1.0)
        return {
            "app_reject": reject,
            "app_rescue": _clip(1.0 - self.diff_p999, 0.0, reject),
            "reid_min_sim": _clip(self.diff_p99, -1.0, 1.0),
            "reid_margin": _clip(0.2 * self.spread, 0.0, 2.0),
        }

    def identity_config(self) -> dict[str, float]:
        """IdentityRegistry thresholds (keyword arguments of IdentityConfig)."""
        match = _clip(self.diff_p99, -1.0, 1.0)
        return {
            "match_threshold": match,
            "new_threshold": min(match, _clip(self.same_p50, -1.0, 1.0)),
            "margin": _clip(0.1 * self.spread, 0.0, 2.0),
            "reverify_drop": _clip(0.4 * self.spread, 0.0, 2.0),
            "exemplar_novelty": _clip((1.0 + self.same_p50) / 2.0, -1.0, 1.0),
            "relink_min_sim": _clip(self.same_p5, -1.0, 1.0),
        }

    def counting_config(self) -> dict[str, float]:
        """HeadcountCounter similarity thresholds (keyword arguments of CountingConfig)."""
        return {"duplicate_sim": _clip(self.diff_p99, -1.0, 1.0)}


def _clip(v: float, lo: float, hi: float) -> float:
    return float(min(hi, max(lo, v)))


def _number(block: dict[str, Any], key: str, where: str) -> float:
    v = block.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where}.{key} must be a number, got {v!r}")
    return float(v)


def calibration_from_card(card: dict[str, Any], where: str = "model card") -> AppearanceCalibration | None:
    """The re-ID model's AppearanceCalibration from its card dict (see the module docstring); None when the
    card has neither a `similarity_calibration` block nor a `match_threshold`."""
    block = card.get(CARD_BLOCK)
    if block is not None:
        w = f"{where}: {CARD_BLOCK}"
        if not isinstance(block, dict):
            raise ValueError(f"{w} must be an object, got {type(block).__name__}")
        same, diff = block.get("same"), block.get("different")
        if not isinstance(same, dict) or not isinstance(diff, dict):
            raise ValueError(f"{w} needs objects 'same' {list(SAME_KEYS)} and 'different' {list(DIFFERENT_KEYS)}")
        return AppearanceCalibration(
            same_p5=_number(same, "p5", f"{w}.same"),
            same_p50=_number(same, "p50", f"{w}.same"),
            diff_p50=_number(diff, "p50", f"{w}.different"),
            diff_p99=_number(diff, "p99", f"{w}.different"),
            diff_p999=_number(diff, "p99.9", f"{w}.different"),
            threshold=_number(block, "threshold", w),
            source=w,
        )
    if card.get("match_threshold") is None:
        return None
    t = _number(card, "match_threshold", where)
    if not -1.0 < t < 1.0:
        raise ValueError(f"{where}.match_threshold must be in (-1, 1), got {t}")
    u = 1.0 - t
    est = {k: _clip(t + f * u, -1.0, 1.0) for k, f in FALLBACK_SHAPE.items()}
    return AppearanceCalibration(**est, threshold=t, source=f"{where}: match_threshold (no {CARD_BLOCK} block)")


def appearance_calibration_from_card(reid_path: Path) -> AppearanceCalibration | None:
    """`calibration_from_card` of the card next to a re-ID model file."""
    from vision.weights import card_path, read_card

    return calibration_from_card(read_card(reid_path), str(card_path(reid_path)))
