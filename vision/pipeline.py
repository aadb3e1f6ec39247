"""One camera's pipeline: detect -> track -> embed (only when needed) -> identity registry -> counting
+ health.

The edge runtime runs one `FlockPipeline` per camera (each in its own thread) and shares ONE
`IdentityRegistry` between them, so a bird seen by two cameras carries the same bird id. Each report
interval it calls `window_summary(start_ts, end_ts)` on every camera's pipeline and merges the results
with `combine_summaries(...)` (a bird id seen by two cameras is one bird), then `summary.report_fields()`
gives the `headcount`, `birds`, `alerts` and `signals` fields of a `vision.wire.FlockReport`.

Speed: the embedder is the expensive extra stage, so it runs only on boxes of tracks that need it:
tracks without a bird id yet (or whose id another track challenges), and confirmed tracks whose
embedding is older than `embed_every` frames, at most `max_embeds_per_frame` crops per frame, in one
batch after tracking. Before tracking, the boxes the tracker's `embedding_wanted(dets, max_boxes=...)` picks (new,
re-entering or crowded birds, where motion alone may swap ids) are embedded so `update` can use their
appearance (IDF1 in the tracker author's pipeline-mode runs: 0.889 -> 0.946 with 40 birds, 0.475 -> 0.863
with 200); they share the `max_embeds_per_frame` budget with the after-tracking crops, and take at most
`pre_embed_share` of it (default half): on a 120-bird toy flock (oracle stages, 400 frames at 10 fps)
all of it to the tracker cut id switches 659 -> 365 but starved new tracks of the crops that give them
a bird id (headcount high 121 -> 168); half of it gives 475 switches and high 122.
Health signals are updated every `health_every_s` of stream time, not every frame. When frames are
far apart in time (`embed_all_above_dt_s`, e.g. one frame every few seconds), every box is embedded
*before* tracking so the tracker can associate by appearance; there are few frames per second then.

Threads: `process` and `window_summary` of one pipeline are serialised by a lock; pipelines of several
cameras run in parallel and share the registry (which has its own lock).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.calibration import CalibrationConfig
from vision.counting import CountingConfig, HeadcountCounter, HeadcountEstimate, combine_headcounts
from vision.detections import Detections
from vision.floor import image_to_floor
from vision.geometry import centers_in, inside_frame
from vision.health import BirdHealth, HealthConfig, HealthMonitor
from vision.identity import IdentityConfig, IdentityRegistry
from vision.masks import MaskXyxyn, masks_to_pixels

if TYPE_CHECKING:
    from vision.identity.calibration import AppearanceCalibration
    from vision.wire import AlertItem, BirdSummary, Headcount
    from vision.wire.schema import FlockSignals


class DetectorLike(Protocol):
    def detect(
        self, frame_bgr: np.ndarray, *, frame_index: int = 0, timestamp: float = 0.0, camera_id: str = "cam0"
    ) -> Detections: ...


class EmbedderLike(Protocol):
    def embed(self, frame_bgr: np.ndarray, dets: Detections) -> Detections: ...


class TrackerLike(Protocol):
    def update(self, dets: Detections) -> Detections: ...

    def reset(self) -> None: ...


class PipelineConfig(BaseModel):
    """Everything tunable about one camera's pipeline (the registry config lives with the registry)."""

    model_config = ConfigDict(extra="forbid")

    embed_every: int = Field(
        default=20, ge=1, le=10_000, description="re-embed a track that has a bird id every K frames"
    )
    pending_embed_every: int = Field(
        default=1, ge=1, le=10_000, description="embed a track without a bird id every K frames"
    )
    max_embeds_per_frame: int = Field(
        default=12, ge=0, le=10_000, description="crops per frame (unassigned tracks first): bounds the cost"
    )
    pre_embed_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of max_embeds_per_frame the tracker may ask for before tracking (the rest: ids)",
    )
    embedder_threads: int = Field(
        default=1,
        ge=0,
        le=64,
        description="onnxruntime threads of the re-ID session in from_defaults (0: onnxruntime picks)",
    )
    detector_spin: bool = Field(
        default=False,
        description="detector threads busy-wait between runs in from_defaults: less wall time per frame, "
        "more CPU (2 cores, 320 px: 6-12% less wall, 20-30% more CPU); off suits a Pi with time to spare",
    )
    embed_min_confidence: float = Field(default=0.3, ge=0.0, le=1.0, description="don't embed boxes below this score")
    min_box_px: float = Field(default=8.0, ge=0.0, le=1e4, description="don't embed boxes smaller than this (side)")
    embed_all_above_dt_s: float = Field(
        default=0.5,
        gt=0.0,
        le=1e6,
        description="frames this far apart: embed every box before tracking (and the flockid tracker's "
        "sparse_above_dt_s unless tracker_config sets it: both say 'frames far apart')",
    )
    health_every_s: float = Field(
        default=0.5, ge=0.0, le=3600.0, description="update health signals at most this often (stream time)"
    )
    skip_border_px: float = Field(
        default=2.0, ge=0.0, le=1e4, description="boxes cut by the frame border: not re-embedded, embedded last"
    )
    masks_xyxyn: list[MaskXyxyn] = Field(
        default_factory=list,
        max_length=32,
        description="regions (fractions of the frame) whose detections are dropped before tracking: "
        "a DVR's clock and camera name, a neighbour's pen (vision.masks)",
    )
    tracker: str = Field(default="flockid", description="tracker plugin name for from_defaults()")
    tracker_config: dict[str, Any] = Field(default_factory=dict)
    counting: CountingConfig = Field(default_factory=lambda: CountingConfig())
    health: HealthConfig = Field(default_factory=lambda: HealthConfig())
    calibration: CalibrationConfig = Field(default_factory=lambda: CalibrationConfig())

    def tracker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `make_tracker(self.tracker, ...)`: tracker_config, and for the flockid
        tracker its sparse-frame switch at embed_all_above_dt_s, so that the frames where every box is
        embedded are the frames the tracker matches with its sparse motion model (tracker_config wins)."""
        if self.tracker != "flockid":
            return dict(self.tracker_config)
        return {"sparse_above_dt_s": self.embed_all_above_dt_s, **self.tracker_config}


@dataclass
class WindowSummary:
    """Everything one report window needs, for one camera or (after combine_summaries) for the farm.

    Timestamps are seconds (the stream's clock: wall-clock epoch seconds on the edge, simulated
    seconds in synthetic sequences). `report_fields()` converts to `vision.wire` models.
    """

    start_ts: float
    end_ts: float
    camera_ids: list[str]
    frames_processed: int
    headcount: HeadcountEstimate
    birds: list[BirdHealth]
    alerts: list[dict[str, Any]]  # AlertItem-compatible dicts ("at" as epoch seconds)
    activity_index: float = 0.0
    huddling_index: float = 0.0
    mean_weight_g: float | None = None
    mortality_unseen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def report_fields(self) -> dict[str, Any]:
        """`headcount`, `birds`, `alerts`, `signals` as vision.wire models, ready for `FlockReport(**...)`."""
        from vision.wire import AlertItem, Headcount
        from vision.wire.schema import FlockSignals

        hc: Headcount = Headcount(
            value=self.headcount.value,
            low=self.headcount.low,
            high=self.headcount.high,
            instantaneous_max=self.headcount.instantaneous_max,
            stale=self.headcount.stale,
        )
        birds: list[BirdSummary] = [b.to_wire() for b in self.birds if b.bird_id]
        alerts: list[AlertItem] = [AlertItem(**{**a, "at": _dt(float(a["at"]))}) for a in self.alerts]
        signals: FlockSignals = FlockSignals(
            activity_index=max(0.0, float(self.activity_index)),
            huddling_index=float(min(1.0, max(0.0, self.huddling_index))),
            mean_weight_g=self.mean_weight_g,
            mortality_unseen=int(self.mortality_unseen),
        )
        return {"headcount": hc, "birds": birds, "alerts": alerts, "signals": signals}


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


# Two cameras' carcasses this close on the pen's plan are one carcass: about a body length, which covers
# the box-centre error of a bird cut by the frame border and a few cm of floor-point measurement.
SAME_CARCASS_CM = 45.0


def combine_summaries(
    summaries: Sequence[WindowSummary], *, same_carcass_cm: float = SAME_CARCASS_CM
) -> WindowSummary:
    """Merge per-camera summaries of the same window into one farm summary.

    A bird id seen by several cameras is one bird (headcount = size of the union of bird ids);
    per-bird entries are merged (cameras listed, activity from the camera that saw it longest).
    A carcass that two cameras flag under two ids is one death when both cameras have floor points and
    place it within same_carcass_cm on the pen's plan: it is reported under the id flagged first. A
    suspected-dead alert about a carcass some camera flagged before the window began repeats that
    camera's alert and is dropped.
    """
    from vision.health import merge_bird_health

    if not summaries:
        raise ValueError("combine_summaries: summaries is empty")
    if same_carcass_cm < 0:
        raise ValueError(f"combine_summaries: same_carcass_cm must be >= 0, got {same_carcass_cm}")
    if len(summaries) == 1:
        return summaries[0]
    renamed = _one_id_per_carcass(summaries, same_carcass_cm)
    by_bird: dict[str, list[BirdHealth]] = {}
    anonymous: list[BirdHealth] = []
    for i, s in enumerate(summaries):
        for b in s.birds:
            if b.bird_id:
                key = renamed.get((i, b.bird_id), b.bird_id)
                by_bird.setdefault(key, []).append(b if key == b.bird_id else replace(b, bird_id=key))
            else:
                anonymous.append(b)
    # The renamed carcass was alerted under the id flagged first, in this window or an earlier one: its
    # second camera's alert is a repeat.
    alerts = [a for i, s in enumerate(summaries) for a in s.alerts
              if not (a.get("kind") == "suspected_dead" and (i, a.get("bird_id") or "") in renamed)]
    birds = [merge_bird_health(v) for v in by_bird.values()] + anonymous
    # A carcass one camera flagged before this window began was alerted then: another camera's first
    # alert about it now (a view cut by the border waits for a sure identity) repeats it.
    start = min(s.start_ts for s in summaries)
    known = {b.bird_id for b in birds if b.bird_id and b.dead_since is not None and b.dead_since < start}
    alerts = [a for a in alerts if not (a.get("kind") == "suspected_dead" and (a.get("bird_id") or "") in known)]
    weights = [b.weight_g for b in birds if b.weight_g is not None]
    n = sum(s.frames_processed for s in summaries) or 1
    return WindowSummary(
        start_ts=min(s.start_ts for s in summaries),
        end_ts=max(s.end_ts for s in summaries),
        camera_ids=sorted({c for s in summaries for c in s.camera_ids}),
        frames_processed=sum(s.frames_processed for s in summaries),
        headcount=combine_headcounts([_renamed_headcount(s.headcount, i, renamed) for i, s in enumerate(summaries)]),
        birds=sorted(birds, key=lambda b: b.bird_id),
        alerts=_dedupe_alerts(alerts),
        activity_index=sum(s.activity_index * s.frames_processed for s in summaries) / n,
        huddling_index=sum(s.huddling_index * s.frames_processed for s in summaries) / n,
        mean_weight_g=float(np.median(weights)) if weights else None,
        mortality_unseen=max(s.mortality_unseen for s in summaries),
    )


def _one_id_per_carcass(summaries: Sequence[WindowSummary], same_cm: float) -> dict[tuple[int, str], str]:
    """(summary index, bird id) -> the id of the same carcass flagged first by a camera the summary does
    not share, for carcasses placed on the pen's plan; entries not listed keep their id."""
    dead = sorted(
        ((b.dead_since, b.bird_id, i, b.dead_floor_cm, set(b.cameras))
         for i, s in enumerate(summaries) for b in s.birds
         if b.bird_id and b.dead_since is not None and b.dead_floor_cm is not None),
        key=lambda d: (d[0], d[1], d[2]),
    )
    kept: list[tuple[str, tuple[float, float], set[str]]] = []
    renamed: dict[tuple[int, str], str] = {}
    for _since, bird_id, i, (x, y), cams in dead:
        # The nearest carcass another camera flagged first: two carcasses side by side stay two deaths.
        near = [(math.hypot(k[1][0] - x, k[1][1] - y), n) for n, k in enumerate(kept)
                if not (k[2] & cams) and k[0] != bird_id]
        dist, at = min(near, default=(math.inf, -1))
        same = kept[at] if dist <= same_cm else None
        if same is None:
            kept.append((bird_id, (x, y), cams))
        else:
            renamed[(i, bird_id)] = same[0]
            same[2].update(cams)
    return renamed


