"""Headcount: the instantaneous count of each frame and the verified headcount of a window.

Verified headcount (value) = the number of distinct registered bird ids seen in the window, each in at
least `min_sightings` frames -- but never less than what a single frame proves (the `floor_percentile`
of per-frame counts), which matters when look-alikes stay without an id. Because it counts ids, not
boxes, a bird that leaves and re-enters (and is
re-identified) or that two cameras see (same registry, same id) counts once.

Look-alike ids: twins can end up with three ids for two birds (each left and came back while the other
was away, and elimination enrolled a new id). Ids whose prototypes look alike (`lookalike_sim`, by
default the registry's new_threshold) and that were never in one frame of one camera together may be
one bird; each small look-alike group (<= `max_lookalike_group` ids; a uniform flock is one huge group
and is left alone) counts as the fewest birds consistent with which ids were seen together (graph
colouring of the "seen together" graph, exact for small groups).

The uncertainty band [low, high] is estimated from what the window itself shows, not from a fixed
percentage:

- high adds birds that may be missing from `value`:
  * unresolved tracks: long-enough tracks (>= min_track_frames, or 2+ frames spanning >= min_track_s:
    footage seconds apart breaks a bird's path into tracks of a few frames) that never held a bird id with
    identity_confidence >= 0.5 (look-alikes that stayed unassigned or got an ambiguous id, which may be
    another bird's), divided by the window's fragmentation rate (tracks that held an id, sure or
    guessed, per id seen), because a bird that fragments into f tracks produces f unresolved tracks,
    not f birds (footage filmed in short bursts starts a new track per bird and burst);
  * birds never detected in the whole window: per-frame detection coverage p = median instantaneous
    count / value; with n_looks independent looks (window duration / look_interval_s, capped at the
    frame count) a bird is never seen with probability q = (1-p)^n_looks, expected missed = value*q/(1-q),
    capped at `max_missed_fraction` x value: when p is near 0 (the median frame shows no bird: a
    camera looking at an empty corner, a dark hour, a single frame) q -> 1 and the formula explodes
    (an early run reported high = 1,000,008 from the old 1e-6 guard); a coverage that low says the view
    is poor, not that a million birds hide, so
    high <= value + unresolved tracks + ceil(max_missed_fraction x value) (up to the floors below);
  * and high is never below the largest instantaneous count of the window.
- low removes birds that may be double counted: ids enrolled inside the window whose enrolment was
  ambiguous (enrolled by elimination, or nearest other bird closer than `duplicate_sim`), ids
  whose sightings in the window span less than `min_span_s` (brief spurious tracks), and ids held in
  the window only on ambiguous matches (identity_confidence < 0.5: a guess among look-alikes, so the
  bird seen may be one already counted under its own id).

Several cameras: `combine_headcounts` unions the bird-id sets (a bird seen by two cameras is one bird)
and adds the uncertainty terms; instantaneous_max is the largest single-camera instantaneous count
(a lower bound of the simultaneous total when camera views overlap).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.detections import Detections
from vision.identity.config import SURE_IDENTITY


class CountingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_sightings: int = Field(default=3, ge=1, le=100_000, description="frames a bird id must be seen to count")
    min_track_frames: int = Field(
        default=10, ge=1, le=100_000, description="unresolved tracks shorter than this are noise ..."
    )
    min_track_s: float = Field(
        default=2.0,
        ge=0.0,
        le=86_400.0,
        description="... unless they span at least this long (stream s) over 2+ frames: in footage seconds "
        "apart the tracker breaks a bird's path into tracks of a few frames",
    )
    min_span_s: float = Field(default=2.0, ge=0.0, le=86_400.0, description="ids seen for less than this are suspect")
    duplicate_sim: float = Field(
        default=0.6, ge=-1.0, le=1.0, description="enrolment this close to another bird is suspect"
    )
    look_interval_s: float = Field(
        default=10.0, gt=0.0, le=86_400.0, description="decorrelation time of detection misses"
    )
    visit_gap_s: float = Field(
        default=5.0, gt=0.0, le=86_400.0, description="sightings closer than this merge in one visit"
    )
    retention_s: float = Field(default=2 * 86_400.0, gt=0.0, le=365 * 86_400.0, description="history kept in memory")
    lookalike_sim: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="prototypes this similar are look-alikes (None: the registry's new_threshold)",
    )
    max_lookalike_group: int = Field(
        default=6, ge=1, le=64, description="larger look-alike groups (a uniform flock) are never merged"
    )
    max_missed_fraction: float = Field(
        default=0.5, ge=0.0, le=10.0, description="birds never detected add at most this x value to high"
    )
    floor_percentile: float = Field(
        default=95.0, ge=0.0, le=100.0, description="value >= this percentile of per-frame counts (0: off)"
    )
    count_min_confidence: float = Field(default=0.0, ge=0.0, le=1.0, description="instantaneous count: box score floor")


@dataclass
class HeadcountEstimate:
    """Headcount of one window (see module docstring for how low/high are estimated)."""

    value: int
    low: int
    high: int
    instantaneous_max: int = 0
    stale: bool = False
    bird_ids: frozenset[str] = frozenset()
    unresolved_tracks: int = 0
    fragmentation: float = 1.0
    expected_missed: float = 0.0
    suspect_ids: frozenset[str] = frozenset()
    frames: int = 0
    instantaneous_median: float = 0.0
    floor: int = 0  # the count one frame proves (see CountingConfig.floor_percentile)
    lookalike_groups: tuple[frozenset[str], ...] = ()
    covisible: frozenset[tuple[str, str]] = frozenset()
    max_missed_fraction: float = 0.5  # the cap on expected_missed (CountingConfig), for combine_headcounts
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "instantaneous_max": self.instantaneous_max,
            "instantaneous_median": self.instantaneous_median,
            "stale": self.stale,
            "floor": self.floor,
            "frames": self.frames,
            "unresolved_tracks": self.unresolved_tracks,
            "fragmentation": self.fragmentation,
            "expected_missed": self.expected_missed,
            "suspect_ids": len(self.suspect_ids),
        }


class _BirdLike(Protocol):
    @property
    def first_seen(self) -> float: ...

    @property
    def enrol_nearest_sim(self) -> float: ...

    @property
    def enrolled_by_elimination(self) -> bool: ...


@dataclass
class _Visit:
    start: float
    end: float
    frames: int
    confident: bool = False  # held its id with identity_confidence >= 0.5 in at least one frame


@dataclass
class _TrackSpan:
    first: float
    last: float
    frames: int = 0
    identified: bool = False
    held_id: bool = False  # held some bird id, sure or guessed


def instantaneous_count(dets: Detections, min_confidence: float = 0.0) -> int:
    """Birds in one frame: tracked boxes (track_id >= 0) when a tracker ran, else all boxes, above a score."""
    keep = dets.confidence >= min_confidence
    if dets.track_id is not None and np.any(dets.track_id >= 0):
        keep &= dets.track_id >= 0
    return int(np.count_nonzero(keep))


class HeadcountCounter:
    """Per-camera memory of sightings, for instantaneous counts and windowed verified headcounts."""

    def __init__(self, config: CountingConfig | None = None, *, camera_id: str = "cam0") -> None:
        self.config = config or CountingConfig()
        self.camera_id = camera_id
        self._frames_since_prune = 0
        self._covis: dict[tuple[str, str], list[float]] = {}
        self._frame_counts: deque[tuple[float, int, int]] = deque()  # (ts, max count in its second, frames)
        self._visits: dict[str, list[_Visit]] = {}
        self._tracks: dict[int, _TrackSpan] = {}
        self._last_ts = -math.inf

    def observe(self, dets: Detections, lookalikes: Mapping[str, frozenset[str]] | None = None) -> int:
        """Record one processed frame (after the registry); returns its instantaneous count.

        lookalikes (bird id -> ids that look like it, from the registry): when two look-alike ids are in
        this frame together, they are provably two birds; that is recorded for the window estimate."""
        cfg = self.config
        ts = float(dets.timestamp)
        count = instantaneous_count(dets, cfg.count_min_confidence)
        # One entry per second of stream time (its largest count) keeps days of history small.
        if self._frame_counts and int(self._frame_counts[-1][0]) == int(ts):
            last_ts, last_count, last_n = self._frame_counts[-1]
            self._frame_counts[-1] = (last_ts, max(last_count, count), last_n + 1)
        else:
            self._frame_counts.append((ts, count, 1))
        assert dets.track_id is not None
        if lookalikes and dets.bird_id is not None:
            present = {str(b) for b in dets.bird_id if b}
            for a in present:
                for b in lookalikes.get(a, ()):
                    if a < b and b in present:
                        times = self._covis.setdefault((a, b), [])
                        if not times or ts - times[-1] >= 1.0:  # one record per second is plenty
                            times.append(ts)
        for i in range(len(dets)):
            tid = int(dets.track_id[i])
            bid = str(dets.bird_id[i]) if dets.bird_id is not None else ""
            # Sure = held with confidence >= 0.5; an id given to a look-alike on an ambiguous match
            # (confidence < 0.5) may belong to another bird.
            sure = dets.identity_confidence is None or float(dets.identity_confidence[i]) >= SURE_IDENTITY
            if tid >= 0:
                span = self._tracks.get(tid)
                if span is None:
                    span = _TrackSpan(first=ts, last=ts)
                    self._tracks[tid] = span
                span.last = ts
                span.frames += 1
                span.identified |= bool(bid) and sure
                span.held_id |= bool(bid)
            if bid:
                visits = self._visits.setdefault(bid, [])
                if visits and ts - visits[-1].end <= cfg.visit_gap_s and ts >= visits[-1].end:
                    visits[-1].end = ts
                    visits[-1].frames += 1
                    visits[-1].confident |= sure
                else:
                    visits.append(_Visit(ts, ts, 1, sure))
        self._last_ts = max(self._last_ts, ts)
        self._prune(ts)
        return count

    def _prune(self, now: float) -> None:
        cutoff = now - self.config.retention_s
        while self._frame_counts and self._frame_counts[0][0] < cutoff:
            self._frame_counts.popleft()
        self._frames_since_prune += 1
        if self._frames_since_prune >= 1000:
            self._frames_since_prune = 0
            for bid in list(self._visits):
                v = [x for x in self._visits[bid] if x.end >= cutoff]
                if v:
                    self._visits[bid] = v
                else:
                    del self._visits[bid]
            # Track spans only feed the band of recent windows: keep hours, not days (fragmenting
            # trackers start thousands of tracks an hour).
            span_cutoff = max(cutoff, now - 6 * 3600.0)
            for tid in [t for t, s in self._tracks.items() if s.last < span_cutoff]:
                del self._tracks[tid]
            for pair in list(self._covis):
                kept = [t for t in self._covis[pair] if t >= cutoff]
                if kept:
                    self._covis[pair] = kept
                else:
                    del self._covis[pair]

    @property
    def ids_seen(self) -> int:
        """Distinct bird ids in memory (the running verified count of the whole retained history)."""
        return len(self._visits)

    def sightings(self, start_ts: float, end_ts: float) -> dict[str, tuple[int, float, float]]:
        """bird_id -> (frames seen in window, first, last) — frames prorated for visits crossing the edges."""
        return {b: s[:3] for b, s in self._window_sightings(start_ts, end_ts).items()}

    def _window_sightings(self, start_ts: float, end_ts: float) -> dict[str, tuple[int, float, float, bool]]:
        """sightings(), plus whether the id was held with identity_confidence >= 0.5 in the window."""
        out: dict[str, tuple[int, float, float, bool]] = {}
        for bid, visits in self._visits.items():
            frames, first, last, sure = 0.0, math.inf, -math.inf, False
            for v in visits:
                if v.end < start_ts or v.start > end_ts:
                    continue
                lo, hi = max(v.start, start_ts), min(v.end, end_ts)
                dur = v.end - v.start
                frames += v.frames if dur <= 0 else v.frames * max(0.0, hi - lo) / dur
                frames = max(frames, 1.0)
                first, last = min(first, lo), max(last, hi)
                sure |= v.confident
            if frames > 0:
                out[bid] = (round(frames), first, last, sure)
        return out

    def _long_enough(self, span: _TrackSpan) -> bool:
        """A track long enough to be a bird, not a flicker of the detector: min_track_frames frames, or
        2+ frames over min_track_s (at a frame every 4 s a bird's path breaks into tracks of ~2 frames)."""
        cfg = self.config
        return span.frames >= cfg.min_track_frames or (span.frames >= 2 and span.last - span.first >= cfg.min_track_s)

    def estimate(
        self,
        start_ts: float,
        end_ts: float,
        birds: Mapping[str, _BirdLike] | None = None,
        lookalikes: Mapping[str, frozenset[str]] | None = None,
    ) -> HeadcountEstimate:
        """Verified headcount of [start_ts, end_ts]; `birds` (registry info by id) enables the
        duplicate test."""
        cfg = self.config
        rows = [(c, n) for t, c, n in self._frame_counts if start_ts <= t <= end_ts]
        counts = np.array([c for c, _ in rows], np.int64)
        n_frames = sum(n for _, n in rows)
        if counts.size == 0:
            return HeadcountEstimate(value=0, low=0, high=0, stale=True)
        seen = {b: s for b, s in self._window_sightings(start_ts, end_ts).items() if s[0] >= cfg.min_sightings}
        # One frame proves at least this many birds (a high percentile, robust to a few frames with a
        # duplicate box): look-alikes that stayed without an id cannot pull the count below it.
        floor = int(np.floor(np.percentile(counts, cfg.floor_percentile))) if cfg.floor_percentile > 0 else 0
        groups = _lookalike_groups(set(seen), lookalikes or {}, cfg.max_lookalike_group)
        covis = frozenset(pair for pair, times in self._covis.items() if any(start_ts <= t <= end_ts for t in times))
        distinct = _min_birds(set(seen), groups, covis)
        value = max(distinct, floor)
        tracks = [s for s in self._tracks.values() if s.last >= start_ts and s.first <= end_ts]
        with_id = sum(1 for s in tracks if s.held_id)
        unresolved = sum(1 for s in tracks if not s.identified and self._long_enough(s))
        frag = max(1.0, with_id / len(seen)) if seen else 1.0
        inst_max = int(counts.max())
        inst_med = float(np.median(counts))
        missed = 0.0
        if value:
            missed = _expected_missed(
                value,
                inst_med,
                min(float(counts.size), max(1.0, (end_ts - start_ts) / cfg.look_interval_s)),
                cfg.max_missed_fraction,
            )
        suspects: set[str] = set()
        for bid, (_, first, last, sure) in seen.items():
            # Brief ids, and ids only ever given as a guess among look-alikes (the bird seen may be one
            # already counted under its own id), may be double counts.
            if last - first < cfg.min_span_s or not sure:
                suspects.add(bid)
            info = birds.get(bid) if birds is not None else None
            if (
                info is not None
                and start_ts <= info.first_seen <= end_ts
                and (info.enrolled_by_elimination or info.enrol_nearest_sim >= cfg.duplicate_sim)
            ):
                suspects.add(bid)
        high = max(value + math.ceil(unresolved / frag + missed - 1e-9), inst_max, value)
        high = max(high, len(seen))
        low = max(0, min(value, max(distinct - len(suspects), floor)))
        return HeadcountEstimate(
            value=value,
            low=low,
            high=high,
            instantaneous_max=inst_max,
            stale=False,
            bird_ids=frozenset(seen),
            unresolved_tracks=unresolved,
            fragmentation=frag,
            expected_missed=missed,
            suspect_ids=frozenset(suspects),
            frames=int(n_frames),
            instantaneous_median=inst_med,
            floor=floor,
            lookalike_groups=tuple(groups),
            covisible=covis,
            max_missed_fraction=cfg.max_missed_fraction,
        )

    def reset_tracks(self) -> None:
        """The tracker was reset: track ids will be reused, so close the current spans."""
        self._tracks = {-(i + 1): s for i, s in enumerate(self._tracks.values())}


def _expected_missed(value: int, inst_median: float, looks: float, max_fraction: float) -> float:
    """Birds never detected in `looks` independent looks at per-look coverage inst_median / value,
    at most max_fraction x value (see the module docstring: the formula has a pole at coverage 0)."""
    cap = max_fraction * value
    if value <= 0 or looks <= 0:
        return 0.0
    p = min(1.0, max(0.0, inst_median / value))
    if p >= 1.0:
        return 0.0
    q = (1.0 - p) ** looks
    if q >= 1.0 or 1.0 - q <= 0.0:
        return cap
    return float(min(cap, value * q / (1.0 - q)))


def combine_headcounts(parts: Sequence[HeadcountEstimate]) -> HeadcountEstimate:
    """Farm headcount from per-camera estimates of the same window: a bird id seen by several cameras
    counts once; unresolved tracks and expected misses add up (each camera's own view)."""
    if not parts:
        raise ValueError("combine_headcounts: parts is empty")
    live = [p for p in parts if not p.stale]
    if not live:
        return HeadcountEstimate(value=0, low=0, high=0, stale=True)
    ids = frozenset().union(*[p.bird_ids for p in live])
    suspects = frozenset().union(*[p.suspect_ids for p in live]) & ids
    floor = max(p.floor for p in live)
    covis = frozenset().union(*[p.covisible for p in live])
    groups = _merge_groups([g for p in live for g in p.lookalike_groups])
    distinct = _min_birds(set(ids), groups, covis)
    value = max(distinct, floor)
    identified_tracks = sum(p.fragmentation * len(p.bird_ids) for p in live)
    frag = max(1.0, identified_tracks / len(ids)) if ids else 1.0
    unresolved = sum(p.unresolved_tracks for p in live)
    # Each camera's term is already bounded; the farm's is bounded the same way against the farm value.
    cap = max(p.max_missed_fraction for p in live)
    missed = min(sum(p.expected_missed for p in live), cap * value)
    inst_max = max(p.instantaneous_max for p in live)
    high = max(value + math.ceil(unresolved / frag + missed - 1e-9), inst_max, value, len(ids))
    return HeadcountEstimate(
        value=value,
        low=max(0, min(value, max(distinct - len(suspects), floor))),
        high=high,
        instantaneous_max=inst_max,
        stale=False,
        bird_ids=ids,
        unresolved_tracks=unresolved,
        fragmentation=frag,
        expected_missed=missed,
        suspect_ids=suspects,
        frames=sum(p.frames for p in live),
        max_missed_fraction=cap,
        instantaneous_median=max(p.instantaneous_median for p in live),
        floor=floor,
        lookalike_groups=tuple(groups),
        covisible=covis,
    )


def _lookalike_groups(ids: set[str], lookalikes: Mapping[str, frozenset[str]], max_group: int) -> list[frozenset[str]]:
    """Connected components (size 2..max_group) of the look-alike relation among ids."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a in ids:
        for b in lookalikes.get(a, ()):
            if b in parent:
                parent[find(a)] = find(b)
    comps: dict[str, set[str]] = {}
    for i in ids:
        comps.setdefault(find(i), set()).add(i)
    return [frozenset(c) for c in comps.values() if 2 <= len(c) <= max_group]


def _merge_groups(groups: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    merged: list[set[str]] = []
    for g in groups:
        hits = [m for m in merged if m & g]
        new = set(g).union(*hits) if hits else set(g)
        merged = [m for m in merged if not (m & g)] + [new]
    return [frozenset(m) for m in merged]


def _chromatic(nodes: list[str], edges: set[tuple[str, str]]) -> int:
    """Fewest birds that explain a group of look-alike ids: ids seen together are different birds (an
    edge); any others may be one bird seen at different times. Exact (small groups only)."""
    n = len(nodes)
    adj = [[(min(a, b), max(a, b)) in edges for b in nodes] for a in nodes]

    def colourable(k: int) -> bool:
        colour = [-1] * n

        def place(i: int) -> bool:
            if i == n:
                return True
            for c in range(k):
                if all(not (adj[i][j] and colour[j] == c) for j in range(i)):
                    colour[i] = c
                    if place(i + 1):
                        return True
            colour[i] = -1
            return False

        return place(0)

    return next(k for k in range(1, n + 1) if colourable(k))


def _min_birds(ids: set[str], groups: Sequence[frozenset[str]], covis: frozenset[tuple[str, str]]) -> int:
    """Distinct birds among ids, merging look-alike ids that were never in one frame of one camera.

    Twins (near-identical birds) can end up with three ids for two birds when each leaves and returns
    while the other is away; ids that look alike and were never seen together are then counted as the
    fewest birds consistent with what was seen together."""
    total = len(ids)
    for g in groups:
        members = sorted(g & ids)
        if len(members) < 2:
            continue
        edges = {p for p in covis if p[0] in g and p[1] in g}
        total -= len(members) - _chromatic(members, edges)
    return total
