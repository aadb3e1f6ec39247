"""Oracle stages for evaluating the registry, counting and health without trained models.

`OracleDetector` returns the ground-truth boxes of a frame as Detections (optionally dropping boxes at a
miss rate and jittering them); `OracleEmbedder` gives each ground-truth identity a fixed random unit
vector and returns it with per-observation noise. Look-alikes are modelled explicitly: `twins` pairs get
vectors of cosine similarity ~`twin_sim`, and with `uniform_sim` every bird is that similar to every
other (a flock of one breed). This measures what the registry does *given* an embedder of a known
quality; it says nothing about how good a real re-ID model is (use `flockid eval count --reid` for that).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from vision.detections import Detections


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class OracleDetector:
    """Ground-truth boxes as detections. Call `set_frame(xyxy, ids)` before `detect`."""

    def __init__(self, *, miss_rate: float = 0.0, jitter_px: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= miss_rate < 1.0:
            raise ValueError(f"miss_rate must be in [0, 1), got {miss_rate}")
        if jitter_px < 0:
            raise ValueError(f"jitter_px must be >= 0, got {jitter_px}")
        self.miss_rate = miss_rate
        self.jitter_px = jitter_px
        self._rng = np.random.default_rng(seed)
        self._xyxy = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)

    def set_frame(self, xyxy: np.ndarray, ids: Iterable[int]) -> None:
        self._xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self._ids = np.asarray(list(ids), np.int64).reshape(-1)
        if self._ids.shape[0] != self._xyxy.shape[0]:
            raise ValueError(f"set_frame: {self._xyxy.shape[0]} boxes but {self._ids.shape[0]} ids")

    def detect(
        self,
        frame_bgr: np.ndarray | None = None,
        *,
        frame_index: int = 0,
        timestamp: float = 0.0,
        camera_id: str = "cam0",
    ) -> Detections:
        keep = self._rng.random(len(self._ids)) >= self.miss_rate
        xyxy = self._xyxy[keep].copy()
        if self.jitter_px and len(xyxy):
            xyxy += self._rng.normal(0.0, self.jitter_px, xyxy.shape).astype(np.float32)
        return Detections(
            xyxy=xyxy,
            confidence=np.full(len(xyxy), 0.9, np.float32),
            class_id=np.zeros(len(xyxy), np.int64),
            frame_index=frame_index,
            timestamp=timestamp,
            camera_id=camera_id,
        )

    def gt_ids_for(self, xyxy: np.ndarray) -> np.ndarray:
        """Ground-truth id of each box (best IoU with this frame's gt boxes; -1 when none overlaps)."""
        out = np.full(len(xyxy), -1, np.int64)
        if not len(xyxy) or not len(self._xyxy):
            return out
        a, b = np.asarray(xyxy, np.float32), self._xyxy
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
        area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
        iou = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
        best = iou.argmax(axis=1)
        ok = iou[np.arange(len(a)), best] > 0.3
        out[ok] = self._ids[best[ok]]
        return out


class OracleEmbedder:
    """Per-identity unit vectors with controllable look-alike structure and observation noise.

    self_sim: expected cosine similarity of two observations of the same bird (noise level);
    twin_sim: similarity of the identity vectors of each pair in `twins`;
    uniform_sim: if set, every identity vector is this similar to every other (one-breed flock).
    """

    def __init__(
        self,
        detector: OracleDetector,
        *,
        dim: int = 64,
        self_sim: float = 0.9,
        twin_sim: float = 0.85,
        uniform_sim: float | None = None,
        twins: Iterable[tuple[int, int]] = (),
        seed: int = 0,
    ) -> None:
        for name, v in (("self_sim", self_sim), ("twin_sim", twin_sim)):
            if not -1.0 < v <= 1.0:
                raise ValueError(f"{name} must be in (-1, 1], got {v}")
        if uniform_sim is not None and not 0.0 <= uniform_sim < 1.0:
            raise ValueError(f"uniform_sim must be in [0, 1), got {uniform_sim}")
        self.detector = detector
        self.dim = dim
        self.self_sim = self_sim
        self.twin_sim = twin_sim
        self.uniform_sim = uniform_sim
        self.twins = {int(b): int(a) for a, b in twins}
        self.seed = seed
        self._rng = np.random.default_rng([seed, 1])
        self._vec: dict[int, np.ndarray] = {}
        self._common = _unit(np.random.default_rng([seed, 2]).normal(size=dim))
        self.calls = 0

    def identity_vector(self, gt_id: int) -> np.ndarray:
        """The bird's own vector: a pure function of (seed, gt_id), so several cameras agree."""
        v = self._vec.get(gt_id)
        if v is None:
            rng = np.random.default_rng([self.seed, 3, gt_id])
            if gt_id in self.twins:
                # A twin: the source's vector, turned by the angle giving cos = twin_sim.
                v = self._mix(self.identity_vector(self.twins[gt_id]), self.twin_sim, rng)
            elif self.uniform_sim is not None:
                v = self._mix(self._common, float(np.sqrt(self.uniform_sim)), rng)
            else:
                v = _unit(rng.normal(size=self.dim))
            self._vec[gt_id] = v
        return v

    def _mix(self, base: np.ndarray, cos: float, rng: np.random.Generator | None = None) -> np.ndarray:
        r = (rng or self._rng).normal(size=self.dim)
        r = _unit(r - (r @ base) * base)
        return _unit(cos * base + np.sqrt(max(0.0, 1.0 - cos * cos)) * r)

    def _observe(self, gt_id: int) -> np.ndarray:
        if gt_id < 0:
            return _unit(self._rng.normal(size=self.dim))
        # Observation = identity vector turned by a random angle with cos ~ sqrt(self_sim), so two
        # observations of one bird have similarity ~ self_sim.
        return self._mix(self.identity_vector(gt_id), float(np.sqrt(self.self_sim)))

    def embed(self, frame_bgr: np.ndarray | None, dets: Detections, rows: np.ndarray | None = None) -> Detections:
        n = len(dets)
        idx = np.arange(n) if rows is None else np.arange(n)[rows]
        emb = np.zeros((n, self.dim), np.float32)
        ids = self.detector.gt_ids_for(dets.xyxy[idx])
        for r, g in zip(idx, ids, strict=True):
            emb[r] = self._observe(int(g))
        self.calls += len(idx)
        return replace(dets, embedding=emb)