def _renamed_headcount(hc: HeadcountEstimate, index: int, renamed: dict[tuple[int, str], str]) -> HeadcountEstimate:
    """Summary `index`'s headcount with its carcass ids renamed as in the farm's bird list: a carcass two
    cameras see under two ids is one bird in the count too."""
    names = {bid: to for (i, bid), to in renamed.items() if i == index}
    if not names:
        return hc

    def ids(xs: frozenset[str]) -> frozenset[str]:
        return frozenset(names.get(x, x) for x in xs)

    covisible = frozenset(
        (min(a, b), max(a, b)) for a, b in ((names.get(a, a), names.get(b, b)) for a, b in hc.covisible) if a != b)
    return replace(hc, bird_ids=ids(hc.bird_ids), suspect_ids=ids(hc.suspect_ids),
                   lookalike_groups=tuple(ids(g) for g in hc.lookalike_groups), covisible=covisible)


def _dedupe_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One alert per (kind, bird) in a window: two cameras seeing one dead bird raise one alert."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    rest: list[dict[str, Any]] = []
    for a in sorted(alerts, key=lambda a: float(a["at"])):
        if a.get("bird_id"):
            seen.setdefault((a["kind"], a["bird_id"]), a)
        else:
            rest.append(a)
    return sorted([*seen.values(), *rest], key=lambda a: float(a["at"]))


