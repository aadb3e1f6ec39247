"""Health signals from tracks: activity, inactivity (suspected sick/dead), flock activity, huddling, weight.

Units: positions in pixels are divided by the bird's own body length (its robust box length), so every
distance is in body lengths (BL) whatever the camera zoom; every duration is stream time (timestamps),
never frame counts, so sparse sampling (one frame every few seconds) gives the same answers.

Per tracked bird (activity and size):
- position: box centre, smoothed with a time constant (`smooth_s`) against detector jitter;
- activity: smoothed path length per observed hour, in BL/h (gaps longer than `max_gap_s` add nothing);
- length: a running body length (long side of the box, short occluded boxes mostly ignored).

Stillness lives in *spots*, not tracks: a spot is a place where a bird box stays within
`motion_threshold_bl` body lengths of where it first stopped. Each processed frame, boxes are matched to
spots by position (a box prefers the spot its own track held), so a tracker that fragments or swaps ids
near a dead bird cannot restart the clock. A spot accumulates still time while it is seen; gaps up to
`still_gap_s` (a missed detection, a bird walking in front) count, longer ones (night, long occlusion,
sparse frames) add nothing but reset nothing. A box continues a spot only if it overlaps the spot's box
(`spot_min_iou`), the spot's own track is not elsewhere in the frame (birds crowding at a feeder take
turns at one place; each is its own bird), and, on frames where it was embedded, its re-ID embedding is
at least `spot_min_similarity` (cosine) like the spot's running appearance: in the burst demo a carcass
seen 40 minutes apart keeps 0.64-0.98 of its look, while three unidentified birds resting in turn at one
corner scored 0.02-0.63 and had been one "dead" bird. A box under a sure bird id other than the spot's
does not continue it (birds take turns at a favourite corner), unless `spot_same_look` is set and the box
looks that much like what lay there (cosine to the spot's appearance): look-alikes' names flip on a lying
bird and split its clock. Off by default: on six 100-minute 4-s sequences (`flockid eval count`, the
edge's calibrated pipeline) 0.8 alerted one more of 18 carcasses within 10 minutes (9 instead of 8) and
raised two more false alerts (12 instead of 10 in 240 bird-hours). Spots are forgotten
`spot_grace_s` after their bird walked away, except long-still ones, which are remembered for `spot_memory_s`
(a carcass hidden for a while keeps its clock). A spot whose own track is seen walking more than
`spot_vacate_bl` body lengths from it (and which is not a flagged carcass) is forgotten at once: its bird
got up and left, and whoever lies there next is another bird even where the look cannot tell (uniform
flocks), so its clock starts from zero. On those six sequences this took false dead alerts from 10 to 3
(240 bird-hours) with carcasses alerted within 10 minutes (8 of 18) and the headcount unchanged; on three
held-out ones (seeds 981-983, 117 bird-hours) from 6 to 4, and on ten more (seeds 971-980, mixed and
uniform flocks, 385 bird-hours) from 14 to 2, carcasses alerted within 10 minutes unchanged (10 of 17).
- lying: a dead bird lies on its side, wings and legs out. Seen from an oblique camera its box is much
  flatter than a standing bird's (height/width ratio below `lying_ratio` x reference; a sitting bird
  stays above); seen from above it covers a much larger area (area above `lying_area` x reference,
  after the bird's own size factor). The reference is the median box of *walking* birds of the same
  camera in the same horizontal band of the image (8 bands, so perspective cancels out); the bird's
  size factor is its own walking size against that reference (1 when never seen walking). On the
  synthetic farm this flags ~80 % of dead-bird frames and ~10 % (oblique) / <1 % (top view) of
  sitting-bird frames;
- frozen: a resting bird keeps shifting (its box changes shape by ~20 % as it turns its body and head);
  a dead bird's box keeps exactly its shape (std of log width/height < `frozen_size_std`; only detector
  jitter and camera shake remain);
- partial views: a box within `border_px` of the frame border shows only part of something, so its pose
  is unknown (and it is no sample of a walking bird). A still spot seen mostly in such views is not
  judged sick or dead until some sighting of it holds a sure identity (a registered bird id at
  identity_confidence >= 0.5). On the demo farm the detector believes in the top of a feeder cut by the
  image's top edge (confidence 0.45-0.65, never moving, its box as frozen as a carcass's once the
  detector got sure of it), which raised suspected-dead birds out of a fixture. The price: a
  carcass at the very edge of one camera's view, in a flock too uniform for a sure identity, is left to
  a camera that sees it whole (on the demo farm the other camera does) or to the unseen-for-days
  mortality rule;
- suspected_dead: still for >= `dead_after_s` (7 min) and lying for >= `lying_fraction` of that time or
  frozen, or
  still for >= `dead_still_after_s` (9 min) whatever the pose (some dead birds lie end-on to the camera
  and do not look flat, and a carcass other birds keep walking over is never frozen: 9 minutes leaves
  the detector a minute to pick the carcass up within the 10-minute target). Healthy birds rest in
  bouts of about a minute (exponential tail), so a 7-9 minute stillness is rare for them: on ten
  100-minute synthetic sequences (40 birds, 20-30 % night, frames 4 s apart, 380 bird-hours) moving
  this threshold from 15 to 9 minutes added no false alert (3 either way) and took the dead birds
  alerted within 10 minutes from 6 to 7 of 21 (an earlier version of the spot matching did raise
  false alerts on birds resting at night with a shorter threshold). The thresholds trade the
  10-minute alert target against false alerts and can be tuned per farm (bounded config).
  suspected_sick: still for >= `sick_after_s` (a warning before the dead alert; with the defaults a bird
  still that long is already suspected dead, so sickness shows as the `lethargic` flag of the bird's window
  summary: observed >= 10 min and walking < `lethargic_bl_per_h`). One alert per spot; the episode ends
  when the bird moves away.
- lethargic: at least `lethargic_min_observed_s` of observation in the window and activity below
  `lethargic_bl_per_h`. With `lethargic_max_gap_s` set, only frames at most that far apart count as
  observation for this rule: footage filmed in bursts (0.3 s every 40 min) then never flags lethargic,
  since activity measured across the gaps is only the net displacement between bursts and flags
  healthy birds that rest near one place. It is off by default (None) because the burst demo's sick
  bird is flagged only through that net-displacement activity today (e2e scenario 4); set it (e.g.
  30 s) once burst settings flag sickness by stillness (`sick_after_s` < `dead_still_after_s`).
- suspected_dead is sticky in window summaries: once a bird (id) is suspected dead, every later window's
  summary lists it as `suspected_dead` (even when it is not seen in that window: a carcass may be hidden
  by other birds or missed by the detector), so the lender's bird list and mortality count keep the
  death. The flag clears only when the bird is seen moving again: its smoothed position more than
  `dead_revive_bl` body lengths from where it was flagged (a resting bird wrongly flagged walks away; a
  detector's jitter on a carcass never adds up to a body length), seen as the very track that lay
  there or under a sure identity (identity_confidence >= 0.5): a look-alike given the dead bird's id as
  a guess, walking elsewhere, says nothing about the carcass (where ids are mostly guesses, as in the
  burst demo, it would clear a death that the carcass then raises again under a second id). A tracker
  swap that surely gives a live neighbour the dead bird's id can still clear it; the dead spot is still
  watched and flags again whoever holds it once no id flagged there is still dead (a carcass
  re-identified under a second id is one death, not two). A new spot where a bird still suspected dead
  lay (within `dead_revive_bl` of it: the carcass filmed again after the night, or enrolled by the
  registry as a new bird) is that carcass too, whatever id it now holds. The flag is dropped with the
  bird's history after `retention_s` unseen; its spot is not flagged again under another id.
  A window summary lists a bird as suspected_dead only while it still is at the window's end: one
  flagged and seen walking within the window is listed suspected_sick (its alert stays).

Flock:
- activity_index: mean activity (BL/h) of the birds seen in the window;
- huddling_index: 1 - R (clipped to [0, 1]) where R is the Clark-Evans nearest-neighbour ratio of the
  bird centres against a random spread over the occupied floor (the convex hull of all positions seen):
  0 = spread out or regular, toward 1 = packed in clumps;
- weight: from the robust body length through `vision.calibration` (None without calibration).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.calibration import CalibrationConfig, weight_band
from vision.detections import Detections
from vision.floor import image_to_floor
from vision.geometry import box_iou_batch, inside_frame
from vision.identity.config import SURE_IDENTITY

if TYPE_CHECKING:
    from vision.wire import BirdSummary

_BIN_S = 60.0  # activity is accumulated in one-minute bins of stream time


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    motion_threshold_bl: float = Field(default=0.5, gt=0.0, le=20.0, description="moving less than this (BL) is still")
    smooth_s: float = Field(default=1.0, ge=0.0, le=600.0, description="time constant of centre smoothing")
    max_gap_s: float = Field(
        default=120.0, gt=0.0, le=86_400.0, description="longer unobserved gaps are not still time"
    )
    sick_after_s: float = Field(default=3600.0, gt=0.0, le=30 * 86_400.0)
    dead_after_s: float = Field(default=420.0, gt=0.0, le=30 * 86_400.0)
    dead_still_after_s: float = Field(
        default=540.0, gt=0.0, le=30 * 86_400.0, description="motionless this long: suspected dead whatever the pose"
    )
    lying_ratio: float = Field(
        default=0.5, gt=0.0, le=2.0, description="h/w below this x walking reference = lying (oblique view)"
    )
    lying_area: float = Field(
        default=1.5, ge=1.0, le=10.0, description="area above this x walking reference = lying (top view)"
    )
    lying_fraction: float = Field(default=0.6, ge=0.0, le=1.0, description="share of the still period spent lying")
    lethargic_bl_per_h: float = Field(default=5.0, ge=0.0, le=1e6, description="activity below this = lethargic")
    lethargic_min_observed_s: float = Field(
        default=600.0, ge=0.0, le=86_400.0, description="continuous observation needed before 'lethargic'"
    )
    lethargic_max_gap_s: float | None = Field(
        default=None,
        gt=0.0,
        le=86_400.0,
        description="frames at most this far apart are continuous observation for the lethargic rule "
        "(None: every observed gap, up to max_gap_s, counts)",
    )
    frozen_size_std: float = Field(
        default=0.06,
        ge=0.0,
        le=1.0,
        description="a still box whose log width/height vary less than this is 'frozen' (no breathing, no "
        "shifting): dead after dead_after_s whatever the pose",
    )
    spot_min_iou: float = Field(
        default=0.5, ge=0.0, le=1.0, description="a box continues a spot only if it overlaps its box this much"
    )
    spot_min_similarity: float | None = Field(
        default=0.5,
        ge=-1.0,
        le=1.0,
        description="an embedded box continues a spot only if its re-ID embedding is at least this similar "
        "(cosine) to the spot's running appearance (None: appearance is not checked)",
    )
    spot_same_look: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="a box this similar (cosine) to a spot's running appearance continues it even under another "
        "sure bird id (None: never)",
    )
    spot_vacate_bl: float | None = Field(
        default=2.0,
        gt=0.0,
        le=100.0,
        description="a spot whose own track is seen this far (BL) from it is forgotten: its bird left "
        "(None: never)",
    )
    still_gap_s: float = Field(
        default=60.0, ge=0.0, le=3600.0, description="unobserved gaps up to this long count as still time"
    )
    spot_grace_s: float = Field(
        default=5.0, ge=0.0, le=3600.0, description="a still spot left for this long is forgotten"
    )
    spot_memory_s: float = Field(
        default=4 * 3600.0, ge=0.0, le=30 * 86_400.0, description="long-still spots are remembered this long"
    )
    dead_revive_bl: float = Field(
        default=1.0, gt=0.0, le=100.0, description="a suspected-dead bird seen this far (BL) from where it lay: alive"
    )
    border_px: float = Field(
        default=2.0,
        ge=0.0,
        le=1e4,
        description="boxes this close to the frame border are partial views: their pose is unknown, and a still "
        "spot seen mostly in partial views is flagged dead only once a sure identity says it is a bird",
    )
    mortality_unseen_days: float = Field(default=2.0, gt=0.0, le=365.0)
    huddle_every_s: float = Field(default=5.0, ge=0.0, le=3600.0, description="period of the huddling measurement")
    retention_s: float = Field(default=2 * 86_400.0, gt=0.0, le=365 * 86_400.0)

    @model_validator(mode="after")
    def _order(self) -> HealthConfig:
        if self.dead_after_s > self.dead_still_after_s:
            raise ValueError("health: dead_after_s must be <= dead_still_after_s")
        return self


@dataclass
class BirdHealth:
    """One bird (or one anonymous track) in a window."""

    bird_id: str
    identity_confidence: float
    first_seen: float
    last_seen: float
    activity_bl_per_h: float
    observed_s: float
    length_px: float | None = None
    weight_g: float | None = None
    weight_g_low: float | None = None
    weight_g_high: float | None = None
    health: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    # A carcass (suspected_dead): when it was flagged, and where it lies on the pen's plan (cm) when the
    # camera has floor_points; lets the farm summary tell one carcass seen by two cameras from two deaths.
    dead_since: float | None = None
    dead_floor_cm: tuple[float, float] | None = None

    def to_wire(self) -> BirdSummary:
        from vision.wire import BirdSummary

        return BirdSummary(
            bird_id=self.bird_id,
            identity_confidence=float(min(1.0, max(0.0, self.identity_confidence))),
            first_seen=datetime.fromtimestamp(self.first_seen, tz=timezone.utc),
            last_seen=datetime.fromtimestamp(self.last_seen, tz=timezone.utc),
            activity_bl_per_h=max(0.0, float(self.activity_bl_per_h)),
            length_px=self.length_px,
            weight_g=self.weight_g,
            weight_g_low=self.weight_g_low,
            weight_g_high=self.weight_g_high,
            health=list(self.health) or ["ok"],  # type: ignore[arg-type]
            cameras=list(self.cameras),
        )


def merge_bird_health(parts: Sequence[BirdHealth]) -> BirdHealth:
    """One bird seen by several cameras: activity from the camera that observed it longest, worst health."""
    if not parts:
        raise ValueError("merge_bird_health: parts is empty")
    main = max(parts, key=lambda b: b.observed_s)
    flags: list[str] = []
    for flag in ("suspected_dead", "suspected_sick", "lethargic"):
        if any(flag in b.health for b in parts):
            flags.append(flag)
    return BirdHealth(
        bird_id=main.bird_id,
        identity_confidence=max(b.identity_confidence for b in parts),
        first_seen=min(b.first_seen for b in parts),
        last_seen=max(b.last_seen for b in parts),
        activity_bl_per_h=main.activity_bl_per_h,
        observed_s=sum(b.observed_s for b in parts),
        length_px=main.length_px,
        weight_g=main.weight_g,
        weight_g_low=main.weight_g_low,
        weight_g_high=main.weight_g_high,
        health=flags or ["ok"],
        cameras=sorted({c for b in parts for c in b.cameras}),
        dead_since=min((b.dead_since for b in parts if b.dead_since is not None), default=None),
        dead_floor_cm=next((b.dead_floor_cm for b in sorted(parts, key=_flag_time) if b.dead_floor_cm), None),
    )


def _flag_time(b: BirdHealth) -> float:
    return b.dead_since if b.dead_since is not None else math.inf


@dataclass
class _Track:
    track_id: int
    first_ts: float
    last_ts: float
    pos: np.ndarray
    anchor: np.ndarray
    length_px: float
    size_factor: float = 1.0  # own walking size / the camera's reference at the same image height
    size_samples: int = 0
    bird_id: str = ""
    identity_confidence: float = 0.0


@dataclass
class _Spot:
    """A place where one bird stays still: the unit of the dead/sick clock. Spots are matched by
    position, not by track id, so tracker fragmentation or swaps near a dead bird do not reset it."""

    anchor: np.ndarray
    box: np.ndarray  # xyxy when the bird settled here
    length_px: float
    first_ts: float
    last_ts: float
    still_s: float = 0.0
    lying_s: float = 0.0
    posed_s: float = 0.0
    track_id: int = -1
    last_frame: int = -1
    bird_ids: dict[str, int] = field(default_factory=dict)
    partial_views: int = 0  # sightings cut by the frame border
    appearance: np.ndarray | None = None  # running mean of the re-ID embeddings seen here (unit vector)
    sure_identity: bool = False  # some sighting held a registered bird id at identity_confidence >= 0.5
    sick_alerted: bool = False
    dead_alerted: bool = False
    dead_key: str | None = None  # the subject (bird id or track) this spot flagged suspected dead

    n_sizes: int = 0
    _mean: tuple[float, float] = (0.0, 0.0)
    _m2: tuple[float, float] = (0.0, 0.0)

    @property
    def bird_id(self) -> str:
        return max(self.bird_ids, key=lambda b: self.bird_ids[b]) if self.bird_ids else ""

    def add_size(self, w: float, h: float) -> None:
        """Welford running variance of log box width and height while the bird stays here."""
        self.n_sizes += 1
        lw, lh = math.log(max(w, 1e-3)), math.log(max(h, 1e-3))
        dw, dh = lw - self._mean[0], lh - self._mean[1]
        self._mean = (self._mean[0] + dw / self.n_sizes, self._mean[1] + dh / self.n_sizes)
        self._m2 = (self._m2[0] + dw * (lw - self._mean[0]), self._m2[1] + dh * (lh - self._mean[1]))

    def size_std(self) -> float:
        """Largest std of log width / log height (0 for a box that never changes shape)."""
        if self.n_sizes < 2:
            return math.inf
        return math.sqrt(max(self._m2) / (self.n_sizes - 1))


@dataclass
class _Subject:
    """Per-window aggregates of one bird id (or one anonymous track), in minute bins."""

    key: str
    first_seen: float
    last_seen: float
    # minute -> [dist_bl, observed_s, continuously observed_s (gaps <= lethargic_max_gap_s)]
    bins: dict[int, list[float]] = field(default_factory=dict)
    lengths: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    identity_confidence: float = 0.0
    status: dict[str, float] = field(default_factory=dict)  # flag -> ts it was last true
    dead_since: float | None = None  # sticky suspected_dead: set when flagged, cleared when seen moving
    dead_pos: np.ndarray | None = None  # where it lay (this camera's pixels)
    dead_track: int | None = None  # the track that lay there when it was flagged
    dead_floor_cm: tuple[float, float] | None = None  # dead_pos on the pen's plan (camera floor_points)


class _PoseReference:
    """Median size and h/w ratio of walking birds, per horizontal band of one camera's image."""

    BANDS = 8
    MIN_BAND = 8
    MIN_ALL = 20

    def __init__(self) -> None:
        self._bands: list[deque[tuple[float, float]]] = [deque(maxlen=256) for _ in range(self.BANDS)]
        self._all: deque[tuple[float, float]] = deque(maxlen=1024)
        self._cache: dict[int, tuple[float, float] | None] = {}
        self._adds = 0

    def add(self, band: int, size: float, ratio: float) -> None:
        self._bands[band].append((size, ratio))
        self._all.append((size, ratio))
        # Medians are refreshed every few samples, not on each one (they move slowly).
        self._adds += 1
        if self._adds % 16 == 0 or len(self._all) <= self.MIN_ALL:
            self._cache.clear()

    def reference(self, band: int) -> tuple[float, float] | None:
        """(size, ratio) of walking birds in this band (or all bands while the band has too few)."""
        key = band if len(self._bands[band]) >= self.MIN_BAND else -1
        if key not in self._cache:
            src = self._bands[band] if key >= 0 else self._all
            if len(src) < (self.MIN_BAND if key >= 0 else self.MIN_ALL):
                return None
            arr = np.asarray(src, np.float64)
            self._cache[key] = (float(np.median(arr[:, 0])), float(np.median(arr[:, 1])))
        return self._cache[key]


