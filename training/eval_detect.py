"""`flockid eval detect`: mAP on a YOLO dataset, run through the edge's own `vision.detector.OnnxDetector`
(same letterbox, decode and NMS as in production), optionally per image group (day / night)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.metrics import DetectionAccumulator
from training.yolo_data import YoloData, read_data_yaml, read_labels

# mAP conventions (ultralytics val): a very low score floor and NMS at IoU 0.7
EVAL_CONF = 0.001
EVAL_IOU = 0.7


def image_groups(ds: YoloData, images: list[Path]) -> dict[Path, str]:
    """Condition of each image ('day' / 'night') when the dataset says so, else {}.

    Understood: `ROOT/splits.json` (written by `flockid data synth-detect`: `images` records with
    `image` relative to ROOT and a boolean `night`), or `ROOT/conditions.csv` with columns `image`
    (relative to ROOT, or the file name) and `condition` (or a boolean `night` column).
    """
    by_key: dict[str, str] = {}
    splits = ds.root / "splits.json"
    if splits.is_file():
        for rec in json.loads(splits.read_text()).get("images", []):
            if "image" in rec and "night" in rec:
                by_key[str(rec["image"])] = "night" if rec["night"] else "day"
    csv_file = ds.root / "conditions.csv"
    if not by_key and csv_file.is_file():
        with csv_file.open(newline="") as fh:
            for row in csv.DictReader(fh):
                key = row.get("image") or ""
                if row.get("condition"):
                    by_key[key] = str(row["condition"])
                elif row.get("night") is not None:
                    by_key[key] = "night" if str(row["night"]).strip().lower() in ("1", "true", "yes") else "day"
    out: dict[Path, str] = {}
    root = ds.root.resolve()
    for img in images:
        full = img.resolve()
        rel = full.relative_to(root).as_posix() if full.is_relative_to(root) else ""
        found = by_key.get(rel) or by_key.get(img.name)
        if found:
            out[img] = found
    return out


def evaluate_detector(
    model: Path,
    data: Path,
    *,
    split: str = "val",
    conf: float = EVAL_CONF,
    iou: float = EVAL_IOU,
    max_images: int | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """mAP50, mAP50-95, precision, recall of an ONNX detector on a data.yaml split (+ per group)."""
    import cv2

    from vision.detector import OnnxDetector

    ds = read_data_yaml(data)
    images = ds.split(split if split in ds.splits else ("val" if "val" in ds.splits else "train"))
    if max_images is not None:
        images = images[:max_images]
    if not images:
        raise ValueError(f"{data}: split {split!r} has no images")
    det = OnnxDetector(model, conf=conf, iou=iou)
    if len(det.class_names) != ds.nc:
        raise ValueError(f"{model} predicts {len(det.class_names)} classes {det.class_names} but {data} has "
                         f"{ds.nc} {ds.names}")
    groups = image_groups(ds, images)
    overall = DetectionAccumulator(ds.nc)
    per_group: dict[str, DetectionAccumulator] = {}
    for i, img_path in enumerate(images):
        img = cv2.imread(str(img_path))
        if img is None:
            raise ValueError(f"cannot read image {img_path}")
        h, w = img.shape[:2]
        gt_xyxy, gt_cls = read_labels(img_path, (w, h))
        d = det.detect(img)
        args = (d.xyxy, d.confidence, d.class_id, gt_xyxy, gt_cls)
        overall.add(*args)
        if img_path in groups:
            per_group.setdefault(groups[img_path], DetectionAccumulator(ds.nc)).add(*args)
        if on_image is not None:
            on_image(i + 1, len(images))
    result: dict[str, Any] = {"model": str(model), "data": str(data), "split": split, **overall.summary()}
    if per_group:
        result["groups"] = [{"group": g, **acc.summary()} for g, acc in sorted(per_group.items())]
    return result


def update_card_metrics(model: Path, key: str, metrics: dict[str, Any]) -> None:
    """Record measured metrics in the model card under metrics[key] (the card must exist)."""
    from training.cards import card_path

    path = card_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"--update-card: no model card next to {model} ({path})")
    card = json.loads(path.read_text())
    card.setdefault("metrics", {})[key] = metrics
    path.write_text(json.dumps(card, indent=2) + "\n")