IDENTITY_CARD_KEYS = ("match_threshold", "new_threshold", "margin")


def _merge_identity(derived: dict[str, Any], explicit: dict[str, Any]) -> IdentityConfig:
    """`explicit` over `derived`; a derived partner of an explicit match/new threshold moves rather than
    breaking new_threshold <= match_threshold."""
    merged = {**derived, **explicit}
    if explicit and "new_threshold" in merged and "match_threshold" in merged:
        if "match_threshold" not in explicit:
            merged["match_threshold"] = max(merged["match_threshold"], merged["new_threshold"])
        elif "new_threshold" not in explicit:
            merged["new_threshold"] = min(merged["new_threshold"], merged["match_threshold"])
    return IdentityConfig(**merged)


def identity_config_from_card(reid_path: Path, user: IdentityConfig | None = None) -> IdentityConfig:
    """Identity thresholds for a re-ID model, from its model card: derived from the card's similarity
    calibration (`vision.identity.calibration`: the `similarity_calibration` block, else `match_threshold`),
    then any explicit `identity` object (keys: match_threshold, new_threshold, margin) on top, then the
    fields `user` sets explicitly (its `model_fields_set`); the defaults when neither card nor user set
    them. Cosine similarities differ between models, so thresholds belong with the model, not with the
    farm."""
    from vision.identity.calibration import appearance_calibration_from_card
    from vision.weights import read_card

    card = read_card(reid_path)
    ident = card.get("identity")
    if ident is not None and not isinstance(ident, dict):
        raise ValueError(f"{reid_path}: model card field 'identity' must be an object, got {type(ident).__name__}")
    cal = appearance_calibration_from_card(reid_path)
    derived: dict[str, Any] = cal.identity_config() if cal is not None else {}
    card_cfg = _merge_identity(derived, {k: v for k, v in (ident or {}).items() if k in IDENTITY_CARD_KEYS})
    if user is None:
        return card_cfg
    return _merge_identity(card_cfg.model_dump(), {k: getattr(user, k) for k in user.model_fields_set})


