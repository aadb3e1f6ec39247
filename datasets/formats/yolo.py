"""YOLO detection datasets: one `class cx cy w h` line per box (normalised to [0, 1]) and a `data.yaml`.

Follows the ultralytics conventions: `path:` root key, each split given as an image dir, a txt list of
images, or a list of those; `names` as a list or an `{id: name}` dict; labels found by replacing the
last `/images/` of an image path with `/labels/` and the extension with `.txt`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm", ".heic")
SPLITS = ("train", "val", "test")


class YoloFormatError(ValueError):
    """A YOLO file that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class YoloDataset:
    """A parsed data.yaml: root, class names (index = class id) and image paths per split."""

    root: Path
    names: list[str]
    splits: dict[str, list[Path]] = field(default_factory=dict)
    yaml_path: Path | None = None

    def images(self, split: str | None = None) -> list[Path]:
        """Images of one split, or of all splits (deduplicated, in split order)."""
        if split is not None:
            if split not in self.splits:
                raise ValueError(f"split {split!r} not in dataset; have {sorted(self.splits)}")
            return list(self.splits[split])
        seen: dict[Path, None] = {}
        for paths in self.splits.values():
            for q in paths:
                seen.setdefault(q, None)
        return list(seen)


def label_path_for(image_path: str | Path) -> Path:
    """`.../images/x/a.jpg` -> `.../labels/x/a.txt` (the last `images` dir is replaced);
    an image outside any `images` dir has its label beside it."""
    s = str(image_path)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        head, tail = s.rsplit(sa, 1)
        s = head + sb + tail
    return Path(s).with_suffix(".txt")


def image_size_wh(image_path: str | Path) -> tuple[int, int]:
    """(width, height) of an image (decodes it: a size from a corrupt file would be a lie)."""
    import cv2

    img = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise YoloFormatError(f"{image_path}: cannot read image")
    return int(img.shape[1]), int(img.shape[0])


