"""`FlockTracker`: multi-bird tracker with motion + appearance and long-term re-identification.

Per frame (``update(dets)``), all tracks are predicted to the frame's time with a constant-velocity
Kalman filter (``vision.tracking.kalman``), then detections are associated in stages:

1. confirmed and lost tracks vs high-confidence boxes (``conf >= high_thresh``): fused cost of
   ``1 - IoU`` and appearance cosine distance, gated by Mahalanobis distance, an appearance veto
   (stops two crossing look-different birds swapping) and a minimum IoU that strong appearance may
   override (``vision.tracking.association.fuse_motion_appearance``);
2. still-unmatched confirmed tracks vs low-confidence boxes (``low_thresh <= conf < high_thresh``),
   IoU cost with the appearance veto only (the ByteTrack idea: a half-occluded bird scores low but keeps
   its track). Lost tracks take part only with ``low_match_lost`` (off: on the dev sequences a lost
   track mostly recovered onto a neighbour's partial box);
3. tentative tracks vs the remaining high boxes.

Unmatched high boxes with ``conf >= new_track_thresh`` start tentative tracks. Lost tracks coast on a
velocity that decays with ``lost_velocity_tau_s`` (birds walk in bursts; a hidden bird has usually
stopped), while their covariance keeps growing so the gate widens.

Track life cycle (stream time, from ``Detections.timestamp``, never frame counts: frames may be sampled
sparsely): ``tentative`` -> (``min_hits`` matches) -> ``confirmed`` -> (no match) -> ``lost`` -> (after
``lost_buffer_s``) -> ``dormant`` -> (after ``gallery_s``) -> ``removed``. A tentative track that misses
a frame is dropped (it never had a public id). ``dormant`` tracks form the re-identification gallery:
when a track is confirmed (or, if it had no embedding then, when it first gets one within
``reid_window_s`` of confirmation), its smoothed embedding is compared with the gallery and with lost
tracks; if the best cosine similarity is ``>= reid_min_sim`` and beats the second best (including
currently confirmed tracks, which may not be taken) by ``reid_margin``, the track takes the old id.
Tracks that never had an embedding skip the gallery and are removed when the lost buffer ends.

Appearance thresholds (``app_reject``, ``app_rescue``, ``reid_min_sim``, ``reid_margin``) are cosine
scales of one re-ID model: ``vision.pipeline.FlockPipeline.from_defaults`` derives them from the model's
card (``vision.identity.calibration``); the defaults here suit a model whose same-bird and
different-bird similarities sit around 0.9 and 0.3.

Appearance: each track keeps an EMA of L2-normalised embeddings (``ema_alpha``). Boxes whose
embedding row is zero, or detections with ``embedding is None``, only skip the appearance term; a
track keeps its last embedding. Boxes mostly covered by another box (IoA >= ``occlusion_ioa``) do not
update the EMA (their crop shows two birds). Pipelines that embed *after* tracking feed embeddings back
with ``update_appearance(tracked_dets)``; pipelines that can embed some boxes *before* tracking ask
``embedding_wanted(dets)`` which boxes motion alone may get wrong (new, re-entering, crowded, or
near a lost/tentative track) and embed those.

Speed: everything per frame is vectorised over tracks (struct-of-arrays ``_Table``); appearance is
computed only for pairs inside the motion gate, with row-wise dot products (no multi-threaded BLAS
call per frame). ``vision.tracking.bench.bench_tracker()`` measures it: ~150 updates/s with 200
birds and 128-d embeddings on one core of the development machine.

Clock: stream time is ``dets.timestamp``. A frame whose timestamp equals the previous one (e.g. the
default 0.0 everywhere) is taken to be ``frame_interval_s`` later; a timestamp going backwards raises
``ValueError`` (call ``reset()`` for a new stream).

Output of ``update``: the rows of the input ``dets`` matched to confirmed tracks on this frame, in input
order, with ``track_id`` set; every other field (``confidence``, ``embedding``, ``class_id``, metadata)
is the detection's own. Boxes are the **detector's boxes** by default (so crops line up with pixels);
``output_boxes="kalman"`` puts the Kalman-filtered boxes in ``xyxy`` instead.

Track-level information for the identity registry:

- ``active_tracks(include_lost=True) -> list[TrackInfo]``: confirmed (and lost) tracks with id, state,
  hits, first/last seen, age, time since update, Kalman box, smoothed embedding.
- ``gallery_tracks() -> list[TrackInfo]``: dormant tracks.
- ``pop_events() -> list[TrackEvent]``: ``confirmed``, ``reidentified`` (``previous_id`` holds the id
  the track had before, if any), ``lost``, ``recovered``, ``dormant``, ``removed``, oldest first.
- ``removed_tracks_since_last_call() -> list[TrackInfo]``: ids that will never be output again, each
  once: tracks that ended (lost buffer over without an embedding, or gallery time over), and fresh ids
  retired because their track was re-identified as an older one (a ``reidentified`` event with
  ``previous_id`` comes first; the retired id's ``TrackInfo`` is the track's state at that moment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.detections import Detections
from vision.geometry import box_ioa_batch, cxcywh_to_xyxy, xyxy_to_cxcywh
from vision.tracking.association import (
    embedding_mask,
    fuse_motion_appearance,
    greedy_assignment,
    iou_distance,
    l2_normalize,
    linear_assignment,
    normalized_appearance_distance,
)
from vision.tracking.kalman import CHI2_99_4DOF, KalmanBoxFilter

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TENTATIVE, CONFIRMED, LOST, DORMANT = 0, 1, 2, 3
STATE_NAMES = {TENTATIVE: "tentative", CONFIRMED: "confirmed", LOST: "lost", DORMANT: "dormant"}
EventKind = Literal["confirmed", "reidentified", "lost", "recovered", "dormant", "removed"]


def _has(emb: F32) -> npt.NDArray[np.bool_]:
    """Rows of a track embedding table that hold an embedding (they are unit vectors or zeros)."""
    return np.asarray(emb.any(axis=1)) if emb.shape[1] else np.zeros(emb.shape[0], bool)


class FlockTrackerConfig(BaseModel):
    """Tuning of `FlockTracker`. Costs are distances in [0, 1]; times are stream seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_thresh: float = Field(0.5, ge=0.0, le=1.0, description="boxes at/above: stage 1 and new tracks")
    low_thresh: float = Field(0.1, ge=0.0, le=1.0, description="boxes below are ignored")
    new_track_thresh: float = Field(0.6, ge=0.0, le=1.0, description="min confidence to start a track")
    match_thresh: float = Field(0.8, gt=0.0, le=1.0, description="max fused cost, stage 1")
    low_match_thresh: float = Field(0.5, gt=0.0, le=1.0, description="max 1-IoU, stage 2 (low boxes)")
    tentative_match_thresh: float = Field(0.7, gt=0.0, le=1.0, description="max fused cost, stage 3")
    min_iou: float = Field(0.1, ge=0.0, le=1.0, description="pairs overlapping less need appearance")
    motion_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of 1-IoU in the fused cost")
    app_reject: float = Field(0.5, gt=0.0, le=1.0, description="cosine distance above which a pair is vetoed")
    app_rescue: float = Field(0.15, ge=0.0, le=1.0, description="cosine distance that allows no overlap")
    gate_chi2: float = Field(CHI2_99_4DOF, gt=0.0, le=1e6, description="Mahalanobis gate (squared)")
    min_hits: int = Field(2, ge=1, le=100, description="matches before a track is confirmed")
    confirm_first_frame: bool = Field(True, description="confirm tracks born on the stream's first frame")
    lost_velocity_tau_s: float = Field(1.5, gt=0.0, le=3600.0, description="velocity decay of lost tracks")
    lost_buffer_s: float = Field(3.0, ge=0.0, le=3600.0, description="lost tracks match by motion this long")
    gallery_s: float = Field(600.0, ge=0.0, le=86400.0, description="dormant tracks re-ID this long")
    max_gallery: int = Field(2000, ge=0, le=100_000, description="gallery size cap (oldest go)")
    reid_min_sim: float = Field(0.7, ge=-1.0, le=1.0, description="min cosine similarity to re-identify")
    reid_margin: float = Field(0.1, ge=0.0, le=2.0, description="lead needed over the 2nd best")
    reid_window_s: float = Field(2.0, ge=0.0, le=3600.0, description="re-ID allowed this long after birth")
    ema_alpha: float = Field(0.9, ge=0.0, lt=1.0, description="weight of the old embedding in the EMA")
    occlusion_ioa: float = Field(0.5, gt=0.0, le=1.0, description="covered boxes skip the EMA")
    low_match_lost: bool = Field(
        False, description="lost tracks also take low-confidence boxes in stage 2 (ByteTrack: confirmed only)"
    )
    fuse_score: bool = Field(
        False,
        description="stages 1 and 3 use IoU x box confidence as the overlap (ByteTrack's fuse_score): "
        "MOTA and ID switches better, IDF1 worse on the dev sequences",
    )
    frame_interval_s: float = Field(0.1, gt=0.0, le=3600.0, description="dt used for repeated timestamps")
    output_boxes: Literal["detection", "kalman"] = "detection"
    assignment: Literal["hungarian", "greedy"] = Field(
        "hungarian", description="solver for track-box matching (greedy helped motion-only crowds)"
    )
    # A detector's boxes of birds in a crowd are often partial (a head, a back), so a box is a rough
    # measurement and birds walk steadily between stops: on three dev sequences (10 fps, 40-80 birds,
    # shipped models) 0.35 / 0.5 lifted IDF1 0.353 -> 0.411 against 0.15 / 2.0 (README, issue 3).
    meas_std: float = Field(0.35, gt=0.0, le=10.0, description="Kalman measurement std, fraction of box size")
    accel_std: float = Field(0.5, gt=0.0, le=1e4, description="Kalman centre acceleration std, sizes/s^2")
    # Seconds apart, a bird's path is no longer smooth (it walks, stops, turns), and the health rules'
    # figures on sparse footage (a frame every 4 s) were measured with this model and with matching that
    # takes the most pairs (``linear_assignment(cost_limit=False)``): with the dense settings, ten
    # 100-minute sequences alerted 7 of 17 carcasses within 10 minutes instead of 10, with 6 false
    # alerts instead of 2.
    sparse_above_dt_s: float = Field(0.5, gt=0.0, le=3600.0, description="frames this far apart: sparse model")
    sparse_meas_std: float = Field(0.15, gt=0.0, le=10.0, description="meas_std for sparse frames")
    sparse_accel_std: float = Field(2.0, gt=0.0, le=1e4, description="accel_std for sparse frames")
    size_accel_std: float = Field(3.0, gt=0.0, le=1e4, description="Kalman size acceleration std, sizes/s^2")
    init_vel_std: float = Field(1.0, gt=0.0, le=1e4, description="initial velocity std, sizes/s")

    @model_validator(mode="after")
    def _check_order(self) -> FlockTrackerConfig:
        if self.low_thresh > self.high_thresh:
            raise ValueError(f"low_thresh ({self.low_thresh}) must be <= high_thresh ({self.high_thresh})")
        if self.app_rescue > self.app_reject:
            raise ValueError(f"app_rescue ({self.app_rescue}) must be <= app_reject ({self.app_reject})")
        return self


