"""`flockid bench pipeline`: the whole edge pipeline against the bare detector and ultralytics.

All four runs see the same frames at the same input size, one frame at a time (as a camera feeds
them), after a short warm-up. The runners take turns in blocks of `block` frames, so that load from
other processes on a shared machine hits all of them alike, while each block runs as it would alone:
with turns of one frame, a runner's onnxruntime or torch threads were still spinning when the next
runner started (2 cores, 320 px: the bare detector read 23 ms instead of 16-19, and the pipeline 1.42x
it instead of 1.83-2.04x).
  bare       onnxruntime `session.run` of the detector on pre-letterboxed inputs (the floor)
  pipeline   `vision.pipeline.FlockPipeline.process` (detect + embed + track + registry + counting + health),
             plus one `window_summary` (the report signals) at the end
  ul_onnx    ultralytics `model.track(..., tracker="bytetrack.yaml")` on the same ONNX weights
  ul_pt      the same on the .pt weights (torch)
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def synthetic_frames(n: int, seed: int = 0, birds: int = 40) -> list[np.ndarray]:
    from datasets.synth import FlockWorld, WorldConfig

    world = FlockWorld(WorldConfig(seed=seed, birds=birds, frames=n))
    return [f.image for f in world.frames()]


def sequence_frames(seq: Path, n: int) -> list[np.ndarray]:
    from datasets.formats.mot import iter_sequence_frames

    out = []
    for _, img in iter_sequence_frames(seq):
        out.append(img)
        if len(out) >= n:
            break
    if not out:
        raise ValueError(f"{seq}: no frames")
    return out


def bench_pipeline(frames: list[np.ndarray], *, detector: Path, reid: Path, pt: Path | None,
                   imgsz: int = 320, threads: int = 2, warmup: int = 5, config: Any = None,
                   ultralytics: bool = True, block: int = 10) -> dict[str, Any]:
    """Per-frame times of each runner (each processes every frame in order, the runners taking turns
    in blocks of `block` frames; the first frame of a block is not timed, as the previous runner's
    threads may still hold the cores); means and medians in ms, and their ratios.

    `config` (a `vision.pipeline.PipelineConfig`) tunes the pipeline run; `ultralytics=False` leaves
    the ultralytics runners out (a quicker pipeline-vs-bare comparison of pipeline settings). Also
    reported: process CPU ms per frame of the pipeline and the bare run (the machine may be shared) and
    the re-ID crops embedded per frame."""
    from vision.backends.letterbox import letterbox
    from vision.backends.providers import make_session
    from vision.pipeline import FlockPipeline

    if len(frames) <= warmup:
        raise ValueError(f"need more than {warmup} frames (warm-up), got {len(frames)}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    # The bare reference keeps onnxruntime's default thread spinning (the fastest way to run one model alone).
    sess = make_session(detector, ("cpu",), threads=threads, spin=True)
    name = sess.get_inputs()[0].name
    inputs = []
    for f in frames:
        img, _ = letterbox(f, (imgsz, imgsz))
        inputs.append((img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy())
    # Same input size as the bare run (a dynamic-shape export would otherwise use its card's imgsz).
    pipe = FlockPipeline.from_defaults(detector_path=detector, reid_path=reid, config=config, imgsz=imgsz)
    boxes: list[int] = []
    crops = [0]
    embed: Any = pipe.embedder.embed if pipe.embedder is not None else None

    def counting_embed(frame_bgr: np.ndarray, dets: Any, rows: Any = None) -> Any:
        crops[0] += len(dets) if rows is None else int(np.arange(len(dets))[rows].size)
        return embed(frame_bgr, dets, rows=rows)

    if embed is not None:
        pipe.embedder.embed = counting_embed  # type: ignore[union-attr,method-assign]

    def run_bare(i: int, f: np.ndarray) -> None:
        sess.run(None, {name: inputs[i]})

    def run_pipe(i: int, f: np.ndarray) -> None:
        boxes.append(len(pipe.process(f, timestamp=i * 0.1, frame_index=i)))

    runners: dict[str, Any] = {"bare": run_bare, "pipeline": run_pipe}

    if ultralytics:
        from training.offline import import_ultralytics

        import_ultralytics()
        import torch
        from ultralytics import YOLO

        torch.set_num_threads(threads)

        def ul_runner(weights: Path) -> Any:
            model = YOLO(str(weights), task="detect")

            def step(i: int, f: np.ndarray) -> None:
                model.track(f, persist=True, tracker="bytetrack.yaml", imgsz=imgsz, device="cpu", verbose=False,
                            conf=0.1)

            return step

        runners["ultralytics_track_onnx"] = ul_runner(detector)
        if pt is not None:
            runners["ultralytics_track_pt"] = ul_runner(pt)
    times: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, float] = {k: 0.0 for k in runners}
    with contextlib.redirect_stdout(sys.stderr):
        for start in range(0, len(frames), block):
            chunk = range(start, min(start + block, len(frames)))
            for key, fn in runners.items():
                for i in chunk:
                    if key == "pipeline" and i == warmup:
                        crops[0] = 0
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn(i, frames[i])
                    if i >= warmup and (i > start or block == 1):
                        times[key].append(time.perf_counter() - t0)
                        cpu[key] += time.process_time() - c0
    if not times["pipeline"]:
        raise ValueError(f"no frame was timed: {len(frames)} frames, warm-up {warmup}, blocks of {block}")
    t0 = time.perf_counter()
    pipe.window_summary(0.0, len(frames) * 0.1)
    summary_ms = (time.perf_counter() - t0) * 1000
    result: dict[str, Any] = {"frames": len(frames) - warmup, "timed_frames": len(times["pipeline"]),
                              "block": block, "frame_size_wh": list(frames[0].shape[1::-1]),
                              "imgsz": imgsz, "threads": threads, "detector": str(detector), "reid": str(reid),
                              "pt": str(pt) if pt else None, "mean_boxes": float(np.mean(boxes)) if boxes else 0.0}
    for key, ts in times.items():
        result[f"{key}_ms_mean"] = float(np.mean(ts)) * 1000
        result[f"{key}_ms_median"] = float(np.median(ts)) * 1000
    n = len(times["pipeline"])
    for key in ("bare", "pipeline"):
        result[f"{key}_cpu_ms_per_frame"] = cpu[key] / n * 1000
    result["ratio_pipeline_vs_bare_cpu"] = cpu["pipeline"] / cpu["bare"] if cpu["bare"] > 0 else None
    result["embed_crops_per_frame"] = crops[0] / (len(frames) - warmup)
    result["window_summary_ms"] = summary_ms
    result["pipeline_fps"] = 1000.0 / result["pipeline_ms_mean"]
    base = result["pipeline_ms_mean"]
    result["ratio_pipeline_vs_bare"] = base / result["bare_ms_mean"]
    result["ratio_pipeline_vs_bare_median"] = result["pipeline_ms_median"] / result["bare_ms_median"]
    for key in ("ultralytics_track_onnx", "ultralytics_track_pt"):
        if key in times:
            result[f"ratio_{key}_vs_pipeline"] = result[f"{key}_ms_mean"] / base
    result["target_pipeline_vs_bare"] = 1.2
    result["meets_target"] = bool(result["ratio_pipeline_vs_bare"] <= 1.2)
    return result
