"""The one data type that flows through every stage: detector -> embedder -> tracker -> registry.

Parallel numpy arrays, one row per box. Stages never read raw Nx6 arrays by column index;
they read named fields of this class.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

NO_TRACK = -1  # track_id of a box no tracker has claimed yet
EMBEDDED_MIN_NORM = 0.5  # embeddings are unit vectors: a row shorter than this was not embedded


def _as(arr: Any, dtype: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(arr, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Detections.{name}: cannot convert to {np.dtype(dtype).name}: {exc}") from exc


@dataclass
class Detections:
    """Boxes of one frame of one camera.

    xyxy: (N, 4) float32 pixel corners in the frame they came from.
    confidence: (N,) float32 in [0, 1].
    class_id: (N,) int64.
    track_id: (N,) int64, NO_TRACK (-1) until a tracker assigns one.
    embedding: optional (N, D) float32, L2-normalised appearance vectors (rows of zeros = not embedded).
    bird_id: optional per-box registry IDs ("bird-000123" or "" when unknown).
    identity_confidence: optional (N,) float32, how sure the registry is of bird_id.
    frame_index / timestamp / camera_id: where the frame came from (timestamp in seconds, wall clock).
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray | None = None
    embedding: FloatArray | None = None
    bird_id: np.ndarray | None = None
    identity_confidence: FloatArray | None = None
    frame_index: int = 0
    timestamp: float = 0.0
    camera_id: str = "cam0"
    frame_size_wh: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as(self.xyxy, np.float32, "xyxy").reshape(-1, 4) if np.size(self.xyxy) == 0 else _as(
            self.xyxy, np.float32, "xyxy"
        )
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy must have shape (N, 4), got {self.xyxy.shape}")
        n = self.xyxy.shape[0]
        self.confidence = _as(self.confidence, np.float32, "confidence").reshape(-1)
        self.class_id = _as(self.class_id, np.int64, "class_id").reshape(-1)
        if self.track_id is None:
            self.track_id = np.full(n, NO_TRACK, dtype=np.int64)
        self.track_id = _as(self.track_id, np.int64, "track_id").reshape(-1)
        for name in ("confidence", "class_id", "track_id"):
            got = getattr(self, name).shape[0]
            if got != n:
                raise ValueError(f"Detections.{name} has {got} rows but xyxy has {n}")
        if self.embedding is not None:
            self.embedding = _as(self.embedding, np.float32, "embedding")
            if self.embedding.ndim != 2 or self.embedding.shape[0] != n:
                raise ValueError(f"Detections.embedding must have shape ({n}, D), got {self.embedding.shape}")
        if self.bird_id is not None:
            self.bird_id = np.asarray(self.bird_id, dtype=object).reshape(-1)
            if self.bird_id.shape[0] != n:
                raise ValueError(f"Detections.bird_id has {self.bird_id.shape[0]} rows but xyxy has {n}")
        if self.identity_confidence is not None:
            self.identity_confidence = _as(self.identity_confidence, np.float32, "identity_confidence").reshape(-1)
            if self.identity_confidence.shape[0] != n:
                raise ValueError(
                    f"Detections.identity_confidence has {self.identity_confidence.shape[0]} rows but xyxy has {n}"
                )

    @classmethod
    def empty(cls, **meta: Any) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
            **meta,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self)))

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Detections:
        """Row selection by int, slice, index list or boolean mask; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.asarray(np.arange(len(self))[index]).reshape(-1)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return replace(
            self,
            xyxy=self.xyxy[idx],
            confidence=self.confidence[idx],
            class_id=self.class_id[idx],
            track_id=take(self.track_id),
            embedding=take(self.embedding),
            bird_id=take(self.bird_id),
            identity_confidence=take(self.identity_confidence),
            extra=dict(self.extra),
        )

    @property
    def area(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:4] - self.xyxy[:, 0:2], 0, None)
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    @property
    def center_xy(self) -> FloatArray:
        return ((self.xyxy[:, 0:2] + self.xyxy[:, 2:4]) / 2).astype(np.float32)

    @property
    def embedded(self) -> npt.NDArray[np.bool_]:
        """(N,) rows that carry an embedding on this frame (rows of zeros, or garbage, were not embedded)."""
        if self.embedding is None or not len(self):
            return np.zeros(len(self), bool)
        return np.asarray(np.linalg.norm(self.embedding, axis=1) > EMBEDDED_MIN_NORM)

    def with_meta(self, **meta: Any) -> Detections:
        return replace(self, **meta)

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate rows of several Detections of the same frame (metadata from the first)."""
        if not parts:
            return cls.empty()
        first = parts[0]
        has_emb = all(p.embedding is not None for p in parts)
        has_bird = all(p.bird_id is not None for p in parts)
        has_idc = all(p.identity_confidence is not None for p in parts)
        return replace(
            first,
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts if p.track_id is not None]),
            embedding=np.concatenate([p.embedding for p in parts if p.embedding is not None]) if has_emb else None,
            bird_id=np.concatenate([p.bird_id for p in parts if p.bird_id is not None]) if has_bird else None,
            identity_confidence=np.concatenate(
                [p.identity_confidence for p in parts if p.identity_confidence is not None]
            )
            if has_idc
            else None,
        )