DETECTOR_CARD_METRIC = "synth_det/val"
NEW_TRACK_MARGIN = 0.1


@dataclass(frozen=True)
class DetectorCalibration:
    """Confidence thresholds that depend on the detector, not on the farm.

    A detector's scores are only meaningful relative to that detector: an early shipped YOLO11n peaked in
    F1 at conf ~0.27 (~0.19 at night; today's card says 0.40), so a tracker that only trusts boxes >= 0.5
    and starts tracks at 0.6 sees a fraction of the birds. The rule, from the model card's `conf_at_max_f1` (c):

    - tracker `high_thresh` = c: boxes at the best-F1 operating point are the "sure" ones that feed
      stage 1 (ultralytics' ByteTrack default, 0.25, is that point for a typical COCO model);
    - tracker `new_track_thresh` = c + 0.1, as in the original ByteTrack (`det_thresh = track_thresh
      + 0.1`): a box that just makes stage 1 keeps a track alive but is too unsure to start one (on the
      held-out synthetic sequences: ID switches 579 -> 475, IDF1 0.396 -> 0.417 against c);
    - tracker `low_thresh` = min(0.1, c / 2): the ByteTrack second stage keeps half-occluded birds;
    - detector `conf` = `low_thresh`: the detector must not drop the boxes stage 2 wants;
    - pipeline `embed_min_confidence` = min(its default, c): a bird the tracker trusts gets a crop (and
      so a bird id); otherwise the headcount misses every bird the detector scores below it.

    A card without the metric (a user's own export) keeps the plain defaults (`conf_at_max_f1` None).
    """

    conf_at_max_f1: float | None
    source: str

    def tracker_config(self) -> dict[str, float]:
        """FlockTracker thresholds for this detector ({} without a calibration: tracker defaults)."""
        c = self.conf_at_max_f1
        if c is None:
            return {}
        return {
            "high_thresh": c,
            "new_track_thresh": min(1.0, c + NEW_TRACK_MARGIN),
            "low_thresh": min(0.1, c / 2.0),
        }

    def detector_conf(self, tracker_low: float | None = None, default: float = 0.25) -> float:
        """Detector score floor: the tracker's low threshold (calibrated or user-set) when known."""
        if tracker_low is not None:
            return tracker_low
        if self.conf_at_max_f1 is None:
            return default
        return self.tracker_config()["low_thresh"]


def detector_calibration_from_card(detector_path: Path) -> DetectorCalibration:
    """`metrics["synth_det/val"]["conf_at_max_f1"]` of the detector's model card, checked."""
    from vision.weights import card_path, read_card

    card = read_card(detector_path)
    metrics = card.get("metrics")
    block = metrics.get(DETECTOR_CARD_METRIC) if isinstance(metrics, dict) else None
    value = block.get("conf_at_max_f1") if isinstance(block, dict) else None
    if value is None:
        return DetectorCalibration(None, "defaults (model card has no conf_at_max_f1)")
    where = f"{card_path(detector_path)}: metrics.{DETECTOR_CARD_METRIC}.conf_at_max_f1"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{where} must be in (0, 1), got {value}")
    return DetectorCalibration(float(value), where)


