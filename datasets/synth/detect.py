"""A YOLO detection dataset (single class `chicken`) from many randomised worlds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from datasets.synth.config import WorldConfig
from datasets.synth.world import FlockWorld

LABEL_MIN_VISIBILITY = 0.2  # fainter slivers are not labelled (a detector cannot be asked to find them)
ProgressFn = Callable[[Iterable[int], int], Iterator[int]]


def random_world_config(rng: np.random.Generator, seed: int, size_wh: tuple[int, int], night: bool,
                        frames: int) -> WorldConfig:
    """Heavy domain randomisation: flock, camera, scene, size of birds, age, density, degradations.

    Most worlds hold a few sick (sitting, hunched) and dead (lying) birds, moved into view: mortality rests
    on finding exactly those poses, which a flock of healthy walkers shows the detector almost never."""
    w = size_wh[0]
    # The draws keep the order they had before the sick/dead cast existed, so a seed's worlds stay as they
    # were; the cast comes from its own stream.
    birds = int(rng.integers(4, 70))
    time_step_s = float(rng.uniform(4, 30))
    flock: Literal["mixed", "uniform"] = "mixed" if rng.random() < 0.6 else "uniform"
    camera: Literal["oblique", "topdown"] = "oblique" if rng.random() < 0.6 else "topdown"
    scene: Literal["run", "barn"] = "run" if rng.random() < 0.55 else "barn"
    start_day = float(rng.uniform(10, 60))
    bird_px = float(math.exp(rng.uniform(math.log(32), math.log(110))) * w / 640.0)
    one_dead = rng.random() < 0.2
    leave_rate = float(rng.uniform(0, 30))
    cast = np.random.default_rng([seed, 0x5EC])
    dead = min(int(one_dead) + int(cast.integers(0, 4)), birds // 3)
    sick = min(int(cast.integers(0, 3)), birds // 3)
    return WorldConfig(
        seed=seed,
        birds=birds,
        frames=frames,
        time_step_s=time_step_s,
        size_wh=size_wh,
        flock=flock,
        camera=camera,
        scene=scene,
        night_fraction=1.0 if night else 0.0,
        start_day=start_day,
        bird_px=bird_px,
        sick_birds=sick,
        dead_birds=dead,
        sick_window_s=(0.0, 1.0),
        dead_window_s=(0.0, 1.0),
        incident_camera=0,
        leave_rate_per_hour=leave_rate,
    )


def write_detect_dataset(
    out: str | Path,
    *,
    images: int,
    size_wh: tuple[int, int] = (640, 360),
    seed: int = 0,
    night_fraction: float = 0.25,
    val_fraction: float = 0.15,
    per_world: int = 20,
    image_quality: int = 90,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Write `OUT/images/{train,val}`, `OUT/labels/{train,val}`, `OUT/data.yaml` and `OUT/splits.json`.

    Whole worlds go to val (unseen farms). splits.json lists every image with its split, night flag and
    world, plus `val_night` / `val_day` name lists so detector mAP can be reported day and night.
    """
    import cv2

    from datasets.formats.yolo import write_data_yaml, write_labels

    if images < 1:
        raise ValueError(f"images={images}: need at least one image")
    if not 0 <= night_fraction <= 1:
        raise ValueError(f"night_fraction={night_fraction}: must be in [0, 1]")
    if per_world < 1:
        raise ValueError(f"per_world={per_world}: must be >= 1")
    root = Path(out)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xDE7])
    n_worlds = math.ceil(images / per_world)
    n_val_worlds = max(1, round(n_worlds * val_fraction)) if n_worlds > 1 else 0
    val_worlds = set(rng.permutation(n_worlds)[:n_val_worlds].tolist())
    # Night worlds are chosen per split so both splits carry the requested share (val gets at least one).
    night_worlds: set[int] = set()
    for members in (sorted(val_worlds), [w for w in range(n_worlds) if w not in val_worlds]):
        k = round(night_fraction * len(members))
        if night_fraction > 0 and len(members) >= 2:
            k = max(k, 1)
        if night_fraction < 1 and len(members) >= 2:
            k = min(k, len(members) - 1)
        night_worlds |= {members[int(j)] for j in rng.permutation(len(members))[:k]}
    records: list[dict[str, Any]] = []
    n_boxes = 0
    it: Iterable[int] = range(images)
    if progress is not None:
        it = progress(it, images)
    counter = iter(it)
    made = 0
    for wi in range(n_worlds):
        count = min(per_world, images - made)
        if count <= 0:
            break
        split = "val" if wi in val_worlds else "train"
        night = wi in night_worlds
        wseed = int(rng.integers(0, 2**31 - 1))
        cfg = random_world_config(rng, wseed, size_wh, night, count)
        world = FlockWorld(cfg)
        for f in world.frames():
            next(counter, None)
            name = f"w{wi:04d}_{f.index:04d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), f.image,
                        [cv2.IMWRITE_JPEG_QUALITY, image_quality])
            gt = f.gt.annotated(LABEL_MIN_VISIBILITY)
            write_labels(root / "labels" / split / f"{name}.txt", gt.xyxy, np.zeros(len(gt), np.int64), size_wh)
            n_boxes += len(gt)
            records.append({
                "image": f"images/{split}/{name}.jpg", "split": split, "night": bool(f.is_night), "world": wi,
                "world_seed": wseed, "camera": world.camera_kind, "scene": world.scene_kind, "flock": cfg.flock,
                "boxes": len(gt),
            })
            made += 1
    for _ in counter:
        pass
    data_yaml = write_data_yaml(root, ["chicken"], "images/train", "images/val")
    val = [r for r in records if r["split"] == "val"]
    splits: dict[str, Any] = {
        "seed": seed,
        "size_wh": list(size_wh),
        "label_min_visibility": LABEL_MIN_VISIBILITY,
        "val_night": [r["image"] for r in val if r["night"]],
        "val_day": [r["image"] for r in val if not r["night"]],
        "images": records,
    }
    (root / "splits.json").write_text(json.dumps(splits, indent=1))
    return {
        "data_yaml": str(data_yaml),
        "train": sum(r["split"] == "train" for r in records),
        "val": len(val),
        "val_night": len(splits["val_night"]),
        "boxes": n_boxes,
    }
