"""COCO detection JSON: `images`, `categories`, `annotations` with `bbox = [x, y, w, h]` in pixels.

The reader keeps the line each image/annotation/category object starts on, so `flockid data validate`
can point at `instances.json:1234` instead of "annotation #517".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SECTIONS = ("images", "annotations", "categories")


class CocoFormatError(ValueError):
    """A COCO file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class RawCoco:
    """The JSON as parsed, plus the 1-based line each element of the three sections starts on."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, list[int]]

    def items(self, section: str) -> list[tuple[int, Any]]:
        """(line, element) pairs of one section (empty when missing or not a list)."""
        seq = self.data.get(section)
        if not isinstance(seq, list):
            return []
        lines = self.lines.get(section) or [0] * len(seq)
        return list(zip(lines, seq, strict=True))


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    line: int = 0


@dataclass(frozen=True)
class CocoDataset:
    """A parsed COCO file. `names[i]` is class i; `category_ids[i]` the COCO id it came from."""

    path: Path
    images: list[CocoImage]
    names: list[str]
    category_ids: list[int]
    # per image id: pixel xyxy (N, 4) and 0-based class index (N,)
    boxes: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]] = field(default_factory=dict)
    image_dir: Path | None = None

    def image_path(self, image: CocoImage) -> Path:
        base = self.image_dir if self.image_dir is not None else self.path.parent
        return base / image.file_name

    def annotations_of(self, image_id: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        return self.boxes.get(image_id, (np.zeros((0, 4), np.float64), np.zeros(0, np.int64)))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def load_raw(path: str | Path) -> RawCoco:
    """Parse a COCO JSON file recording element start lines. Raises CocoFormatError with file:line."""
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CocoFormatError(f"{p}:1: expected a JSON object at the top level")
    return RawCoco(path=p, data=data, lines=_scan_lines(text))


def _scan_lines(text: str) -> dict[str, list[int]]:
    """Walk the top-level object with json's own decoder to find where each section element starts."""
    dec = json.JSONDecoder()
    ws = " \t\r\n"
    out: dict[str, list[int]] = {}
    i = 0
    n = len(text)

    def skip(j: int) -> int:
        while j < n and text[j] in ws:
            j += 1
        return j

    i = skip(i)
    if i >= n or text[i] != "{":
        return out
    i = skip(i + 1)
    while i < n and text[i] != "}":
        key, i = dec.raw_decode(text, i)
        i = skip(i)
        i = skip(i + 1)  # the ':'
        if key in SECTIONS and i < n and text[i] == "[":
            starts: list[int] = []
            i = skip(i + 1)
            while i < n and text[i] != "]":
                starts.append(_line_of(text, i))
                _, i = dec.raw_decode(text, i)
                i = skip(i)
                if i < n and text[i] == ",":
                    i = skip(i + 1)
            out[str(key)] = starts
            i += 1
        else:
            _, i = dec.raw_decode(text, i)
        i = skip(i)
        if i < n and text[i] == ",":
            i = skip(i + 1)
    return out


def guess_image_dir(json_path: Path, file_names: Sequence[str]) -> Path:
    """Where `file_name`s are relative to: the json's folder, `../images`, `./images` or the parent."""
    cands = [
        json_path.parent,
        json_path.parent.parent / "images",
        json_path.parent / "images",
        json_path.parent.parent,
    ]
    probe = [f for f in file_names[:20]]
    if not probe:
        return cands[0]
    best = max(cands, key=lambda c: sum((c / f).is_file() for f in probe))
    return best if any((best / f).is_file() for f in probe) else cands[0]