REID_CARD_METRIC = "synth_reid/open-set"
WEAK_REID_RANK1 = 0.5
# A re-ID model that finds the right bird first less than half the time must not outvote motion: the
# fused cost leans on IoU. (The similarity thresholds -- veto, rescue, re-identification -- come from the
# card's similarity calibration instead, see vision.identity.calibration.)
WEAK_REID_TRACKER = {"motion_weight": 0.8}


def reid_tracker_config_from_card(reid_path: Path) -> dict[str, float]:
    """FlockTracker appearance settings for a re-ID model ({}: defaults): similarity thresholds from the
    card's similarity calibration, the motion/appearance weight from its open-set Rank-1."""
    from vision.identity.calibration import appearance_calibration_from_card
    from vision.weights import card_path, read_card

    cal = appearance_calibration_from_card(reid_path)
    out: dict[str, float] = cal.tracker_config() if cal is not None else {}
    metrics = read_card(reid_path).get("metrics")
    block = metrics.get(REID_CARD_METRIC) if isinstance(metrics, dict) else None
    rank1 = block.get("rank1") if isinstance(block, dict) else None
    if rank1 is None:
        return out
    if isinstance(rank1, bool) or not isinstance(rank1, (int, float)) or not 0.0 <= float(rank1) <= 1.0:
        raise ValueError(f"{card_path(reid_path)}: metrics.{REID_CARD_METRIC}.rank1 must be in [0, 1], got {rank1!r}")
    return {**out, **WEAK_REID_TRACKER} if float(rank1) < WEAK_REID_RANK1 else out


def counting_config_from_card(reid_path: Path) -> dict[str, float]:
    """CountingConfig similarity thresholds for a re-ID model ({}: defaults)."""
    from vision.identity.calibration import appearance_calibration_from_card

    cal = appearance_calibration_from_card(reid_path)
    return cal.counting_config() if cal is not None else {}


def calibrate_config(
    config: PipelineConfig,
    calibration: DetectorCalibration,
    reid_tracker: dict[str, float] | None = None,
    reid_counting: dict[str, float] | None = None,
) -> PipelineConfig:
    """`config` with the model-dependent thresholds (detector confidences; appearance thresholds for the
    re-ID model, `reid_tracker_config_from_card` and `counting_config_from_card`) filled in where the user
    did not set them."""
    updates: dict[str, Any] = {}
    if reid_counting:
        user_set = config.counting.model_fields_set
        auto = {k: v for k, v in reid_counting.items() if k not in user_set}
        if auto:
            updates["counting"] = type(config.counting).model_validate({**config.counting.model_dump(), **auto})
    if config.tracker == "flockid":
        auto = {**(reid_tracker or {}), **calibration.tracker_config()}
        user = config.tracker_config
        tc = {**{k: v for k, v in auto.items() if k not in user}, **user}
        if "low_thresh" in tc and "high_thresh" in tc and tc["low_thresh"] > tc["high_thresh"]:
            # The user pinned one side only: keep theirs, move the calibrated one.
            if "high_thresh" in user:
                tc["low_thresh"] = min(tc["low_thresh"], tc["high_thresh"])
            else:
                tc["high_thresh"] = tc["low_thresh"]
                if "new_track_thresh" not in user:
                    tc["new_track_thresh"] = max(tc["new_track_thresh"], tc["high_thresh"])
        updates["tracker_config"] = tc
    if calibration.conf_at_max_f1 is not None and "embed_min_confidence" not in config.model_fields_set:
        updates["embed_min_confidence"] = min(config.embed_min_confidence, calibration.conf_at_max_f1)
    return config.model_copy(update=updates) if updates else config