@dataclass(frozen=True)
class TrackInfo:
    """One track as the identity registry sees it (copies; safe to keep)."""

    track_id: int
    state: str  # "confirmed" | "lost" | "dormant" | "removed"
    hits: int
    first_seen: float  # stream time of the first matched box
    last_seen: float  # stream time of the last matched box
    age_s: float  # now - first_seen
    time_since_update_s: float  # now - last_seen
    xyxy: F32  # (4,) Kalman box at the tracker's current time
    last_det_xyxy: F32  # (4,) last matched detection box
    confidence: float  # of the last matched box
    class_id: int
    embedding: F32 | None  # (D,) smoothed, L2-normalised; None if never embedded


@dataclass(frozen=True)
class TrackEvent:
    kind: EventKind
    track_id: int
    timestamp: float
    previous_id: int | None = None  # for "reidentified": the id this track carried before (None if none)


@dataclass
class _Table:
    """Struct-of-arrays of tracks so every per-frame step is vectorised."""

    track_id: I64  # public id; -1 while tentative
    state: npt.NDArray[np.int8]
    hits: I64
    first_seen: F64
    last_seen: F64
    born: F64  # when the public id was given (re-ID window)
    reid_pending: npt.NDArray[np.bool_]  # got a fresh id without a gallery check on an embedding
    mean: F64  # (T, 8)
    cov: F64  # (T, 8, 8)
    emb: F32  # (T, D); zero rows = no embedding
    det_xyxy: F32  # (T, 4)
    conf: F32
    class_id: I64
    det_idx: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # box matched this frame, or -1

    @property
    def matched(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.det_idx >= 0)

    @classmethod
    def empty(cls, dim: int) -> _Table:
        return cls(
            track_id=np.zeros(0, np.int64),
            state=np.zeros(0, np.int8),
            hits=np.zeros(0, np.int64),
            first_seen=np.zeros(0),
            last_seen=np.zeros(0),
            born=np.zeros(0),
            reid_pending=np.zeros(0, bool),
            mean=np.zeros((0, 8)),
            cov=np.zeros((0, 8, 8)),
            emb=np.zeros((0, dim), np.float32),
            det_xyxy=np.zeros((0, 4), np.float32),
            conf=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
            det_idx=np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def take(self, idx: Any) -> _Table:
        return _Table(**{k: v[idx] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(a: _Table, b: _Table) -> _Table:
        return _Table(**{k: np.concatenate([v, b.__dict__[k]]) for k, v in a.__dict__.items()})

    def widen(self, dim: int) -> None:
        """Give the embedding column its dimension once the first embedding arrives."""
        if self.emb.shape[1] != dim:
            self.emb = np.zeros((len(self), dim), np.float32)


class FlockTracker:
    """See the module docstring. Not thread-safe: one tracker per camera stream."""

    def __init__(self, config: FlockTrackerConfig | None = None, **overrides: Any) -> None:
        if config is not None and overrides:
            raise ValueError("FlockTracker: pass either config or keyword overrides, not both")
        self.config = config if config is not None else FlockTrackerConfig(**overrides)
        c = self.config

        def kalman(meas_std: float, accel_std: float) -> KalmanBoxFilter:
            return KalmanBoxFilter(meas_std=meas_std, accel_std=accel_std, size_accel_std=c.size_accel_std,
                                   init_pos_std=meas_std, init_vel_std=c.init_vel_std)

        self._kf_dense = kalman(c.meas_std, c.accel_std)
        self._kf_sparse = kalman(c.sparse_meas_std, c.sparse_accel_std)
        self.reset()

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Forget every track, the gallery, the clock and pending events; ids restart at 1."""
        self._dim = 0
        self._sparse = False  # this frame came seconds after the last (see sparse_above_dt_s)
        self._live = _Table.empty(0)
        self._gallery = _Table.empty(0)
        self._next_id = 1
        self._now: float | None = None
        self._last_raw_ts: float | None = None
        self._frames = 0
        self._events: list[TrackEvent] = []
        self._removed: list[TrackInfo] = []

    @property
    def kf(self) -> KalmanBoxFilter:
        """The motion model of the current frame: dense or sparse (``sparse_above_dt_s``)."""
        return self._kf_sparse if self._sparse else self._kf_dense

    @property
    def now(self) -> float | None:
        """Stream time of the last update (None before the first)."""
        return self._now

    def update(self, dets: Detections) -> Detections:
        """Associate one frame's boxes; returns the confirmed tracks' rows (see the module docstring)."""
        if not isinstance(dets, Detections):
            raise ValueError(f"FlockTracker.update: dets must be Detections, got {type(dets).__name__}")
        bad = ~np.isfinite(dets.xyxy).all(axis=1) | ~np.isfinite(dets.confidence)
        if bad.any():
            raise ValueError(f"FlockTracker.update: non-finite box or confidence in rows {np.flatnonzero(bad)[:10]}")
        c = self.config
        now = self._advance_clock(float(dets.timestamp))
        dt = now - self._prev_now
        if dt > 0:
            self._sparse = dt >= c.sparse_above_dt_s
        live = self._live
        live.det_idx = np.full(len(live), -1, np.int64)
        if len(live) and dt > 0:
            live.mean, live.cov = self.kf.predict(live.mean, live.cov, dt)
            live.mean[:, 2:4] = np.maximum(live.mean[:, 2:4], 1.0)
            # Birds walk in bursts: a lost track coasting on its last velocity drifts away from where
            # the bird stopped or hid, so its velocity decays (the covariance still grows).
            lost = live.state == LOST
            if lost.any():
                live.mean[lost, 4:] *= np.exp(-dt / c.lost_velocity_tau_s)

        det_emb, det_has_emb = self._det_embeddings(dets)
        conf = dets.confidence
        det_cxcywh = xyxy_to_cxcywh(dets.xyxy).astype(np.float64)
        high = np.flatnonzero(conf >= c.high_thresh)
        low = np.flatnonzero((conf >= c.low_thresh) & (conf < c.high_thresh))
        det_used = np.zeros(len(dets), bool)
        self._conf_now = conf.astype(np.float64)
        self._clear = self._unoccluded(dets.xyxy)
        ctx = (det_cxcywh, det_emb, det_has_emb, dets.xyxy)

        # Stage 1: confirmed + lost vs high boxes, fused cost.
        pool = np.flatnonzero((live.state == CONFIRMED) | (live.state == LOST))
        self._stage(pool, high, ctx, c.match_thresh, det_used, fused=True)
        # Stage 2: still-unmatched confirmed tracks vs low boxes: IoU, appearance can only veto. Lost
        # tracks are left out by default: a low box near a lost track is as often a neighbour's partial
        # box as the lost bird, and the track then lives on on it (4 dev sequences: IDF1 +1.4 points,
        # fewer ID switches and false positives).
        stage2 = (live.state == CONFIRMED) | ((live.state == LOST) if c.low_match_lost else False)
        pool = np.flatnonzero(stage2 & ~live.matched)
        self._stage(pool, low, ctx, c.low_match_thresh, det_used, fused=False)
        # Stage 3: tentative vs remaining high boxes.
        pool = np.flatnonzero(live.state == TENTATIVE)
        self._stage(pool, high[~det_used[high]], ctx, c.tentative_match_thresh, det_used, fused=True)

        self._apply_matches(dets, det_cxcywh, det_emb, det_has_emb, conf >= c.high_thresh, now)

        # Tracks without a box this frame: confirmed -> lost, tentative -> dropped.
        unmatched = ~live.matched
        newly_lost = np.flatnonzero(unmatched & (live.state == CONFIRMED))
        for i in newly_lost:
            self._events.append(TrackEvent("lost", int(live.track_id[i]), now))
        live.state[newly_lost] = LOST
        self._live = live.take(~(unmatched & (live.state == TENTATIVE)))

        new = np.flatnonzero(~det_used & (conf >= c.high_thresh) & (conf >= c.new_track_thresh))
        if new.size:
            self._spawn(new, dets, det_cxcywh, det_emb, det_has_emb, now)
        live = self._live

        confirm_now = (live.state == TENTATIVE) & live.matched & (
            (live.hits >= c.min_hits) | (self._frames == 0 and c.confirm_first_frame)
        )
        self._confirm(np.flatnonzero(confirm_now), now)
        self._retry_reid(now)
        self._age_out(now)
        self._frames += 1
        return self._output(dets)

    def update_appearance(self, dets: Detections) -> None:
        """Feed embeddings computed after `update` (rows with ``track_id`` and a non-zero embedding).

        Rows whose ``track_id`` is not a live track are ignored (the track may have ended meanwhile).
        """
        if not isinstance(dets, Detections):
            raise ValueError(f"update_appearance: dets must be Detections, got {type(dets).__name__}")
        if dets.embedding is None or len(dets) == 0 or self._now is None:
            return
        emb, ok = self._det_embeddings(dets)
        live = self._live
        tid = np.asarray(dets.track_id, np.int64)
        pos = {int(t): i for i, t in enumerate(live.track_id) if t >= 0}
        rows = [(pos[int(t)], j) for j, t in enumerate(tid) if ok[j] and int(t) in pos]
        if not rows:
            return
        idx = np.array(rows, np.int64)
        # Duplicate track ids in one call: the last row wins, like sequential updates would.
        _, last = np.unique(idx[::-1, 0], return_index=True)
        idx = idx[::-1][last]
        clear = self._unoccluded(dets.xyxy)
        idx = idx[clear[idx[:, 1]]]
        self._ema(idx[:, 0], emb[idx[:, 1]])
        self._retry_reid(self._now)

    def embedding_wanted(
        self, dets: Detections, *, ambiguity_iou: float = 0.3, max_boxes: int | None = None
    ) -> npt.NDArray[np.bool_]:
        """(N,) True for boxes whose association motion alone may get wrong; does not change state.

        For pipelines that embed only some boxes: embedding these *before* ``update`` gives appearance
        where it decides something. A box (with ``conf >= low_thresh``) is wanted, most needed first,
        when it overlaps no live track's predicted box by IoU >= 0.5 (a new or re-entering bird:
        re-identification), when its best track is lost or tentative, or when a second track also
        overlaps it by ``ambiguity_iou`` or more (a crowd: swap risk). ``max_boxes`` keeps only that
        many, by that order and then by confidence.
        """
        if not isinstance(dets, Detections):
            raise ValueError(f"embedding_wanted: dets must be Detections, got {type(dets).__name__}")
        if not 0.0 <= ambiguity_iou <= 1.0:
            raise ValueError(f"embedding_wanted: ambiguity_iou must be in [0, 1], got {ambiguity_iou}")
        if max_boxes is not None and max_boxes < 0:
            raise ValueError(f"embedding_wanted: max_boxes must be >= 0, got {max_boxes}")
        n = len(dets)
        candidate = dets.confidence >= self.config.low_thresh
        live = self._live
        if len(live) == 0 or n == 0:
            priority = np.where(candidate, 3, 0)
        else:
            ts = float(dets.timestamp)
            last = self._last_raw_ts if self._last_raw_ts is not None else ts
            dt = ts - last if ts > last else self.config.frame_interval_s
            centre_size = live.mean[:, :4] + dt * live.mean[:, 4:]  # the mean of `predict`, without cov
            iou = 1.0 - iou_distance(cxcywh_to_xyxy(centre_size), dets.xyxy)  # (T, N)
            best_row = iou.argmax(axis=0)
            best = iou[best_row, np.arange(n)]
            second = np.sort(iou, axis=0)[-2] if len(live) > 1 else np.zeros(n)
            priority = np.select(
                [best < 0.5, live.state[best_row] != CONFIRMED, second >= ambiguity_iou], [3, 2, 1], 0
            )
            priority[~candidate] = 0
        wanted = priority > 0
        if max_boxes is not None and int(wanted.sum()) > max_boxes:
            order = np.lexsort((-dets.confidence, -priority))  # priority first, then confidence
            wanted = np.zeros(n, bool)
            wanted[order[:max_boxes]] = True
            wanted &= priority > 0
        return wanted

    def active_tracks(self, include_lost: bool = True) -> list[TrackInfo]:
        """Confirmed tracks (and lost ones unless ``include_lost=False``), ordered by id."""
        live = self._live
        want = (live.state == CONFIRMED) | ((live.state == LOST) if include_lost else False)
        idx = np.flatnonzero(want)
        idx = idx[np.argsort(live.track_id[idx])]
        return [self._info(live, int(i), STATE_NAMES[int(live.state[i])]) for i in idx]

    @property
    def tracks(self) -> list[TrackInfo]:
        """Same as ``active_tracks()``."""
        return self.active_tracks()

    def gallery_tracks(self) -> list[TrackInfo]:
        g = self._gallery
        return [self._info(g, i, "dormant") for i in range(len(g))]

    def pop_events(self) -> list[TrackEvent]:
        """Events since the last call, oldest first."""
        out, self._events = self._events, []
        return out

    def removed_tracks_since_last_call(self) -> list[TrackInfo]:
        out, self._removed = self._removed, []
        return out

    # ------------------------------------------------------------------ internals
    def _advance_clock(self, ts: float) -> float:
        if not np.isfinite(ts):
            raise ValueError(f"FlockTracker.update: dets.timestamp must be finite, got {ts}")
        if self._now is None or self._last_raw_ts is None:
            self._prev_now = ts
            self._now = ts
        else:
            self._prev_now = self._now
            if ts > self._last_raw_ts:
                self._now += ts - self._last_raw_ts
            elif ts == self._last_raw_ts:
                self._now += self.config.frame_interval_s
            else:
                raise ValueError(
                    f"FlockTracker.update: dets.timestamp went backwards ({ts} < {self._last_raw_ts}); "
                    "call reset() before a new stream"
                )
        self._last_raw_ts = ts
        return self._now

    def _det_embeddings(self, dets: Detections) -> tuple[F32, npt.NDArray[np.bool_]]:
        n = len(dets)
        if dets.embedding is None or dets.embedding.shape[1] == 0:
            return np.zeros((n, self._dim), np.float32), np.zeros(n, bool)
        d = int(dets.embedding.shape[1])
        if self._dim == 0:
            self._dim = d
            self._live.widen(d)
            self._gallery.widen(d)
        elif d != self._dim:
            raise ValueError(f"FlockTracker: embedding dimension changed from {self._dim} to {d}")
        return l2_normalize(dets.embedding), embedding_mask(dets.embedding)

    def _track_xyxy(self, rows: I64) -> F32:
        return cxcywh_to_xyxy(self._live.mean[rows, :4])

    def _associate(
        self,
        rows: I64,
        cols: I64,
        det_cxcywh: F64,
        det_emb: F32,
        det_has_emb: npt.NDArray[np.bool_],
        det_xyxy: F32,
        threshold: float,
        *,
        fused: bool,
    ) -> tuple[I64, I64, I64]:
        c = self.config
        if rows.size == 0 or cols.size == 0:
            return linear_assignment(np.zeros((rows.size, cols.size)), threshold)
        live = self._live
        iou_d = iou_distance(self._track_xyxy(rows), det_xyxy[cols])
        if c.fuse_score and fused:
            # An unsure box must overlap more to be as good a match (ByteTrack): fewer tracks hop onto
            # partial or merged boxes, at the price of more misses.
            iou_d = 1.0 - (1.0 - iou_d) * self._conf_now[cols][None, :]
        gate = self.kf.gating_distance(live.mean[rows], live.cov[rows], det_cxcywh[cols]) <= c.gate_chi2
        if self._dim:
            t_emb = live.emb[rows]
            app_d, avail = normalized_appearance_distance(
                t_emb, det_emb[cols], _has(t_emb), det_has_emb[cols], where=gate
            )
        else:
            app_d, avail = np.ones_like(iou_d), np.zeros(iou_d.shape, bool)
        # Not fused (low-confidence boxes): IoU decides, appearance can only veto a clear mismatch
        # (a half-hidden bird next to a neighbour's lost track must not take that track).
        cost = fuse_motion_appearance(
            iou_d,
            app_d,
            avail,
            motion_weight=c.motion_weight if fused else 1.0,
            min_iou=c.min_iou if fused else 1.0 - threshold,
            app_reject=c.app_reject,
            app_rescue=c.app_rescue if fused else 0.0,
            gate_ok=gate,
        )
        if c.assignment == "greedy":
            return greedy_assignment(cost, threshold)
        return linear_assignment(cost, threshold, cost_limit=not self._sparse)

    def _unoccluded(self, xyxy: F32) -> npt.NDArray[np.bool_]:
        n = xyxy.shape[0]
        if n < 2:
            return np.ones(n, bool)
        ioa = box_ioa_batch(xyxy, xyxy)
        np.fill_diagonal(ioa, 0.0)
        return np.asarray(ioa.max(axis=1) < self.config.occlusion_ioa)

    def _ema(self, rows: I64, emb: F32) -> None:
        if rows.size == 0:
            return
        live = self._live
        old = live.emb[rows]
        has_old = _has(old)
        a = self.config.ema_alpha
        mixed = np.where(has_old[:, None], a * old + (1 - a) * emb, emb)
        live.emb[rows] = l2_normalize(mixed)

    def _stage(
        self,
        pool: I64,
        cols: I64,
        ctx: tuple[F64, F32, npt.NDArray[np.bool_], F32],
        threshold: float,
        det_used: npt.NDArray[np.bool_],
        *,
        fused: bool,
    ) -> None:
        """Match live rows ``pool`` to boxes ``cols``; records matches in ``det_idx`` and ``det_used``."""
        m, _, _ = self._associate(pool, cols, *ctx, threshold, fused=fused)
        self._live.det_idx[pool[m[:, 0]]] = cols[m[:, 1]]
        det_used[cols[m[:, 1]]] = True

    def _apply_matches(
        self,
        dets: Detections,
        det_cxcywh: F64,
        det_emb: F32,
        det_has_emb: npt.NDArray[np.bool_],
        from_high: npt.NDArray[np.bool_],
        now: float,
    ) -> None:
        live = self._live
        t_idx = np.flatnonzero(live.matched)
        if t_idx.size == 0:
            return
        d_idx = live.det_idx[t_idx]
        live.mean[t_idx], live.cov[t_idx] = self.kf.update(
            live.mean[t_idx], live.cov[t_idx], det_cxcywh[d_idx]
        )
        live.hits[t_idx] += 1
        live.last_seen[t_idx] = now
        live.det_xyxy[t_idx] = dets.xyxy[d_idx]
        live.conf[t_idx] = dets.confidence[d_idx]
        live.class_id[t_idx] = dets.class_id[d_idx]
        recovered = t_idx[live.state[t_idx] == LOST]
        for i in recovered:
            self._events.append(TrackEvent("recovered", int(live.track_id[i]), now))
        live.state[recovered] = CONFIRMED
        if self._dim:
            use = det_has_emb[d_idx] & from_high[d_idx] & self._clear[d_idx]
            self._ema(t_idx[use], det_emb[d_idx[use]])

    def _spawn(
        self,
        new: I64,
        dets: Detections,
        det_cxcywh: F64,
        det_emb: F32,
        det_has_emb: npt.NDArray[np.bool_],
        now: float,
    ) -> None:
        k = new.size
        mean, cov = self.kf.initiate(det_cxcywh[new])
        emb = det_emb[new].copy()
        if emb.shape[1]:
            emb[~(det_has_emb[new] & self._clear[new])] = 0.0
        table = _Table(
            track_id=np.full(k, -1, np.int64),
            state=np.full(k, TENTATIVE, np.int8),
            hits=np.ones(k, np.int64),
            first_seen=np.full(k, now),
            last_seen=np.full(k, now),
            born=np.full(k, now),
            reid_pending=np.zeros(k, bool),
            mean=mean,
            cov=cov,
            emb=emb.reshape(k, self._dim),
            det_xyxy=dets.xyxy[new].copy(),
            conf=dets.confidence[new].copy(),
            class_id=dets.class_id[new].copy(),
            det_idx=new.astype(np.int64),
        )
        self._live = _Table.concat(self._live, table)

    def _confirm(self, rows: I64, now: float) -> None:
        if rows.size == 0:
            return
        live = self._live
        live.state[rows] = CONFIRMED
        live.born[rows] = now
        has_emb = _has(live.emb[rows])
        reid = self._match_gallery(rows[has_emb], now)
        for i, embedded in zip(rows.tolist(), has_emb.tolist(), strict=True):
            if i in reid:
                live.track_id[i] = reid[i]
                self._events.append(TrackEvent("reidentified", reid[i], now))
            else:
                live.track_id[i] = self._next_id
                self._next_id += 1
                live.reid_pending[i] = not embedded
                self._events.append(TrackEvent("confirmed", int(live.track_id[i]), now))
        self._drop_taken()

    def _retry_reid(self, now: float) -> None:
        """Young tracks confirmed without an embedding get one gallery check once they have one."""
        live = self._live
        if not self._dim or not live.reid_pending.any():
            return
        live.reid_pending &= (now - live.born) <= self.config.reid_window_s
        rows = np.flatnonzero(live.reid_pending & _has(live.emb) & (live.state == CONFIRMED))
        if rows.size == 0:
            return
        live.reid_pending[rows] = False
        reid = self._match_gallery(rows, now)
        for i, old_id in reid.items():
            new_id = int(live.track_id[i])
            self._events.append(TrackEvent("reidentified", old_id, now, previous_id=new_id))
            self._finish(live, i, now)  # the fresh id is retired: it will never be output again
            live.track_id[i] = old_id
        self._drop_taken()

    def _match_gallery(self, rows: I64, now: float) -> dict[int, int]:
        """Row of ``self._live`` -> old track id for rows whose appearance matches a lost/dormant track."""
        c = self.config
        live, gal = self._live, self._gallery
        if rows.size == 0:
            return {}
        lost = np.flatnonzero((live.state == LOST) & ~live.matched)
        cand_emb = np.concatenate([live.emb[lost], gal.emb])
        cand_id = np.concatenate([live.track_id[lost], gal.track_id])
        ok = _has(cand_emb)
        cand_emb, cand_id = cand_emb[ok], cand_id[ok]
        if cand_id.size == 0:
            return {}
        q = live.emb[rows]
        sim = q @ cand_emb.T  # both L2-normalised
        # Confirmed tracks other than the queries compete for the "second best": a look-alike that is
        # in view right now makes the match ambiguous.
        others = np.flatnonzero((live.state == CONFIRMED) & (live.track_id >= 0))
        others = others[~np.isin(others, rows)]
        others = others[_has(live.emb[others])]
        sorted_sim = np.sort(sim, axis=1)[:, ::-1]
        second = sorted_sim[:, 1] if sim.shape[1] > 1 else np.full(rows.size, -1.0)
        if others.size:
            second = np.maximum(second, (q @ live.emb[others].T).max(axis=1))
        best = sorted_sim[:, 0]
        eligible = (best >= c.reid_min_sim) & (best - second >= c.reid_margin)
        cost = np.where(sim >= c.reid_min_sim, 1.0 - sim, 1e6)
        cost[~eligible] = 1e6
        m, _, _ = linear_assignment(cost, 1.0 - c.reid_min_sim, cost_limit=not self._sparse)
        # Accept only a row's own best candidate (the margin was checked against it).
        out: dict[int, int] = {}
        for r, col in m:
            if sim[r, col] >= best[r] - 1e-6:
                out[int(rows[r])] = int(cand_id[col])
        return out

    def _drop_taken(self) -> None:
        """Fold lost/dormant records whose id a re-identified track now carries into that track.

        The track keeps the old record's history (first_seen, hits), so ``TrackInfo.age_s`` of a
        re-identified bird counts from when it was first seen.
        """
        live = self._live
        rows = np.flatnonzero((live.state == CONFIRMED) & (live.track_id >= 0))
        row_of = {int(live.track_id[r]): int(r) for r in rows}

        def fold(table: _Table, stale: npt.NDArray[np.bool_]) -> None:
            for j in np.flatnonzero(stale).tolist():
                r = row_of[int(table.track_id[j])]
                live.first_seen[r] = min(live.first_seen[r], table.first_seen[j])
                live.hits[r] += table.hits[j]

        active = np.fromiter(row_of, np.int64, len(row_of))
        g = self._gallery
        stale_gallery = np.isin(g.track_id, active) if len(g) else np.zeros(0, bool)
        stale_live = (live.state == LOST) & np.isin(live.track_id, active)
        fold(g, stale_gallery)
        fold(live, stale_live)
        if stale_gallery.any():
            self._gallery = g.take(~stale_gallery)
        if stale_live.any():
            self._live = live.take(~stale_live)

    def _age_out(self, now: float) -> None:
        c = self.config
        live = self._live
        expired = (live.state == LOST) & (now - live.last_seen > c.lost_buffer_s)
        if expired.any():
            old = live.take(expired)
            self._live = live.take(~expired)
            has_emb = _has(old.emb)
            to_gallery = has_emb & (c.gallery_s > 0) & (c.max_gallery > 0)
            for i in range(len(old)):
                tid = int(old.track_id[i])
                if to_gallery[i]:
                    self._events.append(TrackEvent("dormant", tid, now))
                else:
                    self._finish(old, i, now)
            moved = old.take(to_gallery)
            moved.state[:] = DORMANT
            self._gallery = _Table.concat(self._gallery, moved)
        g = self._gallery
        if len(g):
            drop = now - g.last_seen > c.gallery_s
            extra = int((~drop).sum()) - c.max_gallery
            if extra > 0:
                # Oldest first (by last_seen, then id) so the outcome is deterministic.
                order = np.lexsort((g.track_id, g.last_seen))
                drop[order[~drop[order]][:extra]] = True
            if drop.any():
                for i in np.flatnonzero(drop).tolist():
                    self._finish(g, i, now)
                self._gallery = g.take(~drop)

    def _finish(self, table: _Table, i: int, now: float) -> None:
        tid = int(table.track_id[i])
        self._events.append(TrackEvent("removed", tid, now))
        self._removed.append(self._info(table, i, "removed"))

    def _info(self, table: _Table, i: int, state: str) -> TrackInfo:
        now = self._now if self._now is not None else 0.0
        emb = table.emb[i].copy() if table.emb.shape[1] and np.any(table.emb[i]) else None
        return TrackInfo(
            track_id=int(table.track_id[i]),
            state=state,
            hits=int(table.hits[i]),
            first_seen=float(table.first_seen[i]),
            last_seen=float(table.last_seen[i]),
            age_s=float(now - table.first_seen[i]),
            time_since_update_s=float(now - table.last_seen[i]),
            xyxy=cxcywh_to_xyxy(table.mean[i : i + 1, :4])[0],
            last_det_xyxy=table.det_xyxy[i].copy(),
            confidence=float(table.conf[i]),
            class_id=int(table.class_id[i]),
            embedding=emb,
        )

    def _output(self, dets: Detections) -> Detections:
        """Rows of ``dets`` matched to confirmed tracks this frame, in input order, with track_id set."""
        live = self._live
        rows = np.flatnonzero((live.state == CONFIRMED) & live.matched)
        rows = rows[np.argsort(live.det_idx[rows], kind="stable")]
        out = dets[live.det_idx[rows]]
        out.track_id = live.track_id[rows].astype(np.int64)
        if self.config.output_boxes == "kalman" and rows.size:
            out.xyxy = cxcywh_to_xyxy(live.mean[rows, :4])
        return out
