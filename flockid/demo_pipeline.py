"""Edge pipeline factories for the demo and the end-to-end tests (`pipeline.factory` in edge.yaml).

Both build the real `vision.pipeline.FlockPipeline` (tracker, farm identity registry, headcount,
health) for farm footage filmed in bursts (`flockid.demo_world`):

- `flockid.demo_pipeline:sparse_pipeline` — the shipped ONNX detector and re-ID models.
- `flockid.demo_pipeline:ground_truth_pipeline` — detection and re-ID replaced by the synthetic
  world's ground truth (boxes from `<video>.gt.npz`, one fixed appearance vector per bird derived
  from the world's appearance seed). Used by the fraud/failure scenario tests so that they test the
  edge and API logic deterministically and fast, whatever the state of the models.

Options come from `pipeline.options` of the edge config:
`{"pipeline": {PipelineConfig fields}, "identity": {IdentityConfig fields}, "appearance_seed": int}`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edge.pipelines import camera_pipeline_config

ORACLE_DIM = 64
ORACLE_EMBEDDER_SHA = hashlib.sha256(b"flockid ground-truth appearance v1").hexdigest()


def _split_options(config: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    opts = dict(config.pipeline.options)
    valid = {"pipeline", "identity", "appearance_seed"}
    unknown = sorted(set(opts) - valid)
    if unknown:
        raise ValueError(f"pipeline.options: unknown keys {unknown}; valid keys are {sorted(valid)}")
    return dict(opts.get("pipeline") or {}), dict(opts.get("identity") or {}), opts


def sparse_pipeline(*, camera: Any, registry: Any, config: Any) -> Any:
    """The shipped models, with tracker/health/identity settings from pipeline.options."""
    from vision.identity import IdentityConfig
    from vision.pipeline import FlockPipeline

    pipe_opts, id_opts, _ = _split_options(config)
    return FlockPipeline.from_defaults(
        camera_id=camera.camera_id, registry=registry, registry_path=config.pipeline.registry_path,
        farm_id=config.farm_id, detector_path=config.pipeline.detector, reid_path=config.pipeline.reid,
        providers=tuple(config.pipeline.providers), imgsz=config.pipeline.imgsz,
        config=camera_pipeline_config(camera, pipe_opts), identity_config=IdentityConfig(**id_opts))


class _GroundTruth:
    """Per-frame ground-truth boxes of one recorded camera (`flockid.demo_world.record_farm`)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ground truth of the recording is missing")
        with np.load(path) as data:
            n = int(data["n"])
            self.frames = [(data[f"{i}_xyxy"], data[f"{i}_bird"]) for i in range(n)]
        self.current: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))

    def at(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self.frames):
            raise IndexError(f"frame {index} is outside the recording's {len(self.frames)} frames")
        self.current = self.frames[index]
        return self.current


class GroundTruthDetector:
    """Detector protocol over recorded ground truth: the boxes of frame `frame_index`."""

    def __init__(self, gt: _GroundTruth) -> None:
        self.gt = gt

    def detect(self, frame_bgr: np.ndarray, *, frame_index: int = 0, timestamp: float = 0.0,
               camera_id: str = "cam0") -> Any:
        from vision.detections import Detections

        xyxy, _ = self.gt.at(frame_index)
        n = len(xyxy)
        h, w = frame_bgr.shape[:2]
        return Detections(xyxy=xyxy.astype(np.float32), confidence=np.full(n, 0.9, np.float32),
                          class_id=np.zeros(n, np.int64), frame_index=frame_index, timestamp=timestamp,
                          camera_id=camera_id, frame_size_wh=(w, h))


class GroundTruthEmbedder:
    """Embedder protocol: each box gets its bird's fixed appearance vector plus a little noise.

    The bird is the ground-truth box with the highest IoU; the vector depends only on
    (appearance_seed, bird number), so the same birds filmed on another farm look the same."""

    def __init__(self, gt: _GroundTruth, appearance_seed: int, dim: int = ORACLE_DIM) -> None:
        self.gt = gt
        self.seed = int(appearance_seed)
        self.dim = dim
        self._noise = np.random.default_rng([self.seed, 0xE3B])
        self._cache: dict[int, np.ndarray] = {}

    def _vector(self, bird: int) -> np.ndarray:
        if bird not in self._cache:
            v = np.random.default_rng([self.seed, 0xB12D, bird]).normal(size=self.dim)
            self._cache[bird] = (v / np.linalg.norm(v)).astype(np.float32)
        return self._cache[bird]

    def embed(self, frame_bgr: np.ndarray, dets: Any, rows: np.ndarray | None = None) -> Any:
        from vision.geometry import box_iou_batch

        n = len(dets)
        emb = np.zeros((n, self.dim), np.float32)
        sel = np.arange(n) if rows is None else np.asarray(rows, np.int64)
        gt_xyxy, gt_bird = self.gt.current
        if len(sel) and len(gt_xyxy):
            iou = box_iou_batch(dets.xyxy[sel], gt_xyxy.astype(np.float32))
            best = iou.argmax(axis=1)
            for r, j, ok in zip(sel, best, iou.max(axis=1) > 0.3, strict=True):
                if not ok:
                    continue
                v = self._vector(int(gt_bird[j])) + self._noise.normal(0, 0.15 / np.sqrt(self.dim), self.dim)
                emb[r] = v / np.linalg.norm(v)
        return dets.with_meta(embedding=emb)


def ground_truth_pipeline(*, camera: Any, registry: Any, config: Any) -> Any:
    """FlockPipeline with ground-truth detection and appearance (see the module docstring)."""
    from vision.identity import IdentityConfig, IdentityRegistry
    from vision.pipeline import FlockPipeline
    from vision.tracking import make_tracker

    pipe_opts, id_opts, opts = _split_options(config)
    if "appearance_seed" not in opts:
        raise ValueError("pipeline.options.appearance_seed is required by ground_truth_pipeline")
    gt = _GroundTruth(Path(str(camera.source)).with_suffix(".gt.npz"))
    pconf = camera_pipeline_config(camera, pipe_opts)
    if registry is None:
        registry = IdentityRegistry(config.pipeline.registry_path, config.farm_id, IdentityConfig(**id_opts),
                                    embedder_sha=ORACLE_EMBEDDER_SHA)
    pipe = FlockPipeline(pconf, detector=GroundTruthDetector(gt),
                         embedder=GroundTruthEmbedder(gt, int(opts["appearance_seed"])),
                         tracker=make_tracker(pconf.tracker, **pconf.tracker_kwargs()), registry=registry,
                         camera_id=camera.camera_id)
    # Reports name what produced them: here, no model at all.
    setattr(pipe, "model_versions", lambda: {"detector": "ground-truth", "reid": ORACLE_EMBEDDER_SHA})  # noqa: B010
    return pipe


def rebind_ground_truth(pipeline: Any, video: Path) -> None:
    """Point a ground-truth pipeline at a new recording (a device fed another day of footage)."""
    det = getattr(pipeline, "detector", None)
    if isinstance(det, GroundTruthDetector):
        gt = _GroundTruth(Path(video).with_suffix(".gt.npz"))
        det.gt = gt
        if isinstance(pipeline.embedder, GroundTruthEmbedder):
            pipeline.embedder.gt = gt
