"""Build one vision pipeline per camera, all sharing the farm's identity registry.

`pipeline.factory` in edge.yaml is "module:callable". The default, `vision.pipeline:FlockPipeline`,
builds `FlockPipeline.from_defaults(...)` from the configured ONNX models. Any other callable is called
as `fn(camera=CameraConfig, registry=<registry or None>, config=EdgeConfig)` and must return an object
with `process(frame, *, timestamp, frame_index)`, `window_summary(start_ts, end_ts)` (whose result has
`report_fields()`), and a `registry` attribute (the shared registry, with `snapshot()`); optional:
`reset()` (after a camera reconnect), `model_versions()`, `combine_summaries(list)`, and a
`headcount_from` keyword of `window_summary` (count birds from that earlier time: see `window_summary`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge.config import CameraConfig, EdgeConfig

DEFAULT_FACTORY = "vision.pipeline:FlockPipeline"


def _resolve(spec: str) -> Callable[..., Any]:
    if ":" not in spec:
        raise ValueError(f"pipeline.factory must be 'module:callable', got {spec!r}")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"pipeline.factory {spec!r}: cannot import {mod_name}: {exc}") from exc
    fn = getattr(mod, attr, None)
    if fn is None or not callable(fn):
        raise ValueError(f"pipeline.factory {spec!r}: {mod_name} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


def camera_pipeline_config(camera: CameraConfig, options: dict[str, Any]) -> Any:
    """vision.pipeline.PipelineConfig from pipeline options plus what belongs to this camera: its
    calibration, and its masks after any masks the options give for every camera."""
    from vision.pipeline import PipelineConfig

    masks = [*options.get("masks_xyxyn", []), *camera.masks_xyxyn]
    return PipelineConfig(**{**options, "calibration": camera.calibration, "masks_xyxyn": masks})


def _default_pipeline(camera: CameraConfig, registry: Any, config: EdgeConfig) -> Any:
    """`pipeline.options`: vision.pipeline.PipelineConfig fields, plus `identity` (IdentityConfig fields)
    and `conf` (detector score threshold); the camera's calibration and masks go to the pipeline config."""
    from vision.identity import IdentityConfig
    from vision.pipeline import FlockPipeline

    opts = dict(config.pipeline.options)
    identity = IdentityConfig(**opts.pop("identity", {}))
    # None: the detector floor comes from the model card (FlockPipeline.from_defaults calibration).
    conf = opts.pop("conf", None)
    conf = None if conf is None else float(conf)
    pconf = camera_pipeline_config(camera, opts)
    return FlockPipeline.from_defaults(
        camera_id=camera.camera_id,
        registry=registry,
        registry_path=config.pipeline.registry_path,
        farm_id=config.farm_id,
        detector_path=config.pipeline.detector,
        reid_path=config.pipeline.reid,
        providers=tuple(config.pipeline.providers),
        imgsz=config.pipeline.imgsz,
        conf=conf,
        config=pconf,
        identity_config=identity,
    )


def build_pipelines(config: EdgeConfig) -> dict[str, Any]:
    """camera_id -> pipeline; the first pipeline's registry is handed to the others."""
    spec = config.pipeline.factory
    factory = _default_pipeline if spec == DEFAULT_FACTORY else _resolve(spec)
    out: dict[str, Any] = {}
    registry = None
    for cam in config.cameras:
        pipe = factory(camera=cam, registry=registry, config=config)
        registry = getattr(pipe, "registry", registry)
        out[cam.camera_id] = pipe
    return out


def window_summary(pipeline: Any, start_ts: float, end_ts: float, headcount_from: float) -> Any:
    """The pipeline's summary of [start_ts, end_ts], its headcount counted from headcount_from (<= start_ts)
    when the window is shorter than that and the pipeline takes the keyword (older factories do not)."""
    fn = pipeline.window_summary
    if headcount_from < start_ts:
        try:
            takes = "headcount_from" in inspect.signature(fn).parameters
        except (TypeError, ValueError):  # a callable without a readable signature
            takes = False
        if takes:
            return fn(start_ts, end_ts, headcount_from=headcount_from)
    return fn(start_ts, end_ts)


def combine(pipelines: Sequence[Any], summaries: Sequence[Any]) -> Any:
    """Merge per-camera window summaries into one farm summary."""
    if len(summaries) == 1:
        return summaries[0]
    fn = getattr(pipelines[0], "combine_summaries", None)
    if fn is None:
        from vision.pipeline import combine_summaries

        fn = combine_summaries
    return fn(list(summaries))


def model_versions(pipelines: Sequence[Any], config: EdgeConfig) -> dict[str, str]:
    """model name -> sha256 (from the model card when there is one, else hashed from the file)."""
    first = pipelines[0] if pipelines else None
    if first is not None and hasattr(first, "model_versions"):
        return dict(first.model_versions())
    from vision.weights import default_detector_path, default_reid_path, model_sha256, read_card

    out: dict[str, str] = {}
    for name, path, default in (
        ("detector", config.pipeline.detector, default_detector_path),
        ("reid", config.pipeline.reid, default_reid_path),
    ):
        p = Path(path) if path else default()
        try:
            card = read_card(p)
            sha = card.get("sha256")
        except (OSError, ValueError):
            sha = None
        out[name] = str(sha) if sha else model_sha256(p)
    return out