class FlockPipeline:
    """detector + tracker + embedder + shared registry + counting + health, for one camera."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        detector: DetectorLike,
        embedder: EmbedderLike | None,
        tracker: TrackerLike,
        registry: IdentityRegistry,
        camera_id: str = "cam0",
    ) -> None:
        self.config = config or PipelineConfig()
        self.detector = detector
        self.embedder = embedder
        self.tracker = tracker
        self.registry = registry
        self.camera_id = camera_id
        self.counter = HeadcountCounter(self.config.counting, camera_id=camera_id)
        self.health = HealthMonitor(self.config.health, self.config.calibration, camera_id=camera_id)
        self._floor_h = self.config.calibration.floor_homography()
        self._lock = threading.Lock()
        self._last_embedded: dict[int, int] = {}  # track_id -> frame_index of its last embedding
        self._last_ts: float | None = None
        self._last_health_ts: float | None = None
        self._model_paths: dict[str, Path] = {}
        self._embed_takes_rows: bool | None = None
        self.calibration: DetectorCalibration | None = None  # set by from_defaults
        self.appearance: AppearanceCalibration | None = None  # set by from_defaults
        self.frames_processed = 0

    @classmethod
    def from_defaults(
        cls,
        *,
        camera_id: str = "cam0",
        registry: IdentityRegistry | None = None,
        registry_path: Path | None = None,
        farm_id: str = "farm",
        detector_path: Path | None = None,
        reid_path: Path | None = None,
        providers: Sequence[str] = ("cpu",),
        imgsz: int | None = None,
        conf: float | None = None,
        config: PipelineConfig | None = None,
        identity_config: IdentityConfig | None = None,
    ) -> FlockPipeline:
        """Build a pipeline from the shipped models (vision/weights) or the given ONNX files.

        Confidence thresholds are calibrated to the detector (see `DetectorCalibration`): the tracker's
        high/new-track/low thresholds and the pipeline's `embed_min_confidence` from the detector's model
        card unless `config` sets them; the detector's `conf` (None: derived) is the tracker's low
        threshold, so stage 2 sees its boxes. Appearance thresholds (tracker veto/rescue/re-identification,
        registry match/new-bird thresholds, headcount duplicates) are derived from the re-ID model's card
        (`vision.identity.calibration`) unless `config` / `identity_config` set them. `self.calibration`
        and `self.appearance` say what was used."""
        from vision.detector import OnnxDetector
        from vision.embedder import OnnxEmbedder
        from vision.identity.calibration import appearance_calibration_from_card
        from vision.tracking import make_tracker
        from vision.weights import default_detector_path, default_reid_path, model_sha256

        config = config or PipelineConfig()
        det_path = Path(detector_path) if detector_path else default_detector_path()
        emb_path = Path(reid_path) if reid_path else default_reid_path()
        calibration = detector_calibration_from_card(det_path)
        config = calibrate_config(
            config, calibration, reid_tracker_config_from_card(emb_path), counting_config_from_card(emb_path)
        )
        if conf is None:
            low = config.tracker_config.get("low_thresh") if config.tracker == "flockid" else None
            conf = calibration.detector_conf(float(low) if low is not None else None)
        detector = OnnxDetector(
            det_path, conf=conf, providers=tuple(providers), imgsz=imgsz, spin=config.detector_spin
        )
        # A few small crops per call: one thread costs less CPU than onnxruntime's default pool (2-core dev
        # machine, 8.6 crops/frame, A/B on the same frames: 25 vs 31 ms CPU per frame) and the detector
        # keeps the other core.
        embedder = OnnxEmbedder(emb_path, providers=tuple(providers), threads=config.embedder_threads)
        emb_sha = model_sha256(emb_path)
        # Card-derived thresholds fill what the caller's identity config leaves unset (the edge passes
        # IdentityConfig(**its options), usually empty).
        identity_config = identity_config_from_card(emb_path, identity_config)
        if registry is None:
            registry = IdentityRegistry(registry_path, farm_id, identity_config, embedder_sha=emb_sha)
        elif registry.embedder_sha is not None and registry.embedder_sha != emb_sha:
            raise ValueError(
                f"reid model {emb_path} (sha256 {emb_sha}) is not the embedder of the shared registry "
                f"({registry.embedder_sha}); all cameras of a farm must use the same re-ID model"
            )
        tracker = make_tracker(config.tracker, **config.tracker_kwargs())
        pipe = cls(
            config,
            detector=detector,
            embedder=embedder,
            tracker=tracker,
            registry=registry,
            camera_id=camera_id,
        )
        pipe._model_paths = {"detector": det_path, "reid": emb_path}
        pipe.calibration = calibration
        pipe.appearance = appearance_calibration_from_card(emb_path)
        return pipe

    def model_versions(self) -> dict[str, str]:
        """model name -> sha256 (the model card's, else the file's) of the models from_defaults loaded."""
        from vision.weights import model_sha256, read_card

        out: dict[str, str] = {}
        for name, path in self._model_paths.items():
            sha = read_card(path).get("sha256")
            out[name] = str(sha) if sha else model_sha256(path)
        return out

    def process(self, frame_bgr: np.ndarray, *, timestamp: float, frame_index: int) -> Detections:
        """Run every stage on one frame; returns the tracked boxes with bird_id and identity_confidence."""
        with self._lock:
            dets = self.detector.detect(
                frame_bgr, frame_index=frame_index, timestamp=timestamp, camera_id=self.camera_id
            )
            return self._process_dets(frame_bgr, dets, timestamp=timestamp, frame_index=frame_index)

    def process_detections(
        self, frame_bgr: np.ndarray | None, dets: Detections, *, timestamp: float, frame_index: int
    ) -> Detections:
        """Like process() but with detections from elsewhere (tests: ground-truth boxes)."""
        with self._lock:
            return self._process_dets(frame_bgr, dets, timestamp=timestamp, frame_index=frame_index)

    def _process_dets(
        self, frame_bgr: np.ndarray | None, dets: Detections, *, timestamp: float, frame_index: int
    ) -> Detections:
        dets = dets.with_meta(timestamp=float(timestamp), frame_index=int(frame_index), camera_id=self.camera_id)
        if dets.frame_size_wh is None and frame_bgr is not None:
            dets = dets.with_meta(frame_size_wh=(int(frame_bgr.shape[1]), int(frame_bgr.shape[0])))
        if dets.embedding is not None:
            # Appearance comes from our own embedder (only where needed).
            dets = dets.with_meta(embedding=None)
        if self.config.masks_xyxyn and len(dets) and dets.frame_size_wh is not None:
            masked = centers_in(dets.xyxy, masks_to_pixels(self.config.masks_xyxyn, dets.frame_size_wh))
            if masked.any():
                dets = dets[~masked]
        dt = float(timestamp) - self._last_ts if self._last_ts is not None else 0.0
        self._last_ts = float(timestamp)
        can_embed = self.embedder is not None and frame_bgr is not None
        sparse = can_embed and dt >= self.config.embed_all_above_dt_s and len(dets) > 0
        if sparse:
            # Frames far apart in time: birds move too far between frames for motion alone, so every box
            # is embedded before tracking and the tracker associates by appearance too. The embedder's
            # cost per second of stream stays low because there are few frames per second.
            assert frame_bgr is not None
            dets = self._embed(frame_bgr, dets, np.arange(len(dets)))
        pre_embedded = 0
        pick = getattr(self.tracker, "embedding_wanted", None)
        pre_cap = int(np.ceil(self.config.pre_embed_share * self.config.max_embeds_per_frame))
        if not sparse and can_embed and callable(pick) and len(dets) and pre_cap:
            # Appearance helps association only if the tracker has it *during* update: embed the boxes
            # motion alone may get wrong (new, re-entering, crowded) first. They share the per-frame
            # crop budget with the after-tracking embeddings below, so the cost stays bounded.
            assert frame_bgr is not None
            # Boxes too small or too unsure for a useful crop are not offered (as after tracking).
            wh = dets.xyxy[:, 2:4] - dets.xyxy[:, 0:2]
            fit = np.flatnonzero(
                (dets.confidence >= self.config.embed_min_confidence) & (wh.min(axis=1) >= self.config.min_box_px)
            )
            rows = fit[np.asarray(pick(dets[fit], max_boxes=pre_cap), bool)] if fit.size else fit
            if rows.size:
                dets = self._embed(frame_bgr, dets, rows)
                pre_embedded = int(rows.size)
        tracked = self.tracker.update(dets)
        removed: list[int] = []
        pop_removed = getattr(self.tracker, "removed_tracks_since_last_call", None)
        if callable(pop_removed):
            removed = [int(t.track_id) for t in pop_removed()]
            for tid in removed:
                self._last_embedded.pop(tid, None)
        assert tracked.track_id is not None
        if sparse:
            for tid in tracked.track_id:
                self._last_embedded[int(tid)] = frame_index
        elif can_embed and len(tracked):
            assert frame_bgr is not None
            if pre_embedded:
                # The tracker already used these embeddings; the registry gets them with the rows.
                for r in np.flatnonzero(tracked.embedded):
                    self._last_embedded[int(tracked.track_id[r])] = frame_index
            budget = self.config.max_embeds_per_frame - pre_embedded
            rows = self._rows_to_embed(tracked, frame_bgr.shape[1], frame_bgr.shape[0], frame_index)[:budget]
            if rows.size:
                tids = tracked.track_id
                tracked = self._embed(frame_bgr, tracked, rows)
                for r in rows:
                    self._last_embedded[int(tids[r])] = frame_index
                feed = getattr(self.tracker, "update_appearance", None)
                if callable(feed):
                    # Only the rows embedded after update: the others were in update already.
                    feed(tracked[rows])
        out = self.registry.assign(tracked, removed_track_ids=removed, floor_xy=self._standing_on_floor(tracked))
        count = self.counter.observe(out, lookalikes=self.registry.lookalikes(self.config.counting.lookalike_sim))
        alerts: list[dict[str, Any]] = []
        if self._last_health_ts is None or timestamp - self._last_health_ts >= self.config.health_every_s:
            # Health signals move on a scale of seconds to minutes: a few updates a second are plenty.
            self._last_health_ts = float(timestamp)
            alerts = self.health.observe(out)
        self.frames_processed += 1
        # Fresh dict: Detections.with_meta/replace share `extra` with the tracker's input.
        return out.with_meta(extra={**out.extra, "count": count, "alerts": alerts})

    def _standing_on_floor(self, dets: Detections) -> np.ndarray | None:
        """Where each box stands on the pen's plan (cm), None without floor points: a quarter of the box
        height above its bottom edge, between the feet of a standing bird seen from the side and the
        body centre seen from above."""
        if self._floor_h is None:
            return None
        xyxy = dets.xyxy.astype(np.float64)
        foot = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3] - 0.25 * (xyxy[:, 3] - xyxy[:, 1])])
        return image_to_floor(self._floor_h, foot)

    def _embed(self, frame_bgr: np.ndarray, dets: Detections, rows: np.ndarray) -> Detections:
        assert self.embedder is not None
        if self._embed_takes_rows is None:
            import inspect

            self._embed_takes_rows = "rows" in inspect.signature(self.embedder.embed).parameters
        if self._embed_takes_rows:
            out = self.embedder.embed(frame_bgr, dets, rows=rows)  # type: ignore[call-arg]
            old, new = dets.embedding, out.embedding
            if old is not None and new is not None and old.shape == new.shape:
                # Rows embedded before tracking keep their vector whatever the embedder does elsewhere.
                keep = np.ones(len(dets), bool)
                keep[rows] = False
                new = new.copy()
                new[keep] = old[keep]
                out = out.with_meta(embedding=new)
            return out
        # An embedder without `rows`: embed the chosen boxes only; other rows keep theirs (or zeros).
        sub = self.embedder.embed(frame_bgr, dets[rows])
        if sub.embedding is None:
            raise ValueError(f"{type(self.embedder).__name__}.embed returned no embedding")
        if dets.embedding is not None and dets.embedding.shape[1] == sub.embedding.shape[1]:
            emb = dets.embedding.astype(np.float32, copy=True)
        else:
            emb = np.zeros((len(dets), sub.embedding.shape[1]), np.float32)
        emb[rows] = sub.embedding
        return dets.with_meta(embedding=emb)

    def _rows_to_embed(self, dets: Detections, frame_w: int, frame_h: int, frame_index: int) -> np.ndarray:
        """Boxes worth an embedding on this frame, most needed first, at most max_embeds_per_frame."""
        cfg = self.config
        assert dets.track_id is not None
        wh = dets.xyxy[:, 2:4] - dets.xyxy[:, 0:2]
        inside = inside_frame(dets.xyxy, (frame_w, frame_h), cfg.skip_border_px)
        ok = (dets.confidence >= cfg.embed_min_confidence) & (wh.min(axis=1) >= cfg.min_box_px)
        urgent: list[tuple[bool, int, int]] = []
        stale: list[tuple[int, int]] = []
        for i in np.flatnonzero(ok & (dets.track_id >= 0)):
            tid = int(dets.track_id[i])
            last = self._last_embedded.get(tid)
            age = frame_index - last if last is not None else 1 << 30
            if self.registry.needs_embedding(self.camera_id, tid):
                # A bird cut by the frame border still needs an ID (it may rest there for an hour), but
                # a whole-bird crop is better: border boxes come after the others.
                if age >= cfg.pending_embed_every:
                    urgent.append((not bool(inside[i]), -age, int(i)))
            elif age >= cfg.embed_every and inside[i]:
                stale.append((-age, int(i)))
        chosen = [i for *_, i in sorted(urgent)] + [i for _, i in sorted(stale)]
        return np.asarray(chosen[: cfg.max_embeds_per_frame], np.int64)

    def window_summary(
        self, start_ts: float, end_ts: float, *, headcount_from: float | None = None
    ) -> WindowSummary:
        """Headcount, per-bird health, alerts and flock signals over [start_ts, end_ts].

        headcount_from (<= start_ts): count the birds seen since then instead, for a window cut short
        (an early report): a headcount over a few minutes would miss birds a full window sees."""
        if end_ts < start_ts:
            raise ValueError(f"window_summary: end_ts ({end_ts}) is before start_ts ({start_ts})")
        if headcount_from is not None and headcount_from > start_ts:
            raise ValueError(f"window_summary: headcount_from ({headcount_from}) is after start_ts ({start_ts})")
        with self._lock:
            infos = {b.bird_id: b for b in self.registry.birds()}
            hc = self.counter.estimate(
                start_ts if headcount_from is None else headcount_from,
                end_ts,
                birds=infos,
                lookalikes=self.registry.lookalikes(self.config.counting.lookalike_sim),
            )
            h = self.health.window(start_ts, end_ts)
            cutoff = end_ts - self.config.health.mortality_unseen_days * 86_400.0
            unseen = sum(1 for b in infos.values() if b.last_seen < cutoff)
            return WindowSummary(
                start_ts=start_ts,
                end_ts=end_ts,
                camera_ids=[self.camera_id],
                frames_processed=hc.frames,
                headcount=hc,
                birds=h["birds"],
                alerts=h["alerts"],
                activity_index=h["activity_index"],
                huddling_index=h["huddling_index"],
                mean_weight_g=h["mean_weight_g"],
                mortality_unseen=unseen,
            )

    def reset(self) -> None:
        """Forget per-stream state (after a camera reconnect): tracks end, the registry's birds stay."""
        with self._lock:
            self.tracker.reset()
            self.registry.forget_camera(self.camera_id)
            self.counter.reset_tracks()
            self._last_embedded.clear()
            self._last_ts = None
            self._last_health_ts = None