class HealthMonitor:
    """Per-camera health state. `observe` once per processed frame, `window` per report."""

    def __init__(
        self,
        config: HealthConfig | None = None,
        calibration: CalibrationConfig | None = None,
        *,
        camera_id: str = "cam0",
    ) -> None:
        self.config = config or HealthConfig()
        self.calibration = calibration or CalibrationConfig()
        self._floor_h = self.calibration.floor_homography()
        self.camera_id = camera_id
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._spots: list[_Spot] = []
        self._frame_no = 0
        self._subjects: dict[str, _Subject] = {}
        self._alerts: deque[dict[str, Any]] = deque()
        self._huddle: deque[tuple[float, float]] = deque()
        self._last_huddle_ts = -math.inf
        self._ref = _PoseReference()
        self._frame_h = 0.0
        self._hull_pts: np.ndarray = np.zeros((0, 2), np.float64)
        self._hull_area = 0.0

    # ------------------------------------------------------------------ per frame
    def observe(self, dets: Detections) -> list[dict[str, Any]]:
        """Update every tracked bird with this frame; returns alerts raised on this frame."""
        cfg = self.config
        ts = float(dets.timestamp)
        new_alerts: list[dict[str, Any]] = []
        assert dets.track_id is not None
        present: set[int] = {int(t) for t in dets.track_id if t >= 0}
        wh = np.clip(dets.xyxy[:, 2:4] - dets.xyxy[:, 0:2], 1e-3, None)
        centres = dets.center_xy.astype(np.float64)
        n = len(dets)
        # A box cut by the frame border shows part of something: its shape says nothing about the pose.
        cut = (
            ~inside_frame(dets.xyxy, dets.frame_size_wh, cfg.border_px)
            if dets.frame_size_wh is not None and cfg.border_px > 0
            else np.zeros(n, bool)
        )
        lying: list[bool | None] = [None] * n
        lengths = np.maximum(wh[:, 0], wh[:, 1]).astype(np.float64)
        subjects: list[_Subject | None] = [None] * n
        for i in range(n):
            tid = int(dets.track_id[i])
            if tid < 0:
                continue
            w, h = float(wh[i, 0]), float(wh[i, 1])
            c = centres[i]
            bird_id = str(dets.bird_id[i]) if dets.bird_id is not None else ""
            idc = float(dets.identity_confidence[i]) if dets.identity_confidence is not None else 0.0
            st = self._tracks.get(tid)
            if st is None:
                st = _Track(track_id=tid, first_ts=ts, last_ts=ts, pos=c.copy(), anchor=c.copy(), length_px=max(w, h))
                self._tracks[tid] = st
            dt = max(0.0, ts - st.last_ts)
            observed = dt <= cfg.max_gap_s
            # Running body length: a slow EMA that ignores single short (occluded) boxes.
            st.length_px += (0.1 if max(w, h) > 0.7 * st.length_px else 0.02) * (max(w, h) - st.length_px)
            lengths[i] = st.length_px
            body = max(1.0, st.length_px)
            beta = 1.0 if cfg.smooth_s <= 0 else 1.0 - math.exp(-dt / cfg.smooth_s) if dt > 0 else 0.0
            if st.first_ts == ts:
                beta = 1.0
            dx, dy = beta * (c[0] - st.pos[0]), beta * (c[1] - st.pos[1])
            st.pos = np.array([st.pos[0] + dx, st.pos[1] + dy])
            step_bl = math.hypot(dx, dy) / body
            ratio = h / w
            size = math.sqrt(w * h)
            band = self._band(float(c[1]), dets)
            ref = self._ref.reference(band)
            if math.hypot(st.pos[0] - st.anchor[0], st.pos[1] - st.anchor[1]) / body > cfg.motion_threshold_bl:
                # Walking: a sample of what a standing bird looks like here (whole views only).
                st.anchor = st.pos.copy()
                if not cut[i]:
                    self._ref.add(band, size, ratio)
                    if ref is not None:
                        st.size_factor += 0.2 * (size / ref[0] - st.size_factor)
                        st.size_samples += 1
            if ref is not None and not cut[i]:
                factor = st.size_factor if st.size_samples >= 3 else 1.0
                lying[i] = ratio < cfg.lying_ratio * ref[1] or (size / (ref[0] * factor)) ** 2 > cfg.lying_area
            st.last_ts = ts
            if bird_id:
                st.bird_id, st.identity_confidence = bird_id, idc
            key = st.bird_id or f"track-{self.camera_id}-{tid}"
            if st.bird_id:
                self._adopt(f"track-{self.camera_id}-{tid}", key)
            subj = self._subjects.get(key)
            if subj is None:
                subj = _Subject(key=key, first_seen=ts, last_seen=ts)
                self._subjects[key] = subj
            subjects[i] = subj
            subj.last_seen = ts
            if subj.dead_since is not None and subj.dead_pos is not None:
                away = math.hypot(st.pos[0] - subj.dead_pos[0], st.pos[1] - subj.dead_pos[1]) / body
                # Seen walking: the very track that lay there, or the bird surely identified elsewhere. A
                # guessed id (a look-alike's) on a live bird elsewhere says nothing about the carcass.
                sure = not st.bird_id or st.identity_confidence >= SURE_IDENTITY or tid == subj.dead_track
                if away > cfg.dead_revive_bl and sure:
                    subj.dead_since = subj.dead_pos = subj.dead_track = subj.dead_floor_cm = None
            subj.identity_confidence = idc if bird_id else 0.0
            subj.lengths.append(max(w, h))
            if observed and dt > 0:
                b = subj.bins.setdefault(int(ts // _BIN_S), [0.0, 0.0, 0.0])
                b[0] += step_bl
                b[1] += dt
                if cfg.lethargic_max_gap_s is None or dt <= cfg.lethargic_max_gap_s:
                    b[2] += dt
        new_alerts.extend(self._update_spots(dets, centres, lengths, lying, cut, subjects, ts))
        self._frame_no += 1
        self._end_missing(present, ts)
        if ts - self._last_huddle_ts >= cfg.huddle_every_s and len(dets) >= 3:
            self._measure_huddle(dets, ts)
        self._alerts.extend(new_alerts)
        self._prune(ts)
        return new_alerts

    def _update_spots(
        self,
        dets: Detections,
        centres: np.ndarray,
        lengths: np.ndarray,
        lying: list[bool | None],
        cut: np.ndarray,
        subjects: list[_Subject | None],
        ts: float,
    ) -> list[dict[str, Any]]:
        """Match this frame's birds to still spots by position; a bird farther than motion_threshold_bl
        from every spot starts a new one."""
        cfg = self.config
        assert dets.track_id is not None
        rows = [i for i in range(len(dets)) if dets.track_id[i] >= 0]
        spots = self._spots
        embedded = dets.embedded
        emb = dets.embedding
        if emb is not None and embedded.any():
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1), 1e-12)[:, None]
        matched_det: dict[int, _Spot] = {}
        vacated: set[int] = set()  # spots whose bird walked away (spot_vacate_bl); a carcass's is kept
        if rows and spots:
            anchors = np.stack([sp.anchor for sp in spots])
            spot_len = np.array([sp.length_px for sp in spots])
            c = centres[rows]
            d = np.linalg.norm(c[:, None, :] - anchors[None, :, :], axis=2)
            d /= np.maximum(np.maximum(lengths[rows][:, None], spot_len[None, :]), 1.0)
            # Same place AND the same box shape: a neighbour that steps onto the spot has a different box.
            iou = box_iou_batch(dets.xyxy[rows], np.stack([sp.box for sp in spots]))
            cand = np.argwhere((d <= cfg.motion_threshold_bl) & (iou >= cfg.spot_min_iou))
            spot_tracks = np.array([sp.track_id for sp in spots])
            # A spot whose own track is elsewhere in this frame belongs to that (live) bird, not to
            # whoever walks over it (birds crowd at feeders): only its own track may continue it.
            present = set(int(t) for t in dets.track_id[rows])
            held = np.array([t in present for t in spot_tracks[cand[:, 1]]], bool) if len(cand) else np.zeros(0, bool)
            same = spot_tracks[cand[:, 1]] == dets.track_id[rows][cand[:, 0]]
            cand, same = cand[same | ~held], same[same | ~held]
            # A confidently identified bird cannot continue the spot of another identified bird (birds
            # take turns at a favourite corner); a dead bird keeps its id across track fragments. A
            # carcass spot (flagged, its bird still suspected dead) is continued by whatever id the
            # registry now gives the same box at the same place: a lying bird is re-identified poorly.
            if dets.bird_id is not None and dets.identity_confidence is not None and len(cand):
                spot_bird = [spots[int(k)].bird_id for k in cand[:, 1]]
                # ... nor is a box that looks like what has lain there (spot_same_look): look-alikes' names
                # flip on a carcass, and a clock split between two names reached the threshold late.
                exempt = [
                    self._carcass(spots[int(k)]) is not None
                    or self._same_look(spots[int(k)], emb, embedded, rows[int(r)])
                    for r, k in cand
                ]
                det_rows = [rows[int(r)] for r in cand[:, 0]]
                clash = np.array(
                    [
                        bool(sb)
                        and not free
                        and bool(dets.bird_id[i])
                        and dets.identity_confidence[i] >= SURE_IDENTITY
                        and str(dets.bird_id[i]) != sb
                        for sb, free, i in zip(spot_bird, exempt, det_rows, strict=True)
                    ],
                    bool,
                )
                cand, same = cand[~clash], same[~clash]
            # Same place, same shape, and the same look: birds that sit at one favourite corner in turn
            # (filmed 40 minutes apart, none of them identified) are different birds, not one still one.
            if cfg.spot_min_similarity is not None and emb is not None and embedded.any() and len(cand):
                other = np.zeros(len(cand), bool)
                for j, (r, k) in enumerate(cand):
                    look = spots[int(k)].appearance
                    i = rows[int(r)]
                    other[j] = bool(embedded[i]) and look is not None and float(emb[i] @ look) < cfg.spot_min_similarity
                cand, same = cand[~other], same[~other]
            # A box prefers the spot its own track held on the previous frame, then the nearest.
            key = d[cand[:, 0], cand[:, 1]] - same * cfg.motion_threshold_bl
            used_spot: set[int] = set()
            for r, k in cand[np.argsort(key, kind="stable")]:
                i = rows[int(r)]
                if i in matched_det or int(k) in used_spot:
                    continue
                matched_det[i] = spots[int(k)]
                used_spot.add(int(k))
            # A spot whose own track is seen walking elsewhere was left by its bird: whoever sits there next
            # is another bird (in a uniform flock the look cannot tell), so its clock must not run on.
            if cfg.spot_vacate_bl is not None:
                row_of = {int(t): r for r, t in enumerate(dets.track_id[rows])}
                for k, left in enumerate(spots):
                    r = row_of.get(left.track_id, -1)
                    if r >= 0 and k not in used_spot and d[r, k] > cfg.spot_vacate_bl:
                        vacated.add(id(left))
        alerts: list[dict[str, Any]] = []
        for i in rows:
            sp = matched_det.get(i)
            if sp is None:
                sp = _Spot(
                    anchor=centres[i].copy(),
                    box=dets.xyxy[i].copy(),
                    length_px=float(lengths[i]),
                    first_ts=ts,
                    last_ts=ts,
                )
                spots.append(sp)
            else:
                dt = ts - sp.last_ts
                # Short gaps (a missed detection, a bird walking in front) count as still time; longer
                # ones (night, long occlusion, sparse frames) add nothing, but reset nothing either.
                if 0.0 < dt <= cfg.still_gap_s:
                    sp.still_s += dt
                    if lying[i] is not None:
                        sp.posed_s += dt
                        if lying[i]:
                            sp.lying_s += dt
                sp.last_ts = ts
            sp.last_frame = self._frame_no
            sp.track_id = int(dets.track_id[i])
            sp.add_size(float(dets.xyxy[i, 2] - dets.xyxy[i, 0]), float(dets.xyxy[i, 3] - dets.xyxy[i, 1]))
            bid = str(dets.bird_id[i]) if dets.bird_id is not None else ""
            if bid:
                sp.bird_ids[bid] = sp.bird_ids.get(bid, 0) + 1
                if dets.identity_confidence is not None and dets.identity_confidence[i] >= SURE_IDENTITY:
                    sp.sure_identity = True
            sp.partial_views += int(cut[i])
            if embedded[i]:
                assert emb is not None
                e = emb[i].astype(np.float64)
                a = e if sp.appearance is None else 0.7 * sp.appearance + 0.3 * e
                sp.appearance = a / max(float(np.linalg.norm(a)), 1e-12)
            alerts.extend(self._check(sp, subjects[i], ts))
        # Forget spots the bird walked away from; keep long-still ones through gaps (night, occlusion).
        keep = []
        for sp in spots:
            age = ts - sp.last_ts
            if id(sp) in vacated and self._carcass(sp) is None:
                continue
            if (
                age <= cfg.spot_grace_s
                or (age <= cfg.still_gap_s and sp.still_s >= 6 * cfg.spot_grace_s)
                or (age <= cfg.spot_memory_s and sp.still_s >= 0.5 * cfg.dead_after_s)
            ):
                keep.append(sp)
        self._spots = keep
        return alerts

    def _adopt(self, track_key: str, bird_key: str) -> None:
        """A track just got its bird id: its anonymous history becomes the bird's."""
        for a in self._alerts:
            if a.get("_track") == track_key and not a.get("bird_id"):
                a["bird_id"] = bird_key
        for sp in self._spots:
            if sp.dead_key == track_key:
                sp.dead_key = bird_key
        anon = self._subjects.pop(track_key, None)
        if anon is None:
            return
        subj = self._subjects.get(bird_key)
        if subj is None:
            anon.key = bird_key
            self._subjects[bird_key] = anon
            return
        subj.first_seen = min(subj.first_seen, anon.first_seen)
        subj.last_seen = max(subj.last_seen, anon.last_seen)
        for m, (d, o, c) in anon.bins.items():
            b = subj.bins.setdefault(m, [0.0, 0.0, 0.0])
            b[0] += d
            b[1] += o
            b[2] += c
        subj.lengths.extend(anon.lengths)
        for flag, t in anon.status.items():
            subj.status[flag] = max(t, subj.status.get(flag, t))
        if anon.dead_since is not None and (subj.dead_since is None or anon.dead_since < subj.dead_since):
            subj.dead_since, subj.dead_pos, subj.dead_track = anon.dead_since, anon.dead_pos, anon.dead_track
            subj.dead_floor_cm = anon.dead_floor_cm

    def _band(self, cy: float, dets: Detections) -> int:
        if dets.frame_size_wh is not None:
            self._frame_h = float(dets.frame_size_wh[1])
        elif len(dets):
            self._frame_h = max(self._frame_h, float(dets.xyxy[:, 3].max()))
        h = max(1.0, self._frame_h)
        return int(min(_PoseReference.BANDS - 1, max(0.0, cy / h) * _PoseReference.BANDS))

    def _end_missing(self, present: set[int], ts: float) -> None:
        cfg = self.config
        for tid in [t for t, st in self._tracks.items() if t not in present and ts - st.last_ts > cfg.max_gap_s]:
            del self._tracks[tid]

    def _same_look(self, sp: _Spot, emb: np.ndarray | None, embedded: np.ndarray, i: int) -> bool:
        """Box i looks like what has lain at this spot (cosine to its running appearance >=
        spot_same_look): the same still thing, whatever name the registry gives it on this frame."""
        limit = self.config.spot_same_look
        if limit is None or emb is None or sp.appearance is None or not bool(embedded[i]):
            return False
        return float(emb[i] @ sp.appearance) >= limit

    def _carcass(self, sp: _Spot) -> _Subject | None:
        """The bird this spot flagged suspected dead, while it has not been seen moving since."""
        first = self._subjects.get(sp.dead_key) if sp.dead_key is not None else None
        return first if first is not None and first.dead_since is not None else None

    def _carcass_at(self, sp: _Spot) -> _Subject | None:
        """A bird still suspected dead that lay where this spot is (a new spot over the same carcass, after
        night or a long occlusion, that the registry now calls by another id, or enrolled as a new bird)."""
        body = max(1.0, sp.length_px)
        for other in self._subjects.values():
            if other.dead_since is not None and other.dead_pos is not None:
                away = math.hypot(sp.anchor[0] - other.dead_pos[0], sp.anchor[1] - other.dead_pos[1]) / body
                if away <= self.config.dead_revive_bl:
                    return other
        return None

    def _check(self, sp: _Spot, subj: _Subject | None, ts: float) -> list[dict[str, Any]]:
        cfg = self.config
        out: list[dict[str, Any]] = []
        if sp.still_s <= 0:
            return out
        if 2 * sp.partial_views > sp.n_sizes and not sp.sure_identity:
            # Mostly seen cut by the frame border and never surely identified: its pose is unknowable and
            # it is as likely a fixture at the edge of the view that the detector believes in (a feeder's
            # top, there from the first frame, day after day) as a bird, so it is not judged.
            return out
        lying_share = sp.lying_s / sp.posed_s if sp.posed_s > 0 else 0.0
        posed = sp.posed_s >= 0.5 * sp.still_s
        frozen = sp.n_sizes >= 10 and sp.size_std() <= cfg.frozen_size_std
        dead = (
            sp.still_s >= cfg.dead_after_s and ((posed and lying_share >= cfg.lying_fraction) or frozen)
        ) or sp.still_s >= cfg.dead_still_after_s
        if dead:
            carcass = self._carcass(sp) or self._carcass_at(sp)
            if carcass is not None:
                sp.dead_key = carcass.key
            # A carcass already flagged under another id is not flagged again under this one: a lying
            # bird is re-identified poorly, and one death must not become two birds suspected dead. Nor
            # is the carcass of a bird whose history was dropped (unseen under its id for retention_s).
            forgotten = sp.dead_key is not None and sp.dead_key not in self._subjects
            if carcass is None and subj is not None and subj.key.startswith("track-") and sp.bird_id:
                # Judged on a track the registry has not named (footage in bursts starts a new track per
                # burst), while earlier tracks on this very spot were named: the death is that bird's.
                # Left on the anonymous track it would reach no report (reports list named birds only).
                subj = self._subjects.get(sp.bird_id, subj)
            if subj is not None and (carcass is subj or (carcass is None and not forgotten)):
                subj.status["suspected_dead"] = ts
                if subj.dead_since is None:
                    subj.dead_since, subj.dead_pos, subj.dead_track = ts, sp.anchor.copy(), sp.track_id
                    subj.dead_floor_cm = self._on_floor(sp.anchor)
                sp.dead_key = subj.key
            if not sp.dead_alerted:
                sp.dead_alerted = True
                what = (
                    f"motionless for {sp.still_s / 60:.0f} min"
                    + (f", lying {lying_share:.0%} of that time" if posed else ", pose unknown")
                    + (", not even shifting" if frozen else "")
                )
                at = self._on_floor(sp.anchor)
                if at is not None:  # where to go and pick it up
                    what += f", at ({at[0]:.0f}, {at[1]:.0f}) cm on the pen's plan"
                out.append(self._alert("suspected_dead", ts, sp, "critical", what))
        elif sp.still_s >= cfg.sick_after_s:
            if subj is not None:
                subj.status["suspected_sick"] = ts
            if not sp.sick_alerted:
                sp.sick_alerted = True
                out.append(
                    self._alert("suspected_sick", ts, sp, "warning", f"motionless for {sp.still_s / 60:.0f} min")
                )
        return out

    def _on_floor(self, image_xy: np.ndarray) -> tuple[float, float] | None:
        """A point of this camera's image on the pen's plan (cm); None without floor_points. The box centre
        of a bird lying flat is its body's centre on the floor."""
        if self._floor_h is None:
            return None
        x, y = image_to_floor(self._floor_h, np.asarray(image_xy, np.float64).reshape(1, 2))[0]
        return (float(x), float(y)) if math.isfinite(x) and math.isfinite(y) else None

    def _alert(self, kind: str, ts: float, sp: _Spot, severity: str, message: str) -> dict[str, Any]:
        return {
            "_track": f"track-{self.camera_id}-{sp.track_id}",
            "kind": kind,
            "at": ts,
            "camera_id": self.camera_id,
            "bird_id": sp.bird_id or None,
            "severity": severity,
            "message": message,
        }

    def _measure_huddle(self, dets: Detections, ts: float) -> None:
        self._last_huddle_ts = ts
        assert dets.track_id is not None
        pts = dets.center_xy.astype(np.float64)
        if len(pts) < 3:
            return
        self._update_hull(pts)
        if self._hull_area <= 0:
            return
        d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(d2, np.inf)
        mean_nn = float(np.mean(np.sqrt(d2.min(axis=1))))
        expected = 0.5 * math.sqrt(self._hull_area / len(pts))
        r = mean_nn / expected if expected > 0 else 1.0
        self._huddle.append((ts, float(np.clip(1.0 - r, 0.0, 1.0))))

    def _update_hull(self, pts: np.ndarray) -> None:
        import cv2

        allp = np.concatenate([self._hull_pts, pts]) if self._hull_pts.size else pts
        if len(allp) < 3:
            return
        hull = cv2.convexHull(allp.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        self._hull_pts = hull
        self._hull_area = float(cv2.contourArea(hull.astype(np.float32)))

    def _prune(self, ts: float) -> None:
        cutoff = ts - self.config.retention_s
        while self._alerts and float(self._alerts[0]["at"]) < cutoff:
            self._alerts.popleft()
        while self._huddle and self._huddle[0][0] < cutoff:
            self._huddle.popleft()
        if int(ts) % 60 == 0:
            for key in [k for k, s in self._subjects.items() if s.last_seen < cutoff]:
                del self._subjects[key]

    # ------------------------------------------------------------------ per window
    def window(self, start_ts: float, end_ts: float) -> dict[str, Any]:
        """Birds, alerts and flock signals of [start_ts, end_ts]."""
        cfg = self.config
        lo_bin, hi_bin = int(start_ts // _BIN_S), int(end_ts // _BIN_S)
        birds: list[BirdHealth] = []
        for subj in self._subjects.values():
            dead = subj.dead_since is not None and subj.dead_since <= end_ts
            if subj.first_seen > end_ts or (subj.last_seen < start_ts and not dead):
                continue
            dist = obs = cont = 0.0
            for m, (d, o, c) in subj.bins.items():
                if lo_bin <= m <= hi_bin:
                    dist += d
                    obs += o
                    cont += c
            activity = dist / (obs / 3600.0) if obs > 0 else 0.0
            flags = [f for f, t in subj.status.items() if start_ts <= t <= end_ts]
            if dead:
                flags = ["suspected_dead"]
            elif "suspected_dead" in flags:
                # Flagged in this window, then seen walking before its end: alive at the end, so no death
                # in this report (the alert stays in the window's alerts). It was still long enough to be
                # judged dead, so it is reported sick. Reporting it dead had counted one carcass twice:
                # a look-alike surely given the carcass's id walks, the carcass is flagged again under
                # the next id (demo seed 11: two deaths in one report for one dead bird).
                flags = ["suspected_sick"]
            # Lethargic needs minutes of continuous watching (lethargic_max_gap_s): footage in short
            # bursts far apart (0.3 s every 40 min) measures only net displacement between bursts.
            if not flags and cont >= cfg.lethargic_min_observed_s and activity < cfg.lethargic_bl_per_h:
                flags = ["lethargic"]
            length = float(np.percentile(np.asarray(subj.lengths), 75)) if subj.lengths else None
            wb = None
            if length is not None and len(subj.lengths) >= 3:
                q1, q3 = np.percentile(np.asarray(subj.lengths), [25, 75])
                wb = weight_band(length, self.calibration, float((q3 - q1) / max(1e-6, length)) / 2)
            birds.append(
                BirdHealth(
                    bird_id=subj.key if not subj.key.startswith("track-") else "",
                    identity_confidence=subj.identity_confidence,
                    # An unseen carcass still listed: its real last sighting, before this window.
                    first_seen=min(max(subj.first_seen, start_ts), subj.last_seen),
                    last_seen=min(subj.last_seen, end_ts),
                    activity_bl_per_h=activity,
                    observed_s=obs,
                    length_px=length,
                    weight_g=wb[0] if wb else None,
                    weight_g_low=wb[1] if wb else None,
                    weight_g_high=wb[2] if wb else None,
                    health=flags or ["ok"],
                    cameras=[self.camera_id],
                    dead_since=subj.dead_since if "suspected_dead" in flags else None,
                    dead_floor_cm=subj.dead_floor_cm if "suspected_dead" in flags else None,
                )
            )
        alerts = [
            {k: v for k, v in a.items() if not k.startswith("_")}
            for a in self._alerts
            if start_ts <= float(a["at"]) <= end_ts
        ]
        named = [b for b in birds if b.bird_id]
        observed = [b for b in named if b.observed_s > 0]
        activity_index = float(np.mean([b.activity_bl_per_h for b in observed])) if observed else 0.0
        hud = [h for t, h in self._huddle if start_ts <= t <= end_ts]
        weights = [b.weight_g for b in named if b.weight_g is not None]
        return {
            "birds": birds,
            "alerts": alerts,
            "activity_index": activity_index,
            "huddling_index": float(np.mean(hud)) if hud else 0.0,
            "mean_weight_g": float(np.median(weights)) if weights else None,
        }