def _int(v: Any, what: str, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
        raise CocoFormatError(f"{where}: {what} must be an integer, got {v!r}")
    return int(v)


def read_coco(path: str | Path, *, image_dir: str | Path | None = None) -> CocoDataset:
    """Read a COCO detection file. Crowd annotations are skipped (they are not individual birds)."""
    raw = load_raw(path)
    p = raw.path
    for sec in ("images", "categories"):
        if not isinstance(raw.data.get(sec), list):
            raise CocoFormatError(f"{p}:1: missing or non-list '{sec}'")
    cats: list[tuple[int, str]] = []
    for line, c in raw.items("categories"):
        where = f"{p}:{line}"
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise CocoFormatError(f"{where}: category needs 'id' and 'name'")
        cats.append((_int(c["id"], "category id", where), str(c["name"])))
    cats.sort()
    category_ids = [cid for cid, _ in cats]
    if len(set(category_ids)) != len(category_ids):
        raise CocoFormatError(f"{p}: duplicate category ids")
    cls_of = {cid: i for i, cid in enumerate(category_ids)}
    images: list[CocoImage] = []
    for line, im in raw.items("images"):
        where = f"{p}:{line}"
        if not isinstance(im, dict) or not {"id", "file_name", "width", "height"} <= set(im):
            raise CocoFormatError(f"{where}: image needs 'id', 'file_name', 'width' and 'height'")
        images.append(
            CocoImage(
                id=_int(im["id"], "image id", where),
                file_name=str(im["file_name"]),
                width=_int(im["width"], "width", where),
                height=_int(im["height"], "height", where),
                line=line,
            )
        )
    ids = {im.id for im in images}
    if len(ids) != len(images):
        raise CocoFormatError(f"{p}: duplicate image ids")
    per: dict[int, tuple[list[list[float]], list[int]]] = {}
    for line, a in raw.items("annotations"):
        where = f"{p}:{line}"
        if not isinstance(a, dict) or not {"image_id", "category_id", "bbox"} <= set(a):
            raise CocoFormatError(f"{where}: annotation needs 'image_id', 'category_id' and 'bbox'")
        if a.get("iscrowd", 0):
            continue
        iid = _int(a["image_id"], "image_id", where)
        cid = _int(a["category_id"], "category_id", where)
        if iid not in ids:
            raise CocoFormatError(f"{where}: image_id {iid} is not in 'images'")
        if cid not in cls_of:
            raise CocoFormatError(f"{where}: category_id {cid} is not in 'categories'")
        bb = a["bbox"]
        if not isinstance(bb, list) or len(bb) != 4 or not all(isinstance(v, (int, float)) for v in bb):
            raise CocoFormatError(f"{where}: bbox must be [x, y, w, h] numbers, got {bb!r}")
        x, y, w, h = (float(v) for v in bb)
        boxes, classes = per.setdefault(iid, ([], []))
        boxes.append([x, y, x + w, y + h])
        classes.append(cls_of[cid])
    out = {iid: (np.asarray(b, np.float64).reshape(-1, 4), np.asarray(c, np.int64)) for iid, (b, c) in per.items()}
    img_dir = Path(image_dir) if image_dir is not None else guess_image_dir(p, [im.file_name for im in images])
    return CocoDataset(
        path=p,
        images=images,
        names=[name for _, name in cats],
        category_ids=category_ids,
        boxes=out,
        image_dir=img_dir,
    )


@dataclass
class CocoWriter:
    """Accumulates images and boxes, then writes one COCO file. Category id = class index + 1."""

    names: Sequence[str]
    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def add_image(self, file_name: str, size_wh: Sequence[int], xyxy: Any, class_id: Any) -> int:
        """Add one image with its pixel boxes; returns the new image id."""
        image_id = len(self.images) + 1
        self.images.append(
            {"id": image_id, "file_name": file_name, "width": int(size_wh[0]), "height": int(size_wh[1])}
        )
        box = np.asarray(xyxy, np.float64).reshape(-1, 4)
        cls = np.asarray(class_id, np.int64).reshape(-1)
        if cls.shape[0] != box.shape[0]:
            raise ValueError(f"class_id has {cls.shape[0]} rows but xyxy has {box.shape[0]}")
        for (x1, y1, x2, y2), c in zip(box, cls, strict=True):
            if not 0 <= c < len(self.names):
                raise ValueError(f"{file_name}: class id {int(c)} outside names (0..{len(self.names) - 1})")
            w, h = float(x2 - x1), float(y2 - y1)
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(c) + 1,
                    "bbox": [float(x1), float(y1), w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        return image_id

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "info": {"description": "written by flockid"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": i + 1, "name": n, "supercategory": "bird"} for i, n in enumerate(self.names)],
        }
        # One element per line: small diffs and useful line numbers in validate messages.
        parts = ["{"]
        parts.append(f'"info": {json.dumps(data["info"])},')
        for k in ("images", "annotations", "categories"):
            rows = data[k]
            parts.append(f'"{k}": [')
            parts.append(",\n".join(json.dumps(r) for r in rows))
            parts.append("]" + ("," if k != "categories" else ""))
        parts.append("}")
        p.write_text("\n".join(parts) + "\n")
        return p


def write_coco(
    path: str | Path,
    names: Sequence[str],
    records: Sequence[tuple[str, Sequence[int], Any, Any]],
) -> Path:
    """Write a COCO file from (file_name, size_wh, xyxy, class_id) records."""
    w = CocoWriter(names=list(names))
    for file_name, size_wh, xyxy, cls in records:
        w.add_image(file_name, size_wh, xyxy, cls)
    return w.write(path)
