"""The farm's registry of known birds: open-set re-identification by embedding prototypes.

How an id is given (per camera, per confirmed track, only on frames where the track got a fresh embedding):

1. The track keeps a running mean of its embeddings (`track_alpha` EMA, re-normalised).
2. Its candidates are all registered birds, except (`exclusion`) birds confidently held by another track
   in the same frame of the same camera: a bird cannot be in two places of one image. This "identity by
   elimination" is what keeps look-alike birds apart when appearance alone cannot.
3. Score of a bird = max cosine similarity of the track mean to the bird's prototype and exemplars.
   - best >= match_threshold and best - runner_up >= margin (after match_min_frames embeddings): the
     track takes that bird's id.
   - best < new_threshold (or no candidate left) after enroll_min_frames embeddings: a new bird is
     enrolled with the next id (`bird-000123`).
   - anything else is ambiguous: the track stays unassigned and keeps trying on later embeddings
     (optionally `assign_ambiguous`: best id at identity_confidence < 0.5, prototype never updated).
4. Prototypes move slowly (`prototype_alpha` EMA) and only from confident, above-threshold embeddings;
   a few diverse exemplars cover pose changes.
5. One track holds at most one bird id; one bird id is held by at most one track per camera at a time
   (a new track claiming a bird takes it from the old, lost track). The same bird may be held by one
   track in each of several cameras: counting treats a bird id as one bird whatever the camera.
6. A track that holds a sure id is re-checked on every embedding: when its recent look falls
   `reverify_drop` below match_threshold for its bird (and another bird matches, or none does), it keeps
   the id only as a guess and decides afresh from that look (step 3); guesses are not re-checked. In
   footage with frames more than `relink_max_frame_gap_s` apart, where the tracker swaps birds often,
   such a track (sure or guess) loses its id instead.

What can and cannot be told apart: birds whose embeddings differ by more than `margin` (different
plumage, markings, leg bands, size) are re-identified after leaving and re-entering the view and across
cameras. Look-alikes (a uniform flock of one breed, same age) generally cannot be told apart by
appearance: the embedding similarity between two such birds is close to that of one bird with itself.
For them identity rests on track continuity and on elimination (the other look-alikes visible at the
same time); a look-alike that leaves and re-enters while its twins are also out of view stays
unassigned rather than receiving a guessed id, and the headcount band widens accordingly.
identity_confidence in [0, 1] reflects both the similarity and the margin over the runner-up:
about 0.5 exactly at the thresholds, 1.0 for a clear, far-above-threshold match.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vision.detections import Detections
from vision.geometry import box_area, inside_frame, pairwise_center_distance
from vision.identity.config import SURE_IDENTITY, IdentityConfig
from vision.identity.store import BirdRecord, load_registry, save_registry

_GUESS_MAX = 0.49  # identity_confidence of a guess stays below SURE_IDENTITY


def _body_lengths(from_xyxy: np.ndarray, to_xyxy: np.ndarray) -> np.ndarray:
    """(A, B) centre distances from each of A boxes to each of B boxes, in the A box's body lengths
    (sqrt of its area): how far a bird last seen in box a would have gone to stand in box b."""
    return pairwise_center_distance(from_xyxy, to_xyxy) / np.sqrt(np.maximum(box_area(from_xyxy), 1.0))[:, None]


def _normalise(v: np.ndarray) -> np.ndarray:
    n = math.sqrt(float(v @ v))
    return (v / n).astype(np.float32) if n > 1e-12 else v.astype(np.float32)


class _Gallery:
    """Prototypes (B, D) and exemplars (B, K, D) as preallocated matrices, updated in place, so
    scoring a query against every bird is two matrix products."""

    def __init__(self, dim: int, k: int) -> None:
        self.dim, self.k, self.n = dim, k, 0
        self.protos = np.zeros((16, dim), np.float32)
        self.exemplars = np.zeros((16, max(k, 1), dim), np.float32)
        self.valid = np.zeros((16, max(k, 1)), bool)

    def add(self, proto: np.ndarray, exemplars: np.ndarray) -> None:
        if self.n == self.protos.shape[0]:
            grow = self.protos.shape[0]
            self.protos = np.concatenate([self.protos, np.zeros_like(self.protos[:grow])])
            self.exemplars = np.concatenate([self.exemplars, np.zeros_like(self.exemplars[:grow])])
            self.valid = np.concatenate([self.valid, np.zeros_like(self.valid[:grow])])
        self.n += 1
        self.update(self.n - 1, proto, exemplars)

    def update(self, row: int, proto: np.ndarray, exemplars: np.ndarray) -> None:
        self.protos[row] = proto
        ex = exemplars[-self.k :] if self.k else exemplars[:0]
        self.exemplars[row] = 0.0
        self.valid[row] = False
        self.exemplars[row, : len(ex)] = ex
        self.valid[row, : len(ex)] = True

    def scores(self, queries: np.ndarray) -> np.ndarray:
        n = self.n
        if n == 0:
            return np.zeros((queries.shape[0], 0), np.float32)
        s = queries @ self.protos[:n].T
        if self.k:
            ex = (queries @ self.exemplars[:n].reshape(-1, self.dim).T).reshape(queries.shape[0], n, -1)
            ex = np.where(self.valid[None, :n], ex, -np.inf)
            s = np.maximum(s, ex.max(axis=2))
        return s.astype(np.float32)


@dataclass
class TrackIdentity:
    """Identity state of one live track of one camera."""

    camera_id: str
    track_id: int
    first_ts: float
    last_ts: float
    last_frame: int = 0
    frames: int = 0
    mean: np.ndarray | None = None
    recent: np.ndarray | None = None
    n_emb: int = 0
    n_enrol_emb: int = 0  # embeddings of whole-bird views (see IdentityConfig.enroll_min_rel_area)
    n_emb_since_assign: int = 0
    bird_id: str | None = None
    confidence: float = 0.0
    ambiguous: bool = False  # holds its id only from an ambiguous (look-alike) match
    best_sim: float = -1.0  # last best candidate similarity (diagnostics)
    last_emb_ts: float = -math.inf  # stream time of its last embedding
    challenged: bool = False  # another track looks like its bird: embed it on the next frame
    floor_xy: tuple[float, float] | None = None  # where it stands on the pen's plan (cm), at floor_ts
    floor_ts: float = -math.inf
    first_xyxy: tuple[float, float, float, float] | None = None  # its box when the track began
    start_gap_s: float = math.inf  # time since the camera's previous frame when the track began
    succeeds: str | None = None  # a named bird this unnamed track may continue (see _note_successors)


@dataclass(frozen=True)
class BirdInfo:
    """Read-only view of a registered bird for counting, health and reports."""

    bird_id: str
    first_seen: float
    last_seen: float
    observations: int
    enrol_nearest_sim: float
    enrolled_by_elimination: bool
    cameras: tuple[str, ...]


class IdentityRegistry:
    """Farm-wide, thread-safe registry of birds; persisted to `path` (a directory) when given.

    `embedder_sha` names the re-ID model the prototypes come from: a registry built with one model refuses
    embeddings of another (vectors of two models are not comparable).
    """

    def __init__(
        self,
        path: Path | str | None,
        farm_id: str,
        config: IdentityConfig | None = None,
        *,
        embedder_sha: str | None = None,
    ) -> None:
        if not farm_id:
            raise ValueError("IdentityRegistry: farm_id must be a non-empty string")
        self.config = config or IdentityConfig()
        self.path = Path(path) if path is not None else None
        self.farm_id = farm_id
        self.embedder_sha = embedder_sha
        self._lock = threading.RLock()
        self._birds: dict[str, BirdRecord] = {}
        self._order: list[str] = []
        self._dim = 0
        self._next_number = 1
        self._generation = 0
        self._tracks: dict[tuple[str, int], TrackIdentity] = {}
        # camera -> bird id -> box of the bird's last sighting by that camera (its time is the bird's
        # last_seen_by_camera), for relinks; pruned to the last few relink_s, so a relink looks at the
        # birds seen lately, not the whole farm.
        self._last_box: dict[str, dict[str, np.ndarray]] = {}
        self._pruned_at: dict[str, float] = {}
        self._camera_ts: dict[str, float] = {}  # camera -> stream time of its previous frame
        # camera -> bird id -> box of the birds its tracks held as its previous frame began (for relinks).
        self._named_boxes: dict[str, dict[str, np.ndarray]] = {}
        self._dirty = False
        self._last_save = time.monotonic()
        self._gallery: _Gallery | None = None  # matrices of prototypes/exemplars, rows in _order
        self._pos: dict[str, int] = {}
        self._lookalike_version = 0
        self._proto_updates = 0
        self._lookalike_cache: tuple[tuple[float, int], dict[str, frozenset[str]]] | None = None
        if self.path is not None:
            if self.path.exists() and not self.path.is_dir():
                raise ValueError(f"IdentityRegistry: path {self.path} exists and is not a directory")
            loaded = load_registry(self.path)
            if loaded is not None:
                if loaded.farm_id != farm_id:
                    raise ValueError(f"{self.path}: registry belongs to farm {loaded.farm_id!r}, not {farm_id!r}")
                if embedder_sha is not None and loaded.embedder not in (None, embedder_sha):
                    raise ValueError(
                        f"{self.path}: registry prototypes come from embedder {loaded.embedder}, "
                        f"refusing to mix with embedder {embedder_sha} (start a new registry for a new model)"
                    )
                self.embedder_sha = loaded.embedder or embedder_sha
                self._dim = loaded.dim
                self._next_number = loaded.next_number
                self._generation = loaded.generation
                for b in loaded.birds:
                    self._birds[b.bird_id] = b
                    self._pos[b.bird_id] = len(self._order)
                    self._order.append(b.bird_id)

    # ------------------------------------------------------------------ read-only views
    def __len__(self) -> int:
        with self._lock:
            return len(self._birds)

    def __contains__(self, bird_id: object) -> bool:
        with self._lock:
            return bird_id in self._birds

    @property
    def dim(self) -> int:
        return self._dim

    def bird_ids(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def bird(self, bird_id: str) -> BirdInfo:
        with self._lock:
            b = self._birds.get(bird_id)
            if b is None:
                raise KeyError(f"unknown bird id {bird_id!r}")
            return self._info(b)

    def birds(self) -> list[BirdInfo]:
        with self._lock:
            return [self._info(self._birds[i]) for i in self._order]

    @staticmethod
    def _info(b: BirdRecord) -> BirdInfo:
        return BirdInfo(
            bird_id=b.bird_id,
            first_seen=b.first_seen,
            last_seen=b.last_seen,
            observations=b.observations,
            enrol_nearest_sim=b.enrol_nearest_sim,
            enrolled_by_elimination=b.enrolled_by_elimination,
            cameras=tuple(sorted(b.cameras)),
        )

    def prototype(self, bird_id: str) -> np.ndarray:
        with self._lock:
            return self._birds[bird_id].prototype.copy()

    def track_state(self, camera_id: str, track_id: int) -> TrackIdentity | None:
        with self._lock:
            st = self._tracks.get((camera_id, int(track_id)))
            return None if st is None else replace(st)

    def needs_embedding(self, camera_id: str, track_id: int) -> bool:
        """True while a track has no bird id, or another track challenges its id (the pipeline then embeds
        it on the next frame)."""
        with self._lock:
            st = self._tracks.get((camera_id, int(track_id)))
            return st is None or st.bird_id is None or st.challenged

    def lookalikes(self, min_sim: float | None = None) -> dict[str, frozenset[str]]:
        """bird id -> ids whose prototypes are at least min_sim similar (default: new_threshold, below
        which appearance alone says "a different bird"). Cached; refreshed when birds are enrolled and
        every 256 prototype updates."""
        thr = self.config.new_threshold if min_sim is None else float(min_sim)
        with self._lock:
            key = (thr, self._lookalike_version)
            if self._lookalike_cache is not None and self._lookalike_cache[0] == key:
                return self._lookalike_cache[1]
            out: dict[str, frozenset[str]] = {}
            n = len(self._order)
            if n > 1:
                protos = self._gallery_index().protos[:n]
                sims = protos @ protos.T
                np.fill_diagonal(sims, -np.inf)
                for i, j in zip(*np.nonzero(sims >= thr), strict=True):
                    out.setdefault(self._order[int(i)], frozenset())
                    out[self._order[int(i)]] = out[self._order[int(i)]] | {self._order[int(j)]}
            self._lookalike_cache = (key, out)
            return out

    def unseen_since(self, cutoff_ts: float) -> list[str]:
        """Bird ids whose last sighting (any camera) is before cutoff_ts."""
        with self._lock:
            return [i for i in self._order if self._birds[i].last_seen < cutoff_ts]

    # ------------------------------------------------------------------ matching
    def _gallery_index(self) -> _Gallery:
        if self._gallery is None or self._gallery.dim != self._dim:
            g = _Gallery(self._dim, self.config.max_exemplars)
            for i in self._order:
                g.add(self._birds[i].prototype, self._birds[i].exemplars)
            self._gallery = g
        return self._gallery

    def _scores(self, queries: np.ndarray) -> np.ndarray:
        """(Q, B) similarity of each query to each bird: max over its prototype and exemplars."""
        return self._gallery_index().scores(queries)

    def _conf(self, best: float, second: float) -> float:
        """~0.5 at (match_threshold, margin), 1 for a clear match, toward 0 below the thresholds."""
        cfg = self.config
        c_sim = 0.5 + 0.5 * (best - cfg.match_threshold) / max(1e-6, 1.0 - cfg.match_threshold)
        margin = best - second
        c_margin = 0.5 + 0.5 * (margin - cfg.margin) / max(1e-6, cfg.margin) if cfg.margin > 0 else 1.0
        return float(np.clip(min(c_sim, c_margin), 0.0, 1.0))

    def _enrol(self, st: TrackIdentity, nearest: float, by_elimination: bool, ts: float) -> str:
        bird_id = f"{self.config.id_prefix}{self._next_number:0{self.config.id_digits}d}"
        self._next_number += 1
        assert st.mean is not None  # enrolment is only reached with n_emb >= 1
        rec = BirdRecord(
            bird_id=bird_id,
            prototype=st.mean.copy(),
            exemplars=st.mean.reshape(1, -1).copy() if self.config.max_exemplars else np.zeros((0, self._dim)),
            first_seen=ts,
            last_seen=ts,
            observations=0,
            enrol_nearest_sim=float(nearest),
            enrolled_by_elimination=by_elimination,
        )
        gallery = self._gallery_index()  # built from the birds before this one
        self._birds[bird_id] = rec
        self._pos[bird_id] = len(self._order)
        self._order.append(bird_id)
        gallery.add(rec.prototype, rec.exemplars)
        self._lookalike_version += 1
        self._dirty = True
        return bird_id

    def _update_prototype(self, bird_id: str, emb: np.ndarray) -> None:
        cfg = self.config
        rec = self._birds[bird_id]
        if cfg.prototype_alpha > 0:
            rec.prototype = _normalise((1.0 - cfg.prototype_alpha) * rec.prototype + cfg.prototype_alpha * emb)
        if cfg.max_exemplars:
            ex = rec.exemplars
            if ex.shape[0] == 0 or float(np.max(ex @ emb)) < cfg.exemplar_novelty:
                rec.exemplars = np.concatenate([ex, emb.reshape(1, -1)])[-cfg.max_exemplars :].astype(np.float32)
        self._gallery_index().update(self._pos[bird_id], rec.prototype, rec.exemplars)
        self._proto_updates += 1
        if self._proto_updates % 256 == 0:
            self._lookalike_version += 1
        self._dirty = True

    def _check_dim(self, d: int) -> None:
        if self._dim == 0:
            self._dim = d
        elif d != self._dim:
            raise ValueError(
                f"IdentityRegistry: embedding dim {d} does not match the registry's {self._dim} "
                f"(embedder {self.embedder_sha}); refusing to mix embedders"
            )

    def assign(self, dets: Detections, *, removed_track_ids: Iterable[int] = (),
               floor_xy: np.ndarray | None = None) -> Detections:
        """Fill `bird_id` ("" when unknown) and `identity_confidence` for every tracked box.

        Uses dets.camera_id, dets.timestamp, dets.frame_index, track_id and embedding (rows of zeros =
        not embedded this frame: the track keeps its previous decision). Boxes without a track get "".
        floor_xy (N, 2): where each box stands on the pen's plan (cm; NaN: unknown), from a camera with
        floor points: a track without a sure id then takes the id that another camera surely sees at
        that spot at the same moment (IdentityConfig.handoff_cm).
        """
        if floor_xy is not None and np.shape(floor_xy) != (len(dets), 2):
            raise ValueError(f"assign: floor_xy must have shape ({len(dets)}, 2), got {np.shape(floor_xy)}")
        with self._lock:
            cfg = self.config
            cam, ts = dets.camera_id, float(dets.timestamp)
            self.end_tracks(cam, removed_track_ids)
            gap = ts - self._camera_ts.get(cam, -math.inf)
            self._camera_ts[cam] = ts
            n = len(dets)
            assert dets.track_id is not None  # Detections.__post_init__ always sets it
            tids = dets.track_id
            emb = dets.embedding
            has_emb = dets.embedded
            if emb is not None and has_emb.any():
                self._check_dim(int(emb.shape[1]))
            whole = self._whole_views(dets) if has_emb.any() else np.zeros(n, bool)
            states: list[TrackIdentity | None] = []
            for i in range(n):
                tid = int(tids[i])
                if tid < 0:
                    states.append(None)
                    continue
                st = self._tracks.get((cam, tid))
                if st is None:
                    box = dets.xyxy[i]
                    st = TrackIdentity(camera_id=cam, track_id=tid, first_ts=ts, last_ts=ts,
                                       first_xyxy=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                                       start_gap_s=gap)
                    self._tracks[(cam, tid)] = st
                st.last_ts, st.last_frame = ts, int(dets.frame_index)
                st.frames += 1
                if floor_xy is not None and np.isfinite(floor_xy[i]).all():
                    st.floor_xy, st.floor_ts = (float(floor_xy[i][0]), float(floor_xy[i][1])), ts
                if has_emb[i]:
                    assert emb is not None
                    e = emb[i].astype(np.float32)
                    st.mean = (
                        e.copy()
                        if st.mean is None
                        else _normalise((1.0 - cfg.track_alpha) * st.mean + cfg.track_alpha * e)
                    )
                    st.recent = e.copy() if st.recent is None else _normalise(0.5 * st.recent + 0.5 * e)
                    st.n_emb += 1
                    st.n_enrol_emb += int(whole[i])
                    st.last_emb_ts = ts
                    st.challenged = False
                    st.n_emb_since_assign += 1
                states.append(st)
            self._note_successors(states, dets.xyxy, cam, gap)

            # Verify tracks that hold an id, with this frame's embedding (one matrix product for all).
            verify: list[int] = []
            for i, st in enumerate(states):
                if st is not None and st.bird_id is not None and st.bird_id not in self._birds:
                    st.bird_id = None
                if st is not None and st.bird_id is not None and has_emb[i]:
                    verify.append(i)
            if verify:
                assert emb is not None
                dense = gap <= cfg.relink_max_frame_gap_s
                recents = np.stack([states[i].recent for i in verify])  # type: ignore[union-attr,misc]
                nows = emb[verify].astype(np.float32)
                sims_all = self._scores(np.concatenate([recents, nows]))
                nv = len(verify)
                for j, i in enumerate(verify):
                    st = states[i]
                    assert st is not None and st.bird_id is not None
                    e = nows[j]
                    k = self._pos[st.bird_id]
                    own_recent, own_now = float(sims_all[j, k]), float(sims_all[nv + j, k])
                    row = sims_all[j].copy()
                    row[k] = -np.inf
                    best_other = float(row.max()) if row.size > 1 else -1.0
                    if (
                        not (dense and st.ambiguous)
                        and st.n_emb_since_assign >= 3
                        and own_recent < cfg.match_threshold - cfg.reverify_drop
                        and (best_other >= cfg.match_threshold or best_other < cfg.new_threshold)
                    ):
                        # Drifted away from its bird: a tracker identity switch, or the same bird in a pose
                        # or light the model knows badly. In dense footage the second is far more common
                        # with a weak model, and dropping the id made a new bird of most such tracks: the
                        # track keeps the id as a guess and decides afresh from this look (a clear match
                        # to another bird moves it there; another track's clear claim takes the id). In
                        # footage seconds apart the tracker swaps birds often: the id goes, so a bird's
                        # history (stillness at a spot, activity) is not written under another's name.
                        st.mean, st.n_emb = e.copy(), 1
                        st.n_enrol_emb = int(whole[i])
                        if dense:
                            st.ambiguous = True
                            st.confidence = min(st.confidence, _GUESS_MAX)
                            st.n_emb_since_assign = 0
                        else:
                            st.bird_id, st.ambiguous, st.confidence = None, False, 0.0
                            st.n_emb_since_assign = 1
                        continue
                    c_now = self._conf(own_recent, best_other)
                    st.confidence = 0.8 * st.confidence + 0.2 * c_now
                    if not st.ambiguous and own_now >= cfg.match_threshold:
                        self._update_prototype(st.bird_id, e)

            # Birds held by tracks of this camera seen within hold_s are not candidates for other tracks:
            # one bird cannot be two boxes of one image.
            held: dict[str, TrackIdentity] = {}
            for st in self._tracks.values():
                if st.camera_id == cam and st.bird_id is not None and st.last_ts >= ts - cfg.hold_s:
                    held[st.bird_id] = st
            if floor_xy is not None and cfg.handoff_cm > 0:
                self._handoff(states, held, cam, ts)
            pending = [
                i
                for i, st in enumerate(states)
                if st is not None and (st.bird_id is None or st.ambiguous) and has_emb[i] and st.mean is not None
            ]
            if pending:
                self._decide(pending, states, held, ts)

            bird_ids = np.full(n, "", dtype=object)
            conf = np.zeros(n, np.float32)
            last_boxes = self._last_box.setdefault(cam, {})
            if ts - self._pruned_at.get(cam, -math.inf) >= cfg.relink_s:
                self._pruned_at[cam] = ts
                # Kept 3 x relink_s: a track may decide a few seconds after it began.
                for b in [b for b in last_boxes if self._seen_by(cam, b) < ts - 3.0 * cfg.relink_s]:
                    del last_boxes[b]
            for i, st in enumerate(states):
                if st is None or st.bird_id is None:
                    continue
                bird_ids[i] = st.bird_id
                conf[i] = st.confidence
                rec = self._birds[st.bird_id]
                rec.last_seen = max(rec.last_seen, ts)
                rec.first_seen = min(rec.first_seen, ts)
                rec.observations += 1
                rec.cameras.add(cam)
                rec.last_seen_by_camera[cam] = ts
                last_boxes[st.bird_id] = dets.xyxy[i].astype(np.float64)
                self._dirty = True
            self._expire(cam, ts)
            self._maybe_autosave()
            return replace(dets, bird_id=bird_ids, identity_confidence=conf)

    def _handoff(self, states: list[TrackIdentity | None], held: dict[str, TrackIdentity], cam: str,
                 ts: float) -> None:
        """Tracks of this camera without a sure id take the id of the nearest track of another camera that
        stands within handoff_cm on the plan and was seen within handoff_s, when that track holds its id
        more surely (a sure id, or a guess among look-alikes with a higher confidence), this camera holds
        the id nowhere else, and the track's look does not rule the bird out (similarity to the bird >=
        new_threshold). Two cameras' views of one bird are one bird: without this the registry named the
        same bird differently in each camera about two times in three (the demo's two cameras, mixed
        flock, birds ~30 px), and every second name counted as another bird. A guess shared by both
        cameras is still a guess, but one guess, not two."""
        cfg = self.config
        peers = [t for t in self._tracks.values()
                 if t.camera_id != cam and t.bird_id is not None and t.floor_xy is not None
                 and abs(t.floor_ts - ts) <= cfg.handoff_s]
        if not peers:
            return
        peer_xy = np.array([t.floor_xy for t in peers], np.float64)
        for st in states:
            if st is None or st.floor_xy is None or st.floor_ts != ts:
                continue
            if st.bird_id is not None and not st.ambiguous and st.confidence >= SURE_IDENTITY:
                continue
            d = np.hypot(peer_xy[:, 0] - st.floor_xy[0], peer_xy[:, 1] - st.floor_xy[1])
            k = int(np.argmin(d))
            if d[k] > cfg.handoff_cm:
                continue
            peer = peers[k]
            bird_id = peer.bird_id
            assert bird_id is not None
            peer_unsure = peer.ambiguous or peer.confidence < SURE_IDENTITY
            mine = st.bird_id
            if bird_id == mine:
                if peer.confidence > st.confidence:  # the other camera's sure sighting keeps vouching for it
                    st.confidence, st.ambiguous = peer.confidence, peer_unsure
                continue
            if mine is not None and (peer.confidence, mine) <= (st.confidence, bird_id):
                continue  # this track's guess is at least as sure
            holder = held.get(bird_id)
            if (holder is not None and holder is not st) or bird_id not in self._birds:
                continue
            if st.mean is not None:
                row = self._scores(st.mean.reshape(1, -1))[0]
                sim = float(row[self._pos[bird_id]])
                row[self._pos[bird_id]] = -np.inf
                best_other = float(row.max()) if row.size > 1 else -1.0
                if sim < cfg.new_threshold or (best_other >= cfg.match_threshold and best_other - sim >= cfg.margin):
                    continue  # its looks rule the bird out, or clearly say it is another one
            self._claim(st, bird_id, held)
            st.confidence, st.ambiguous = peer.confidence, peer_unsure

    def _note_successors(self, states: list[TrackIdentity | None], xyxy: np.ndarray, cam: str, gap: float) -> None:
        """Remember which named bird each unnamed track may continue: a bird held as the camera's previous
        frame began whose box vanished right where this track stands now (the tracker lost the bird while
        a fresh track had already started on it, e.g. on the detector's second box on part of it)."""
        cfg = self.config
        named = {st.bird_id: xyxy[i] for i, st in enumerate(states) if st is not None and st.bird_id is not None}
        prev = self._named_boxes.get(cam, {})
        self._named_boxes[cam] = named
        if cfg.relink_s <= 0 or gap > cfg.relink_max_frame_gap_s:
            return
        unnamed = [i for i, st in enumerate(states) if st is not None and st.bird_id is None]
        gone = [(b, box) for b, box in prev.items() if b not in named]
        if not unnamed or not gone:
            return
        boxes = np.stack([box for _, box in gone])
        d = _body_lengths(boxes, xyxy[unnamed])
        for (bird_id, _), row in zip(gone, d, strict=True):
            k = int(np.argmin(row))
            if row[k] <= cfg.relink_body_lengths:
                states[unnamed[k]].succeeds = bird_id  # type: ignore[union-attr]

    def _whole_views(self, dets: Detections) -> np.ndarray:
        """Boxes that show a whole bird: not cut by the frame border and not much smaller than the
        frame's typical box. A new bird enrolled from a partial view (a head behind a feeder, a bird
        half out of the picture) is a ghost: its prototype matches nothing later, while the whole bird
        gets yet another id."""
        cfg = self.config
        ok = np.ones(len(dets), bool)
        if dets.frame_size_wh is not None and cfg.enroll_border_px > 0:
            ok &= inside_frame(dets.xyxy, dets.frame_size_wh, cfg.enroll_border_px)
        if cfg.enroll_min_rel_area > 0 and len(dets) >= 3:
            area = box_area(dets.xyxy)
            ok &= area >= cfg.enroll_min_rel_area * float(np.median(area))
        return ok

    def _decide(
        self,
        pending: list[int],
        states: list[TrackIdentity | None],
        held: dict[str, TrackIdentity],
        ts: float,
    ) -> None:
        cfg = self.config
        means = np.stack([states[i].mean for i in pending])  # type: ignore[union-attr,misc]
        sims = self._scores(means) if self._order else np.zeros((len(pending), 0), np.float32)
        pos = self._pos
        excluded = np.zeros(len(self._order), bool)
        if cfg.exclusion:
            for b in held:
                excluded[pos[b]] = True
        # Most certain tracks decide first, so a clear match claims its bird before an ambiguous one.
        best_all = sims.max(axis=1) if sims.shape[1] else np.full(len(pending), -1.0)
        for j in np.argsort(-best_all, kind="stable"):
            st = states[pending[int(j)]]
            assert st is not None
            mask = excluded.copy()
            if st.bird_id is not None:
                mask[pos[st.bird_id]] = False  # an ambiguous holder may keep or confirm its own bird
            row = np.where(mask, -np.inf, sims[j]) if sims.shape[1] else sims[j]
            if row.size and np.isfinite(row).any():
                order = np.argsort(-row)
                k1 = int(order[0])
                best = float(row[k1])
                second = float(row[order[1]]) if row.size > 1 and np.isfinite(row[order[1]]) else -1.0
            else:
                k1, best, second = -1, -1.0, -1.0
            st.best_sim = best
            nearest_any = float(sims[j].max()) if sims.shape[1] else -1.0
            clear = best >= cfg.match_threshold and best - second >= cfg.margin
            if clear and st.n_emb >= cfg.match_min_frames:
                self._claim(st, self._order[k1], held)
                st.confidence = self._conf(best, second)
                st.ambiguous = False
                excluded[k1] = True
            elif st.bird_id is not None:
                # Ambiguous holders keep their id until a clear match (above) or another track's clear
                # claim takes it: flipping between look-alikes on every frame would help nobody.
                continue
            elif (
                cfg.assign_ambiguous
                and st.n_emb >= cfg.match_min_frames
                and (k_rel := self._relink_candidate(st, sims[j], excluded, ts)) >= 0
            ):
                # The track began where a free bird of this camera vanished moments before: the tracker
                # lost the bird and started over (occlusion at a feeder, missed detections, a part box that
                # outlived the whole one). A guess, so it never teaches the prototype, but a better one
                # than a new id or the most similar free bird anywhere in the pen.
                sim = float(sims[j, k_rel])
                self._claim(st, self._order[k_rel], held)
                st.confidence = min(_GUESS_MAX, 0.5 * self._conf(sim, second if k_rel == k1 else best))
                st.ambiguous = True
                excluded[k_rel] = True
            elif best < cfg.new_threshold and st.n_enrol_emb >= cfg.enroll_min_frames:
                # Looks like no candidate: a new bird. When look-alikes exist but are all held elsewhere
                # in this image, it is new by elimination (flagged: a possible duplicate for the band) --
                # unless it matches a held bird clearly better than that bird's holder does now: then the
                # tracker swapped two birds, and the id moves to this track instead.
                k_any = int(np.argmax(sims[j])) if sims.shape[1] else -1
                if nearest_any >= cfg.match_threshold and k_any >= 0:
                    holder = held.get(self._order[k_any])
                    if holder is not None and holder is not st and holder.recent is not None:
                        if holder.last_emb_ts < ts:
                            # The holder's look is from an older frame (assigned tracks are embedded
                            # sparsely): ask for a fresh embedding of it and decide on the next frame.
                            holder.challenged = True
                            continue
                        holder_sim = float(self._scores(holder.recent.reshape(1, -1))[0, k_any])
                        if nearest_any - holder_sim >= cfg.margin:
                            self._claim(st, self._order[k_any], held)
                            st.confidence = self._conf(nearest_any, holder_sim)
                            st.ambiguous = False
                            continue
                        if holder_sim < cfg.match_threshold:
                            continue  # the holder may be wrong too: wait for more evidence
                bird_id = self._enrol(st, nearest_any, by_elimination=nearest_any >= cfg.new_threshold, ts=ts)
                excluded = np.append(excluded, True)
                sims = np.concatenate([sims, means @ self._birds[bird_id].prototype.reshape(-1, 1)], axis=1)
                self._claim(st, bird_id, held)
                st.confidence = float(
                    np.clip(
                        0.5 + 0.5 * (cfg.new_threshold - nearest_any) / max(1e-6, 1.0 + cfg.new_threshold), 0.0, 1.0
                    )
                )
                st.ambiguous = False
            elif (
                cfg.assign_ambiguous and k1 >= 0 and best >= cfg.new_threshold and st.n_emb >= cfg.enroll_min_frames
            ):
                # Similar to some free candidates but none clearly: take the most similar free one at low
                # confidence. Counting stays right when look-alikes swap ids among themselves, because
                # only birds not visible in this camera are candidates.
                self._claim(st, self._order[k1], held)
                st.confidence = min(_GUESS_MAX, 0.5 * self._conf(best, second))
                st.ambiguous = True
                excluded[k1] = True
            # else: ambiguous, or new but seen only in partial views: stays unassigned and tries again on
            # its next embedding.

    def _relink_candidate(self, st: TrackIdentity, sims: np.ndarray, excluded: np.ndarray, ts: float) -> int:
        """Gallery row of the free bird this unnamed track most likely continues, -1 for none (see
        IdentityConfig.relink_s): the named bird that vanished where this track stood, or a bird
        last seen by this camera within relink_s before the track began and within relink_body_lengths
        of where it began; the most alike of these, if its looks do not rule it out."""
        cfg = self.config
        if cfg.relink_s <= 0 or st.first_xyxy is None:
            return -1
        cam = st.camera_id
        cands: list[int] = []
        if st.succeeds is not None and ts - self._seen_by(cam, st.succeeds) <= cfg.relink_s:  # -inf: not registered
            cands.append(self._pos[st.succeeds])
        recent = [(b, box) for b, box in self._last_box.get(cam, {}).items()
                  if b in self._pos and st.first_ts - cfg.relink_s <= self._seen_by(cam, b) < st.first_ts]
        if recent and st.start_gap_s <= cfg.relink_max_frame_gap_s:  # it began in dense footage
            boxes = np.stack([box for _, box in recent])
            near = _body_lengths(boxes, np.asarray([st.first_xyxy]))[:, 0] <= cfg.relink_body_lengths
            cands += [self._pos[b] for (b, _), ok in zip(recent, near, strict=True) if ok]
        best_k, best_sim = -1, cfg.relink_min_sim
        for k in cands:
            if k < excluded.size and not excluded[k] and k < sims.size and float(sims[k]) >= best_sim:
                best_k, best_sim = k, float(sims[k])
        return best_k

    def _seen_by(self, cam: str, bird_id: str) -> float:
        """Stream time of the camera's last sighting of the bird (-inf: never, or no longer registered)."""
        rec = self._birds.get(bird_id)
        return -math.inf if rec is None else rec.last_seen_by_camera.get(cam, -math.inf)

    def _claim(self, st: TrackIdentity, bird_id: str, held: dict[str, TrackIdentity]) -> None:
        """Give bird_id to st, taking it from any other track of the same camera (one holder per camera)."""
        for other in self._tracks.values():
            if other is not st and other.camera_id == st.camera_id and other.bird_id == bird_id:
                other.bird_id, other.ambiguous, other.confidence = None, False, 0.0
        st.bird_id = bird_id
        st.n_emb_since_assign = 0
        held[bird_id] = st

    def end_tracks(self, camera_id: str, track_ids: Iterable[int]) -> None:
        """Forget tracks the tracker removed (their bird ids become free in that camera)."""
        with self._lock:
            for tid in track_ids:
                self._tracks.pop((camera_id, int(tid)), None)

    def forget_camera(self, camera_id: str) -> None:
        """Drop all track state of a camera (stream reset); registered birds stay."""
        with self._lock:
            for key in [k for k in self._tracks if k[0] == camera_id]:
                del self._tracks[key]
            self._last_box.pop(camera_id, None)
            self._named_boxes.pop(camera_id, None)
            self._pruned_at.pop(camera_id, None)
            self._camera_ts.pop(camera_id, None)

    def _expire(self, camera_id: str, ts: float) -> None:
        ttl = self.config.track_ttl_s
        for key in [k for k, st in self._tracks.items() if k[0] == camera_id and st.last_ts < ts - ttl]:
            del self._tracks[key]

    # ------------------------------------------------------------------ persistence and snapshot
    def _maybe_autosave(self) -> None:
        every = self.config.save_every_s
        if self.path is not None and self._dirty and every > 0 and time.monotonic() - self._last_save >= every:
            self.save()

    def save(self) -> None:
        """Atomically write the registry to its directory (no-op without a path)."""
        with self._lock:
            if self.path is None:
                return
            self._generation += 1
            save_registry(
                self.path,
                farm_id=self.farm_id,
                embedder=self.embedder_sha,
                dim=self._dim,
                next_number=self._next_number,
                birds=[self._birds[i] for i in self._order],
                generation=self._generation,
            )
            self._dirty = False
            self._last_save = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """Fields for a `vision.wire.RegistrySnapshot`: taken_at, embedder, birds (float16 base64 prototypes).
        The caller adds the device/chain fields and signs it."""
        with self._lock:
            birds = []
            for i in self._order:
                b = self._birds[i]
                birds.append(
                    {
                        "bird_id": b.bird_id,
                        "prototype_f16_b64": base64.b64encode(b.prototype.astype("<f2").tobytes()).decode("ascii"),
                        "dim": int(b.prototype.shape[0]),
                        "first_seen": datetime.fromtimestamp(b.first_seen, tz=timezone.utc),
                        "last_seen": datetime.fromtimestamp(b.last_seen, tz=timezone.utc),
                        "observations": int(b.observations),
                    }
                )
            return {
                "taken_at": datetime.now(tz=timezone.utc),
                "embedder": self.embedder_sha or "unknown",
                "birds": birds,
            }


def decode_prototype(b64: str, dim: int) -> np.ndarray:
    """Inverse of the snapshot encoding: base64 float16 -> (dim,) float32."""
    raw = base64.b64decode(b64)
    v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if v.shape[0] != dim:
        raise ValueError(f"prototype has {v.shape[0]} values, expected dim={dim}")
    return v
