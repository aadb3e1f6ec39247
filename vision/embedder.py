"""Re-ID embedder on onnxruntime: crops of boxes -> L2-normalised appearance vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vision.backends.providers import make_session
from vision.detections import Detections


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


class OnnxEmbedder:
    """Embeds bird crops with any ONNX model of input (B, 3, H, W) RGB in [0, 1] (after
    mean/std normalisation given by the model card) and output (B, D)."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        providers: Sequence[str] = ("cpu",),
        max_batch: int = 64,
        pad_fraction: float = 0.05,
        threads: int = 0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if not 0.0 <= pad_fraction <= 0.5:
            raise ValueError(f"pad_fraction must be in [0, 0.5], got {pad_fraction}")
        self.model_path = Path(model_path)
        self.session: Any = make_session(self.model_path, providers, threads=threads)
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or not isinstance(shape[2], int) or not isinstance(shape[3], int):
            raise ValueError(f"{self.model_path}: embedder input must be (B, 3, H, W) with fixed H, W; got {shape}")
        self.input_hw = (int(shape[2]), int(shape[3]))
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        from vision.weights import read_card

        card = read_card(self.model_path)
        self.mean = np.asarray(card.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(card.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(1, 3, 1, 1)
        self.max_batch = max_batch
        self.pad_fraction = pad_fraction
        out_shape = self.session.get_outputs()[0].shape
        self.dim = int(out_shape[1]) if len(out_shape) == 2 and isinstance(out_shape[1], int) else 0

    def _preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        import cv2

        h, w = self.input_hw
        batch = np.empty((len(crops), 3, h, w), np.float32)
        for i, crop in enumerate(crops):
            if crop.size == 0:
                raise ValueError(f"crop {i} is empty")
            img = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
            batch[i] = img[:, :, ::-1].transpose(2, 0, 1)
        batch /= 255.0
        return (batch - self.mean) / self.std

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float32 L2-normalised embeddings of BGR crops."""
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        step = 1 if self.fixed_batch == 1 else self.max_batch
        outs = []
        for start in range(0, len(crops), step):
            x = self._preprocess(crops[start : start + step])
            outs.append(self.session.run(None, {self.input_name: x})[0].reshape(x.shape[0], -1))
        return l2_normalise(np.concatenate(outs).astype(np.float32))

    def crop(self, frame_bgr: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
        """Padded integer crops of boxes, clipped to the frame (at least 2x2 px each)."""
        fh, fw = frame_bgr.shape[:2]
        crops = []
        for x1, y1, x2, y2 in xyxy:
            px, py = (x2 - x1) * self.pad_fraction, (y2 - y1) * self.pad_fraction
            a = int(max(0, np.floor(x1 - px)))
            b = int(max(0, np.floor(y1 - py)))
            c = int(min(fw, np.ceil(x2 + px)))
            d = int(min(fh, np.ceil(y2 + py)))
            c, d = max(c, min(fw, a + 2)), max(d, min(fh, b + 2))
            crops.append(frame_bgr[b:d, a:c])
        return crops

    def embed(self, frame_bgr: np.ndarray, dets: Detections, rows: np.ndarray | None = None) -> Detections:
        """Return dets with `embedding` filled. With rows (indices or mask), only those boxes are
        embedded and the others keep their previous vector or zeros (the tracker treats a zero
        row as 'no appearance this frame')."""
        n = len(dets)
        idx = np.arange(n) if rows is None else np.arange(n)[rows]
        if dets.embedding is not None and self.dim and dets.embedding.shape[1] == self.dim:
            emb = dets.embedding.copy()
        else:
            emb = np.zeros((n, self.dim or 1), np.float32)
        if idx.size:
            vecs = self.embed_crops(self.crop(frame_bgr, dets.xyxy[idx]))
            if emb.shape[1] != vecs.shape[1]:
                emb = np.zeros((n, vecs.shape[1]), np.float32)
            emb[idx] = vecs
        return replace(dets, embedding=emb)