def _check_size(size_wh: Sequence[int] | Sequence[float]) -> tuple[float, float]:
    if len(size_wh) != 2:
        raise ValueError(f"size_wh must be (width, height), got {size_wh!r}")
    w, h = float(size_wh[0]), float(size_wh[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size_wh must be positive, got {size_wh!r}")
    return w, h


def format_labels(xyxy: Any, class_id: Any, size_wh: Sequence[int] | Sequence[float]) -> str:
    """Label file text for pixel boxes in an image of size_wh."""
    w, h = _check_size(size_wh)
    box = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    cls = np.asarray(class_id, dtype=np.int64).reshape(-1)
    if cls.shape[0] != box.shape[0]:
        raise ValueError(f"class_id has {cls.shape[0]} rows but xyxy has {box.shape[0]}")
    if cls.size and cls.min() < 0:
        raise ValueError(f"class ids must be >= 0, got {int(cls.min())}")
    lines = []
    for (x1, y1, x2, y2), c in zip(box, cls, strict=True):
        cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
        bw, bh = (x2 - x1) / w, (y2 - y1) / h
        # 8 decimals: sub-1e-3 px round trips even on 8K frames.
        lines.append(f"{int(c)} {cx:.8f} {cy:.8f} {bw:.8f} {bh:.8f}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_labels(path: str | Path, xyxy: Any, class_id: Any, size_wh: Sequence[int] | Sequence[float]) -> Path:
    """Write pixel `xyxy` boxes of an image of `size_wh` as a YOLO label file (empty file = no birds)."""
    p = Path(path)
    text = format_labels(xyxy, class_id, size_wh)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def parse_label_line(text: str) -> tuple[int, float, float, float, float]:
    """One label line -> (class, cx, cy, w, h) normalised. Polygon lines (class x1 y1 x2 y2 ...) become
    their bounding box, as ultralytics does. Raises ValueError saying why."""
    parts = text.split()
    n = len(parts)
    if n != 5 and not (n >= 7 and (n - 1) % 2 == 0):
        raise ValueError(f"expected 5 fields (class cx cy w h), got {n}")
    try:
        cls_f = float(parts[0])
        nums = [float(v) for v in parts[1:]]
    except ValueError as exc:
        raise ValueError(f"non-numeric field: {exc}") from None
    if not np.all(np.isfinite([cls_f, *nums])):
        raise ValueError("non-finite number")
    if cls_f != int(cls_f):
        raise ValueError(f"class id {parts[0]!r} is not an integer")
    if n == 5:
        cx, cy, bw, bh = nums
    else:
        xs, ys = nums[0::2], nums[1::2]
        x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
        cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    return int(cls_f), cx, cy, bw, bh


def read_labels(
    path: str | Path, size_wh: Sequence[int] | Sequence[float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Read a label file -> (pixel xyxy (N, 4), class_id (N,)). A missing file is an empty frame.

    Raises YoloFormatError naming `file:line` on a malformed line or a negative class id.
    """
    w, h = _check_size(size_wh)
    p = Path(path)
    if not p.exists():
        return np.zeros((0, 4), np.float64), np.zeros(0, np.int64)
    boxes: list[tuple[float, float, float, float]] = []
    classes: list[int] = []
    with p.open(encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, 1):
            text = raw.strip()
            if not text:
                continue
            try:
                c, cx, cy, bw, bh = parse_label_line(text)
            except ValueError as exc:
                raise YoloFormatError(f"{p}:{lineno}: {exc}") from None
            if c < 0:
                raise YoloFormatError(f"{p}:{lineno}: negative class id {c}")
            boxes.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
            classes.append(c)
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes, np.int64)


def _names_list(names: Any, where: str) -> list[str]:
    if isinstance(names, dict):
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise YoloFormatError(f"{where}: names keys must be integers") from None
        if sorted(keyed) != list(range(len(keyed))):
            raise YoloFormatError(f"{where}: names ids must be 0..{len(keyed) - 1}, got {sorted(keyed)}")
        return [keyed[i] for i in range(len(keyed))]
    if isinstance(names, (list, tuple)):
        return [str(v) for v in names]
    raise YoloFormatError(f"{where}: names must be a list or a {{id: name}} mapping, got {type(names).__name__}")


def write_data_yaml(
    root: str | Path,
    names: Sequence[str] | dict[int, str],
    train: str | Path | Sequence[str | Path],
    val: str | Path | Sequence[str | Path],
    test: str | Path | Sequence[str | Path] | None = None,
) -> Path:
    """Write `root/data.yaml`. Split entries are dirs or txt lists, relative to root or absolute.

    `path:` is written absolute because ultralytics resolves a relative one against its own datasets dir;
    `read_data_yaml` falls back to the yaml's folder when that absolute path no longer exists.
    """
    import yaml

    r = Path(root).resolve()
    names_l = _names_list(dict(names) if isinstance(names, dict) else list(names), str(r / "data.yaml"))

    def rel(v: str | Path | Sequence[str | Path]) -> str | list[str]:
        if isinstance(v, (str, Path)):
            q = Path(v)
            if q.is_absolute():
                try:
                    return q.relative_to(r).as_posix()
                except ValueError:
                    return str(q)
            return q.as_posix()
        return [str(rel(x)) for x in v]

    data: dict[str, Any] = {"path": str(r), "train": rel(train), "val": rel(val)}
    if test is not None:
        data["test"] = rel(test)
    data["nc"] = len(names_l)
    data["names"] = dict(enumerate(names_l))
    r.mkdir(parents=True, exist_ok=True)
    out = r / "data.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return out


def _images_in_dir(d: Path) -> list[Path]:
    return sorted(q for q in d.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS)


def _resolve_split(entry: Any, root: Path, where: str) -> list[Path]:
    if entry is None:
        return []
    if isinstance(entry, (list, tuple)):
        out: list[Path] = []
        for e in entry:
            out.extend(_resolve_split(e, root, where))
        return out
    q = Path(str(entry))
    if not q.is_absolute():
        q = root / q
    if q.is_dir():
        return _images_in_dir(q)
    if q.is_file() and q.suffix.lower() == ".txt":
        images = []
        for raw in q.read_text(encoding="utf-8-sig").splitlines():
            s = raw.strip()
            if not s:
                continue
            # ultralytics: "./x.jpg" is relative to the list's folder; other relative paths to the root.
            img = q.parent / s[2:] if s.startswith("./") else Path(s)
            if not img.is_absolute():
                img = root / img
            images.append(img)
        return images
    if q.is_file() and q.suffix.lower() in IMAGE_EXTS:
        return [q]
    raise YoloFormatError(f"{where}: split entry {entry!r} -> {q} is not an image dir, txt list or image")


def read_data_yaml(path: str | Path) -> YoloDataset:
    """Parse a data.yaml (or a dataset dir holding one) into a YoloDataset."""
    import yaml

    p = Path(path)
    if p.is_dir():
        cands = [p / "data.yaml", p / "dataset.yaml", *sorted(p.glob("*.yaml"))]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{p}: no data.yaml in this folder")
        p = found
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise YoloFormatError(f"{p}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise YoloFormatError(f"{p}: expected a mapping at the top level")
    if "names" not in data:
        raise YoloFormatError(f"{p}: no 'names' key")
    names = _names_list(data["names"], str(p))
    if "nc" in data and data["nc"] is not None and int(data["nc"]) != len(names):
        raise YoloFormatError(f"{p}: nc={data['nc']} but names has {len(names)} entries")
    root = p.parent.resolve()
    if data.get("path"):
        q = Path(str(data["path"]))
        # Relative: next to the yaml, else the working dir (where ultralytics users often run from).
        cands = [q] if q.is_absolute() else [p.parent / q, Path.cwd() / q]
        found = next((c for c in cands if c.is_dir()), None)
        if found is not None:
            root = found.resolve()
        # else: a moved dataset whose absolute path went stale; the yaml's own folder is the root.
    splits: dict[str, list[Path]] = {}
    for split in SPLITS:
        if data.get(split) is not None:
            splits[split] = _resolve_split(data[split], root, f"{p}: {split}")
    if not splits:
        raise YoloFormatError(f"{p}: no train/val/test split given")
    return YoloDataset(root=root, names=names, splits=splits, yaml_path=p.resolve())
