"""The real vision.pipeline.FlockPipeline (tracker, identity registry, counting, health, window
summaries) with two tiny image-based stages so it runs without trained ONNX models: a colour-blob
detector and a mean-colour embedder. Used by the edge integration test via `pipeline.factory`.
(Test code only.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.detections import Detections

COLOURS = [(40, 40, 250), (40, 250, 40), (250, 40, 40), (40, 250, 250), (250, 40, 250)]


def coloured_scene(i: int, w: int = 320, h: int = 240) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(60, 120, size=(h // 8, w // 8, 3), dtype=np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_NEAREST)
    for b, col in enumerate(COLOURS):
        cx = int(40 + 55 * b + 15 * np.sin(0.05 * i + b))
        cy = int(h / 2 + 50 * np.sin(0.03 * i + 2 * b))
        cv2.ellipse(img, (cx, cy), (14, 9), 0, 0, 360, col, -1)
    noise = np.random.default_rng(i + 1).integers(-2, 3, size=img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


class BlobDetector:
    def detect(
        self, frame_bgr: np.ndarray, *, frame_index: int = 0, timestamp: float = 0.0, camera_id: str = "cam0"
    ) -> Detections:
        mask = (frame_bgr.max(axis=2) > 200).astype(np.uint8)
        n, _lab, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [
            [stats[k, 0], stats[k, 1], stats[k, 0] + stats[k, 2], stats[k, 1] + stats[k, 3]]
            for k in range(1, n)
            if stats[k, cv2.CC_STAT_AREA] >= 40
        ]
        xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
        return Detections(
            xyxy=xyxy,
            confidence=np.full(len(xyxy), 0.9, np.float32),
            class_id=np.zeros(len(xyxy), np.int64),
            frame_index=frame_index,
            timestamp=timestamp,
            camera_id=camera_id,
            frame_size_wh=(frame_bgr.shape[1], frame_bgr.shape[0]),
        )


class MeanColourEmbedder:
    def embed(self, frame_bgr: np.ndarray, dets: Detections) -> Detections:
        vecs = []
        for x0, y0, x1, y1 in dets.xyxy.astype(int):
            crop = (
                frame_bgr[max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)].reshape(-1, 3).astype(np.float32)
            )
            bright = crop[crop.max(axis=1) > 200]
            v = (bright if len(bright) else crop).mean(axis=0) - 128.0
            vecs.append(v / max(float(np.linalg.norm(v)), 1e-6))
        emb = np.asarray(vecs, np.float32).reshape(len(dets), 3)
        return dets.with_meta(embedding=emb)


def make(camera: Any, registry: Any, config: Any) -> Any:
    from vision.identity import IdentityConfig, IdentityRegistry
    from vision.pipeline import FlockPipeline, PipelineConfig
    from vision.tracking import make_tracker

    if registry is None:
        path = Path(config.pipeline.registry_path) if config.pipeline.registry_path else None
        registry = IdentityRegistry(
            path, config.farm_id, IdentityConfig(enroll_min_frames=2, match_min_frames=1), embedder_sha="c" * 64
        )
    pconf = PipelineConfig(embed_every=1, calibration=camera.calibration)
    pipe = FlockPipeline(
        pconf,
        detector=BlobDetector(),
        embedder=MeanColourEmbedder(),
        tracker=make_tracker(pconf.tracker, **pconf.tracker_config),
        registry=registry,
        camera_id=camera.camera_id,
    )
    pipe.model_versions = lambda: {"detector": "blob-test", "reid": "c" * 64}  # type: ignore[attr-defined]
    return pipe
