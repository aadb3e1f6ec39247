"""Tracker speed benchmark on a synthetic random-walk flock (for a `flockid bench tracker` command).

`bench_tracker(...)` returns a flat dict of numbers; it prints nothing. Scene generation happens
before the clock starts, so only ``tracker.update`` is timed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vision.detections import Detections


def make_random_walk(
    *, birds: int, frames: int, dim: int, embed_fraction: float, seed: int, size_wh: tuple[int, int] = (1920, 1080)
) -> list[Detections]:
    """Birds of ~40 px walking in bursts, 10 fps, 5 % missed boxes, per-bird embeddings + noise."""
    if birds < 0 or frames < 1 or dim < 0 or not 0.0 <= embed_fraction <= 1.0:
        raise ValueError(
            f"bad scene: birds={birds} (>= 0), frames={frames} (>= 1), dim={dim} (>= 0), "
            f"embed_fraction={embed_fraction} (0..1)"
        )
    rng = np.random.default_rng(seed)
    w, h = size_wh
    pos = rng.uniform([40, 40], [w - 40, h - 40], (birds, 2))
    vel = np.zeros((birds, 2))
    size = rng.uniform(30, 50, (birds, 1))
    base = rng.normal(size=(birds, max(dim, 1)))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    out = []
    for f in range(frames):
        walking = rng.random(birds) < 0.3
        vel = np.where(walking[:, None], 0.8 * vel + rng.normal(0, 20, (birds, 2)), 0.5 * vel)
        pos = np.clip(pos + vel * 0.1, 20, [w - 20, h - 20])
        seen = rng.random(birds) > 0.05
        xyxy = np.concatenate([pos - size / 2, pos + size / 2], 1)[seen]
        xyxy += rng.normal(0, 1.0, xyxy.shape)
        n = len(xyxy)
        emb = None
        if dim:
            emb = (base[seen] + rng.normal(0, 0.1, (n, dim))).astype(np.float32)
            emb[rng.random(n) >= embed_fraction] = 0.0
        out.append(
            Detections(
                xyxy=xyxy,
                confidence=rng.uniform(0.3, 0.95, n).astype(np.float32),
                class_id=np.zeros(n, np.int64),
                embedding=emb,
                timestamp=f * 0.1,
                frame_index=f,
            )
        )
    return out


def bench_tracker(
    name: str = "flockid",
    *,
    birds: int = 200,
    frames: int = 300,
    dim: int = 128,
    embed_fraction: float = 1.0,
    seed: int = 0,
    **config: Any,
) -> dict[str, Any]:
    """Time ``update`` over a generated scene; returns updates/s and per-update latency in ms."""
    from vision.tracking import make_tracker

    scene = make_random_walk(birds=birds, frames=frames, dim=dim, embed_fraction=embed_fraction, seed=seed)
    tracker = make_tracker(name, **config)
    for dets in scene[:3]:  # warm-up: lazy imports (scipy) must not count
        tracker.update(dets)
    tracker.reset()
    times = np.empty(frames)
    outputs = 0
    for i, dets in enumerate(scene):
        t0 = time.perf_counter()
        out = tracker.update(dets)
        times[i] = time.perf_counter() - t0
        outputs += len(out)
    return {
        "tracker": name,
        "birds": birds,
        "frames": frames,
        "embedding_dim": dim,
        "embed_fraction": embed_fraction,
        "updates_per_s": float(frames / times.sum()),
        "ms_per_update_mean": float(times.mean() * 1e3),
        "ms_per_update_p50": float(np.percentile(times, 50) * 1e3),
        "ms_per_update_p95": float(np.percentile(times, 95) * 1e3),
        "tracked_boxes_per_frame": float(outputs / frames),
    }
