"""Detector training: ultralytics YOLO under the hood, offline-safe, resumable.

Writes into `out/`: `train/` (ultralytics' own run folder, with `weights/last.pt` for resuming),
`best.pt` (the best checkpoint, carrying our config and the dataset hash), `metrics.json`, and
`best.json` (the model card of best.pt).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from training.cards import ULTRALYTICS_LICENCE, file_sha256, utc_now, write_card
from training.yolo_data import read_data_yaml

# Model configs ultralytics ships inside its package: building from these needs no download.
BUILTIN_MODEL_YAMLS = ("yolo11n.yaml", "yolo11s.yaml", "yolov8n.yaml", "yolov8s.yaml", "yolo12n.yaml")


class DetectTrainConfig(BaseModel):
    """Everything that defines a detector training run (saved in the checkpoint and the card)."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    model: str = Field("yolo11n.yaml", description="a built-in model yaml, a local .yaml, or a local .pt")
    epochs: int = Field(10, ge=1, le=2000)
    imgsz: int = Field(320, ge=64, le=2048)
    batch: int = Field(16, ge=1, le=1024)
    device: str = "cpu"
    workers: int = Field(2, ge=0, le=64)
    seed: int = Field(0, ge=0)
    patience: int = Field(100, ge=0, le=10000)
    lr0: float = Field(0.01, gt=0, le=1)
    optimizer: str = "auto"
    mosaic: float = Field(1.0, ge=0, le=1)
    close_mosaic: int = Field(2, ge=0, le=1000)
    cache: bool = False
    val_every_epoch: bool = True
    fraction: float = Field(1.0, gt=0, le=1)
    recipe: str = "custom"

    @field_validator("imgsz")
    @classmethod
    def _stride(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"imgsz must be a multiple of 32 (YOLO stride), got {v}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip().lower()
        if v != "cpu" and not all(p.isdigit() for p in v.split(",")):
            raise ValueError(f"device must be 'cpu' or CUDA indices like '0' or '0,1', got {v!r}")
        return v


# Recipes: named, reproducible settings. The shipped detector = `default` then `finetune` on the same
# synthetic set (see its model card); `smoke` is for CI.
DETECT_RECIPES: dict[str, dict[str, Any]] = {
    "default": {"model": "yolo11n.yaml", "epochs": 6, "imgsz": 320, "batch": 16, "workers": 1,
                "close_mosaic": 2, "cache": True, "val_every_epoch": False, "seed": 0},
    # fine-tune the shipped detector (on a farm's own photos, or to continue the default run)
    "finetune": {"model": "default", "epochs": 8, "imgsz": 320, "batch": 16, "workers": 1,
                 "close_mosaic": 2, "cache": True, "val_every_epoch": False, "seed": 0},
    "smoke": {"model": "yolo11n.yaml", "epochs": 1, "imgsz": 64, "batch": 4, "workers": 0,
              "close_mosaic": 0, "mosaic": 0.0, "cache": False, "val_every_epoch": False, "seed": 0},
}


def recipe_config(recipe: str, **overrides: Any) -> DetectTrainConfig:
    """A config from a named recipe; explicit (non-None) overrides win."""
    if recipe not in DETECT_RECIPES and recipe != "custom":
        raise ValueError(f"unknown detect recipe {recipe!r}; valid: {sorted([*DETECT_RECIPES, 'custom'])}")
    base = dict(DETECT_RECIPES.get(recipe, {}))
    base.update({k: v for k, v in overrides.items() if v is not None})
    base["recipe"] = recipe
    return DetectTrainConfig(**base)


def resolve_model_source(model: str) -> str:
    """Turn `--model` into something ultralytics can load without a download, or fail naming it."""
    if model == "default":
        from vision.weights import default_detector_path

        pt = Path(default_detector_path()).with_suffix(".pt")
        if not pt.is_file():
            raise FileNotFoundError(f"--model default: the shipped detector checkpoint {pt} is missing")
        return str(pt)
    p = Path(model)
    if p.suffix == ".pt":
        if not p.is_file():
            raise FileNotFoundError(
                f"--model {model}: checkpoint not found. Weights are never downloaded by name; build from "
                f"a yaml ({', '.join(BUILTIN_MODEL_YAMLS)}) or give a local .pt"
            )
        return str(p.resolve())
    if p.suffix in (".yaml", ".yml"):
        if p.is_file():
            return str(p.resolve())
        if model in BUILTIN_MODEL_YAMLS:
            return model
        raise FileNotFoundError(f"--model {model}: no such file and not a built-in yaml {BUILTIN_MODEL_YAMLS}")
    raise ValueError(f"--model {model}: expected a .yaml model config, a local .pt checkpoint, or 'default'")


def _resolved_data_yaml(data: Path, out: Path) -> tuple[Path, Any]:
    """Write a copy of data.yaml with an absolute `path`, so ultralytics never guesses a root
    (it resolves relative roots against its own datasets dir, not the yaml's folder)."""
    ds = read_data_yaml(data)
    raw = dict(ds.raw)
    raw["path"] = str(ds.root)
    raw["names"] = dict(enumerate(ds.names))
    raw.pop("download", None)  # never let ultralytics fetch a dataset
    raw.pop("nc", None)
    if "val" not in raw:
        raw["val"] = raw["train"]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "data.resolved.yaml"
    target.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target, ds


def _unfinished_last(out: Path) -> Path | None:
    """`last.pt` of an interrupted run (ultralytics marks a finished one with epoch == -1)."""
    last = out / "train" / "weights" / "last.pt"
    if not last.is_file():
        return None
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return last if int(ckpt.get("epoch", -1)) >= 0 else None


def _metrics_from(trainer: Any) -> dict[str, float]:
    raw = dict(getattr(trainer, "metrics", None) or {})
    keymap = {
        "metrics/precision(B)": "precision",
        "metrics/recall(B)": "recall",
        "metrics/mAP50(B)": "mAP50",
        "metrics/mAP50-95(B)": "mAP50-95",
    }
    return {new: float(raw[old]) for old, new in keymap.items() if old in raw}


def _stamp_checkpoint(pt: Path, extra: dict[str, Any]) -> None:
    """Add our config and dataset hash to an ultralytics checkpoint (it ignores unknown keys)."""
    import torch

    ckpt = torch.load(pt, map_location="cpu", weights_only=False)
    ckpt["flockid"] = extra
    torch.save(ckpt, pt)


def train_detector(cfg: DetectTrainConfig, out: Path, *, resume: bool = True,
                   callbacks: dict[str, Callable[[Any], None]] | None = None) -> dict[str, Any]:
    """Train (or resume) a detector; returns the metrics dict that is also written to metrics.json.

    callbacks: extra ultralytics callbacks by event name (e.g. "on_fit_epoch_end").
    """
    from training.offline import import_ultralytics

    out = Path(out).resolve()
    data_yaml, ds = _resolved_data_yaml(cfg.data, out)
    data_hash = ds.sha256()
    source = resolve_model_source(cfg.model)
    import_ultralytics()
    from ultralytics import YOLO

    started = time.time()
    last = _unfinished_last(out) if resume else None
    common = dict(plots=False, amp=False, verbose=True)
    if last is not None:
        model = YOLO(str(last))
        for event, fn in (callbacks or {}).items():
            model.add_callback(event, fn)
        model.train(resume=True, **common)
    else:
        if (out / "train").exists():
            shutil.rmtree(out / "train")  # a finished or foreign run: start clean, never mix
        model = YOLO(source)
        for event, fn in (callbacks or {}).items():
            model.add_callback(event, fn)
        model.train(
            data=str(data_yaml),
            epochs=cfg.epochs,
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            device=cfg.device,
            workers=cfg.workers,
            seed=cfg.seed,
            deterministic=True,
            patience=cfg.patience,
            lr0=cfg.lr0,
            optimizer=cfg.optimizer,
            mosaic=cfg.mosaic,
            close_mosaic=cfg.close_mosaic,
            cache="ram" if cfg.cache else False,
            val=cfg.val_every_epoch,
            fraction=cfg.fraction,
            project=str(out),
            name="train",
            exist_ok=True,
            **common,
        )
    trainer: Any = model.trainer
    best_src = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    best = out / "best.pt"
    shutil.copyfile(best_src, best)
    wall = time.time() - started
    metrics = _metrics_from(trainer)
    record: dict[str, Any] = {
        "task": "detect",
        "metrics_split": "val",
        "metrics": metrics,
        "train_wall_s": round(wall, 1),
        "resumed": last is not None,
        "config": json.loads(cfg.model_dump_json()),
        "data_sha256": data_hash,
        "class_names": ds.names,
        "source_model": source,
        "date": utc_now(),
    }
    _stamp_checkpoint(best, {"config": record["config"], "data_sha256": data_hash, "class_names": ds.names})
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    write_card(best, {
        "task": "detect",
        "format": "pytorch-ultralytics",
        "input_size": [cfg.imgsz, cfg.imgsz],
        "class_names": ds.names,
        "training_data_sha256": data_hash,
        "config": record["config"],
        "metrics": {"val": metrics},
        "source_checkpoint_sha256": file_sha256(Path(source)) if Path(source).is_file() else None,
        "source_model": source,
        "licence": ULTRALYTICS_LICENCE,
        "train_wall_s": record["train_wall_s"],
    })
    return record
