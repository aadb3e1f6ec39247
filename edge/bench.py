"""`flockid bench edge`: frames/s, CPU% and RSS of one camera's pipeline per input size and precision,
and how many cameras at a given rate one box sustains (estimated, then checked by running that many
camera pipelines concurrently).

The pipeline measured is the full per-camera `vision.pipeline.FlockPipeline` (detector, tracker,
embedder, shared registry) on synthetic barn frames; if it cannot be built, the detector alone is
measured and the `stage` column says so. Models per size come from --models-dir
(`detector_<size>.onnx`, `detector_<size>.int8.onnx`, as written by `flockid export --imgsz N --int8`)
or the shipped detector (and its `.int8.onnx` sibling) for its own input size; a missing one is a row
that says what to export, never a made-up number.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("edge.bench")
MAX_CAMERAS = 16


def _frames(n: int = 64, w: int = 640, h: int = 480, seed: int = 0) -> list[np.ndarray]:
    """Synthetic barn frames: litter texture and a few dozen bird-sized ellipses that move."""
    import cv2

    rng = np.random.default_rng(seed)
    floor = cv2.resize(rng.integers(70, 130, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    birds = rng.uniform([20, 20], [w - 20, h - 20], size=(30, 2))
    vel = rng.normal(0, 2.0, size=(30, 2))
    out = []
    for _ in range(n):
        img = floor.copy()
        birds = np.clip(birds + vel, 20, [w - 20, h - 20])
        for x, y in birds:
            cv2.ellipse(img, (int(x), int(y)), (14, 9), float(x % 180), 0, 360, (225, 225, 230), -1)
        out.append(img)
    return out


def _models_for(size: int, fp32_default: Path, models_dir: Path | None) -> dict[str, tuple[Path | None, str]]:
    """precision -> (model path or None, where it came from / why missing) for one input size.

    Looks for `detector_<size>.onnx` and `detector_<size>.int8.onnx` in models_dir, then the default
    detector (and its `.int8.onnx` sibling) when its fixed input size is `size` or it has dynamic axes."""
    out: dict[str, tuple[Path | None, str]] = {}
    if models_dir is not None:
        for prec, name in (("fp32", f"detector_{size}.onnx"), ("int8", f"detector_{size}.int8.onnx")):
            p = Path(models_dir) / name
            if p.is_file():
                out[prec] = (p, str(p))
    fixed = _fixed_size(fp32_default)
    if fixed in (None, size):
        out.setdefault("fp32", (fp32_default, str(fp32_default)))
        sib = fp32_default.with_name(fp32_default.stem + ".int8.onnx")
        if sib.is_file():
            out.setdefault("int8", (sib, str(sib)))
    for prec in ("fp32", "int8"):
        if prec not in out:
            ext = ".int8" if prec == "int8" else ""
            flag = " --int8" if prec == "int8" else ""
            hint = f"--models-dir with detector_{size}{ext}.onnx (flockid export --imgsz {size}{flag})"
            out[prec] = (None, f"no {prec} model for {size}: pass {hint}")
    return out


def _fixed_size(model: Path) -> int | None:
    import onnxruntime as ort

    shape = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    return int(shape[2]) if isinstance(shape[2], int) else None


def _builder(det_path: Path, imgsz: int) -> tuple[Callable[[str, Any], Any], str]:
    """A factory (camera_id, registry) -> object with process(frame, timestamp=, frame_index=)."""
    try:
        from vision.pipeline import FlockPipeline

        def make_pipe(camera_id: str, registry: Any) -> Any:
            return FlockPipeline.from_defaults(
                camera_id=camera_id, registry=registry, detector_path=det_path, imgsz=imgsz
            )

        make_pipe("probe", None)
        return make_pipe, "pipeline"
    except Exception as exc:
        log.warning("full pipeline unavailable (%r); measuring the detector alone", exc)
    from vision.detector import OnnxDetector

    class _Det:
        def __init__(self) -> None:
            self.det = OnnxDetector(det_path, imgsz=imgsz)
            self.registry = None

        def process(self, frame: np.ndarray, *, timestamp: float, frame_index: int) -> Any:
            return self.det.detect(frame, frame_index=frame_index, timestamp=timestamp)

    return (lambda camera_id, registry: _Det()), "detector"


def _measure(pipe: Any, frames: list[np.ndarray], seconds: float) -> dict[str, float]:
    import psutil

    proc = psutil.Process()
    for i in range(3):  # warm-up: session init, allocations
        pipe.process(frames[i % len(frames)], timestamp=i * 0.2, frame_index=i)
    c0 = proc.cpu_times()
    t0 = time.perf_counter()
    n = 0
    lat = []
    while time.perf_counter() - t0 < seconds or n < 5:
        t = time.perf_counter()
        pipe.process(frames[n % len(frames)], timestamp=10.0 + n * 0.2, frame_index=10 + n)
        lat.append((time.perf_counter() - t) * 1000)
        n += 1
    wall = time.perf_counter() - t0
    c1 = proc.cpu_times()
    cpu_s = c1.user - c0.user + c1.system - c0.system
    cpu = cpu_s / wall * 100.0
    return {
        "fps": n / wall,
        # CPU time per frame does not shrink when other processes compete for the cores, unlike fps.
        "cpu_ms_per_frame": cpu_s * 1000.0 / n,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "cpu_pct": cpu,
        "rss_mb": proc.memory_info().rss / 2**20,
    }


def _concurrent(
    make: Callable[[str, Any], Any], frames: list[np.ndarray], cams: int, fps: float, seconds: float
) -> dict[str, Any]:
    """Run `cams` cameras at `fps` each (one thread per camera, real scheduling, stale frames dropped)."""
    import psutil

    first = make("cam0", None)
    pipes = [first] + [make(f"cam{i}", getattr(first, "registry", None)) for i in range(1, cams)]
    done = [0] * cams
    late = [0] * cams
    stop = threading.Event()

    def run(i: int) -> None:
        period = 1.0 / fps
        nxt = time.perf_counter()
        k = 0
        while not stop.is_set():
            now = time.perf_counter()
            if now < nxt:
                time.sleep(nxt - now)
            pipes[i].process(frames[k % len(frames)], timestamp=k * period, frame_index=k)
            done[i] += 1
            k += 1
            nxt += period
            if time.perf_counter() > nxt + period:
                late[i] += 1
                nxt = time.perf_counter()  # drop what we missed instead of lagging behind

    proc = psutil.Process()
    c0 = proc.cpu_times()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(cams)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    wall = time.perf_counter() - t0
    c1 = proc.cpu_times()
    per_cam = [d / wall for d in done]
    return {
        "cameras": cams,
        "min_camera_fps": min(per_cam),
        "sustained": min(per_cam) >= 0.95 * fps,
        "cpu_pct": (c1.user - c0.user + c1.system - c0.system) / wall * 100.0,
        "rss_mb": proc.memory_info().rss / 2**20,
    }


def run_bench(
    sizes: list[int],
    *,
    seconds: float = 6.0,
    camera_fps: float = 5.0,
    detector: Path | None = None,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    import psutil

    from vision.weights import default_detector_path

    load_at_start = round(os.getloadavg()[0], 2)  # other work on the box skews every number below
    fp32 = Path(detector) if detector else default_detector_path()
    frames = _frames()
    rows: list[dict[str, Any]] = []
    best: tuple[float, Callable[[str, Any], Any] | None, str] = (0.0, None, "")
    configs = []
    for size in sizes:
        found = _models_for(size, fp32, models_dir)
        configs += [(size, prec, found[prec]) for prec in ("fp32", "int8")]
    models_used: dict[str, str] = {}
    for size, prec, (path, source) in configs:
        models_used[f"{size}/{prec}"] = str(path) if path is not None else "-"
        row: dict[str, Any] = {"imgsz": size, "prec": prec}
        if path is None:
            rows.append({**row, "stage": "-", "note": source})
            continue
        try:
            make, stage = _builder(path, size)
            m = _measure(make("cam0", None), frames, seconds)
        except Exception as exc:  # a broken model file must not hide the other rows
            rows.append({**row, "stage": "-", "note": f"{type(exc).__name__}: {exc}"[:160]})
            continue
        cams = math.floor(m["fps"] / camera_fps)
        rows.append(
            {
                **row,
                "stage": stage,
                **{k: round(v, 2) for k, v in m.items()},
                "cams": cams,
            }
        )
        if m["fps"] > best[0]:
            best = (m["fps"], make, f"{size}/{prec}")
    check: dict[str, Any] = {}
    if best[1] is not None:
        # More than MAX_CAMERAS streams per box is beyond what one edge process is meant to run.
        n = min(MAX_CAMERAS, max(1, math.floor(best[0] / camera_fps)))
        check = _concurrent(best[1], frames, n, camera_fps, seconds)
        while not check["sustained"] and n > 1:
            n -= 1
            check = _concurrent(best[1], frames, n, camera_fps, seconds)
    return {
        "machine_cpus": os.cpu_count(),
        "load_avg_1m_at_start": load_at_start,
        "cpu_model": _cpu_model(),
        "total_ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "detector_fp32": str(fp32),
        "frame_size": "640x480",
        "seconds_per_config": seconds,
        "camera_fps": camera_fps,
        "cams": f"floor(fps / {camera_fps:g}) per row; cameras_sustained: that many run concurrently",
        "models": models_used,
        "best_config": best[2] or None,
        "cameras_sustained": check.get("cameras") if check.get("sustained") else 0,
        "concurrent_check": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in check.items()},
        "rows": rows,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
