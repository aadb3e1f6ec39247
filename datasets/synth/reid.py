"""A re-ID crop dataset: one folder per bird identity, split by identity.

OUT/train/<id>/        identities used for training
OUT/query/<id>/        unseen identities: a few crops each ...
OUT/gallery/<id>/      ... and the rest of their crops (open-set retrieval)
OUT/enrol/<id>/        unseen identities, early days (closed set: who is this bird, later on?)
OUT/later/<id>/        the same birds, late days (grown, other light, maybe night)
OUT/meta.json          per identity: world, bird, breed, twin, split

Crops come from sparse-time worlds that span days (poses, growth, day and infra-red night), and each
world holds a whole flock, so look-alikes and near-twins share the dataset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synth.config import WorldConfig
from datasets.synth.world import FlockWorld

BIRDS_PER_WORLD = 24
SPAN_DAYS = 8.0
MIN_VISIBILITY = 0.6
MIN_SIDE_PX = 14
ProgressFn = Callable[[Iterable[int], int], Iterator[int]]


def _crop(img: np.ndarray, xyxy: np.ndarray, pad: float = 0.08) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    px, py = (x1 - x0) * pad, (y1 - y0) * pad
    xa, ya = max(0, int(x0 - px)), max(0, int(y0 - py))
    xb, yb = min(w, math.ceil(x1 + px)), min(h, math.ceil(y1 + py))
    return img[ya:yb, xa:xb].copy()


def _spread(items: list[Any], k: int) -> list[Any]:
    """k items spread evenly over a time-ordered list."""
    if len(items) <= k:
        return list(items)
    idx = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in idx]


def write_reid_dataset(
    out: str | Path,
    *,
    identities: int,
    flock: str = "mixed",
    per_id: int = 8,
    seed: int = 0,
    train_fraction: float = 0.5,
    size_wh: tuple[int, int] = (640, 360),
    progress: ProgressFn | None = None,
) -> dict[str, int]:
    import cv2

    if flock not in ("mixed", "uniform"):
        raise ValueError(f"flock={flock!r}: valid kinds are 'mixed', 'uniform'")
    if identities < 4:
        raise ValueError(f"identities={identities}: need at least 4")
    if per_id < 2:
        raise ValueError(f"per_id={per_id}: need at least 2 crops per identity")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction={train_fraction}: must be in (0, 1)")
    root = Path(out)
    rng = np.random.default_rng([seed, 0x4E1D])
    n_worlds = math.ceil(identities / BIRDS_PER_WORLD)
    frames = max(80, per_id * 10)
    step = SPAN_DAYS * 86400.0 / frames
    n_train = round(identities * train_fraction)
    order = rng.permutation(identities)
    train_ids = set(order[:n_train].tolist())
    meta: dict[str, Any] = {}
    counts = {"train": 0, "query": 0, "gallery": 0, "enrol": 0, "later": 0, "identities": 0, "skipped": 0}
    total = n_worlds * frames
    it: Iterable[int] = range(total)
    if progress is not None:
        it = progress(it, total)
    ticker = iter(it)
    gid = 0
    for wi in range(n_worlds):
        n_birds = min(BIRDS_PER_WORLD, identities - gid)
        wseed = int(rng.integers(0, 2**31 - 1))
        cfg = WorldConfig(
            seed=wseed,
            appearance_seed=int(rng.integers(0, 2**31 - 1)),
            birds=n_birds,
            frames=frames,
            time_step_s=step,
            size_wh=size_wh,
            flock=flock,  # type: ignore[arg-type]
            camera="random",
            night_fraction=0.3,
            start_day=float(rng.uniform(14, 35)),
            leave_rate_per_hour=0.0,
        )
        world = FlockWorld(cfg)
        crops: dict[int, list[tuple[float, np.ndarray]]] = {b.bird_id: [] for b in world.birds}
        for f in world.frames():
            next(ticker, None)
            g = f.gt
            wh = g.xyxy[:, 2:4] - g.xyxy[:, 0:2]
            ok = g.in_view & (g.visibility >= MIN_VISIBILITY) & (wh.min(axis=1) >= MIN_SIDE_PX)
            for r in np.nonzero(ok)[0]:
                crops[int(g.bird_id[r])].append((f.time_s, _crop(f.image, g.xyxy[r])))
        t_end = world.config.duration_s
        for b in world.birds:
            this = gid
            gid += 1
            name = f"{this:05d}"
            got = crops[b.bird_id]
            if len(got) < 2:
                counts["skipped"] += 1
                continue
            counts["identities"] += 1
            split = "train" if this in train_ids else "test"
            chosen = _spread(got, per_id)
            files: dict[str, list[tuple[float, np.ndarray]]] = {}
            if split == "train":
                files["train"] = chosen
            else:
                files["query"] = chosen[1::4] or chosen[:1]
                q_times = {t for t, _ in files["query"]}
                files["gallery"] = [c for c in chosen if c[0] not in q_times]
                early = [c for c in got if c[0] <= 0.3 * t_end]
                late = [c for c in got if c[0] >= 0.7 * t_end]
                if early and late:
                    files["enrol"] = _spread(early, max(1, per_id // 2))
                    files["later"] = _spread(late, max(1, per_id // 2))
            for sub, items in files.items():
                d = root / sub / name
                d.mkdir(parents=True, exist_ok=True)
                for t, img in items:
                    cv2.imwrite(str(d / f"{name}_t{int(t):08d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
                counts[sub] += len(items)
            twin = b.traits.twin_of
            meta[name] = {
                "split": split,
                "world": wi,
                "world_seed": wseed,
                "appearance_seed": cfg.bird_seed,
                "bird_id": b.bird_id,
                "breed": b.traits.breed,
                "pattern": b.traits.pattern,
                "twin_of": None if twin is None else f"{this - b.bird_id + twin:05d}",
                "flock": flock,
            }
    for _ in ticker:
        pass
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"seed": seed, "flock": flock, "per_id": per_id,
                                                "identities": meta}, indent=1))
    return counts
