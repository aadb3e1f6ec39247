"""YOLO dataset bookkeeping for training: the `datasets.formats.yolo` reader plus what training
needs on top (the raw yaml for ultralytics, one hash over every image and label)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from datasets.formats.yolo import label_path_for
from datasets.formats.yolo import read_data_yaml as _read_yolo
from datasets.formats.yolo import read_labels as _read_labels
from training.cards import tree_sha256


@dataclass(frozen=True)
class YoloData:
    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]
    raw: dict[str, Any]

    @property
    def nc(self) -> int:
        return len(self.names)

    def split(self, name: str) -> list[Path]:
        if name not in self.splits:
            raise ValueError(f"{self.yaml_path}: no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]

    def label_files(self) -> list[Path]:
        out: list[Path] = []
        for imgs in self.splits.values():
            out.extend(p for p in (label_path_for(i) for i in imgs) if p.is_file())
        return out

    def sha256(self) -> str:
        """Hash of every image and label file of every split, and of the class names."""
        files = sorted({*[p for imgs in self.splits.values() for p in imgs], *self.label_files()})
        digest = tree_sha256(files, self.root) + "|" + ",".join(self.names)
        return hashlib.sha256(digest.encode()).hexdigest()


def read_data_yaml(path: Path) -> YoloData:
    ds = _read_yolo(path)
    yaml_path = Path(ds.yaml_path or path)
    raw = yaml.safe_load(yaml_path.read_text()) or {}
    return YoloData(yaml_path=yaml_path, root=ds.root, names=list(ds.names), splits=dict(ds.splits), raw=raw)


def read_labels(image: Path, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel xyxy (N, 4) float32 and class_id (N,) of the image's label file (none = no boxes)."""
    xyxy, cls = _read_labels(label_path_for(image), size_wh)
    return xyxy.astype(np.float32), cls.astype(np.int64)
