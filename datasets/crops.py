"""Cut a re-ID crop dataset out of labelled frames (`flockid data crops DATA OUT`).

Sources: a YOLO dataset whose class ids are individual birds (names = bird names, the way people label
named birds), or MOT sequences (track ids are the identities). Two protocols:
  identity: OUT/train/<name>/ for some birds, OUT/query/<name>/ + OUT/gallery/<name>/ for the others,
            so evaluation never sees a bird the model trained on (open-set re-ID).
  time:     OUT/enrol/<name>/ from each bird's earlier frames, OUT/later/<name>/ from its later ones
            (closed-set: enrol every bird, then recognise it later).
"Earlier" is frame order for MOT and image path order for YOLO (name frames by time).
A `crops.csv` manifest records where every crop came from.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets.formats import mot as mot_fmt
from datasets.formats import yolo as yolo_fmt

SPLIT_BY = ("identity", "time")
Progress = Callable[..., Iterable[Any]]


def _no_progress(items: Iterable[Any], **_: Any) -> Iterable[Any]:
    return items


@dataclass(frozen=True)
class CropRecord:
    identity: str
    order: tuple[str, int, int]  # time order: (source, frame/0, box index)
    file: str  # staged file name
    source: str
    frame: int
    xyxy: tuple[float, float, float, float]


def _safe(name: str) -> str:
    s = re.sub(r"[^\w.\-]+", "_", name.strip()).strip("._")
    return s or "unnamed"


def _identity_names(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        s = _safe(n)
        out.append(s if s not in out else f"{s}_{i}")
    return out


def _cut(img: np.ndarray, xyxy: npt.NDArray[np.float64], pad: float) -> np.ndarray:
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    a, b = max(0, round(x1 - px)), max(0, round(y1 - py))
    c, d = min(w, round(x2 + px)), min(h, round(y2 + py))
    return img[b:d, a:c]


# (source name, frame or 0, BGR image, pixel xyxy (N, 4), identity per box)
Frame = tuple[str, int, np.ndarray, Any, list[str]]


def _yolo_frames(path: Path) -> tuple[int, Callable[[], Iterator[Frame]]]:
    import cv2

    ds = yolo_fmt.read_data_yaml(path)
    images = ds.images()
    idn = _identity_names(ds.names)

    def gen() -> Iterator[Frame]:
        for img_path in images:
            img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"{img_path}: cannot decode image; run `flockid data validate` first")
            xyxy, cls = yolo_fmt.read_labels(yolo_fmt.label_path_for(img_path), (img.shape[1], img.shape[0]))
            if cls.size and cls.max() >= len(idn):
                raise ValueError(f"{yolo_fmt.label_path_for(img_path)}: class id {int(cls.max())} has no name")
            try:
                src = img_path.resolve().relative_to(ds.root).as_posix()
            except ValueError:
                src = str(img_path)
            yield src, 0, img, xyxy, [idn[int(c)] for c in cls]

    return len(images), gen


def _mot_frames(path: Path) -> tuple[int, Callable[[], Iterator[Frame]]]:
    p = path
    if p.is_file():
        p = p.parent if p.name == "seqinfo.ini" else p.parent.parent
    seqs = [p] if (p / "gt" / "gt.txt").is_file() else sorted(c for c in p.iterdir() if (c / "gt" / "gt.txt").is_file())
    if not seqs:
        raise FileNotFoundError(f"{path}: no MOT sequence with gt/gt.txt")
    tables = {s: mot_fmt.read_gt(s / "gt" / "gt.txt") for s in seqs}
    tables = {s: t.select(t.confidence != 0) for s, t in tables.items()}
    total = sum(len(t.frames) for t in tables.values())
    prefix = len(seqs) > 1

    def gen() -> Iterator[Frame]:
        for s in seqs:
            t = tables[s]
            wanted = set(t.frames)
            for fr, img in mot_fmt.iter_sequence_frames(s):
                if fr not in wanted:
                    continue
                rows = t.at_frame(fr)
                ids = [f"{s.name}_track{int(k):05d}" if prefix else f"track{int(k):05d}" for k in rows.track_id]
                yield s.name, fr, img, rows.xyxy, ids

    return total, gen


def make_crops(
    data: str | Path,
    out: str | Path,
    *,
    split_by: str = "identity",
    query_frac: float = 0.2,
    train_frac: float = 0.5,
    enrol_frac: float = 0.5,
    min_size: int = 16,
    pad: float = 0.1,
    seed: int = 0,
    fmt: str | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Write the crop dataset; returns counts for the summary table."""
    import cv2

    from datasets.validate import detect_format

    if split_by not in SPLIT_BY:
        raise ValueError(f"unknown split_by {split_by!r}; valid: {', '.join(SPLIT_BY)}")
    for name, v in (("query_frac", query_frac), ("train_frac", train_frac), ("enrol_frac", enrol_frac)):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {v}")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1 px, got {min_size}")
    if not 0.0 <= pad <= 1.0:
        raise ValueError(f"pad must be in [0, 1] (fraction of the box size), got {pad}")
    src = Path(data)
    out_p = Path(out)
    if out_p.exists() and any(out_p.iterdir()):
        raise FileExistsError(f"{out_p}: output folder is not empty")
    fmt = fmt or detect_format(src)
    if fmt == "yolo":
        total, frames = _yolo_frames(src)
    elif fmt == "mot":
        total, frames = _mot_frames(src)
    else:
        raise ValueError(f"crops reads yolo or mot datasets, got {fmt!r}")

    # Pass 1: cut every crop into a staging dir (decode each frame once), then assign splits and move.
    stage = out_p / ".staging"
    records: list[CropRecord] = []
    skipped_small = 0
    counter = 0
    for source, fr, img, xyxy, ids in progress(frames(), total=total, description="cutting crops"):
        for k, (box, ident) in enumerate(zip(np.asarray(xyxy).reshape(-1, 4), ids, strict=True)):
            if min(box[2] - box[0], box[3] - box[1]) < min_size:
                skipped_small += 1
                continue
            crop = _cut(img, box, pad)
            if crop.size == 0:
                skipped_small += 1
                continue
            counter += 1
            stem = _safe(Path(source).with_suffix("").as_posix().replace("/", "_"))
            fname = f"{stem}_{fr:06d}_{k:03d}.jpg" if fr else f"{stem}_{k:03d}.jpg"
            dst = stage / ident / fname
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(dst), crop):
                raise OSError(f"{dst}: cannot write crop")
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append(CropRecord(ident, (source, fr, k), fname, source, fr, (x1, y1, x2, y2)))
    by_id: dict[str, list[CropRecord]] = {}
    for r in records:
        by_id.setdefault(r.identity, []).append(r)
    for rs in by_id.values():
        rs.sort(key=lambda r: r.order)
    rng = np.random.default_rng(seed)
    assign: dict[str, list[tuple[str, CropRecord]]] = {}
    stats: dict[str, Any] = {
        "source_format": fmt,
        "split_by": split_by,
        "identities": len(by_id),
        "crops": len(records),
        "skipped_small": skipped_small,
    }
    if split_by == "identity":
        ids = sorted(by_id)
        eligible = [i for i in ids if len(by_id[i]) >= 2]
        order = [eligible[j] for j in rng.permutation(len(eligible))]
        n_eval = round(len(ids) * (1 - train_frac))
        n_eval = min(n_eval, len(eligible), max(len(ids) - 1, 0))
        if len(ids) >= 2:
            n_eval = max(n_eval, 1 if eligible else 0)
        eval_ids = set(order[:n_eval])
        for i in ids:
            rs = by_id[i]
            if i not in eval_ids:
                assign.setdefault("train", []).extend((i, r) for r in rs)
                continue
            n_q = min(max(1, round(query_frac * len(rs))), len(rs) - 1)
            q_idx = set(rng.choice(len(rs), size=n_q, replace=False).tolist())
            for j, r in enumerate(rs):
                assign.setdefault("query" if j in q_idx else "gallery", []).append((i, r))
        stats.update({"train_identities": len(ids) - len(eval_ids), "eval_identities": len(eval_ids)})
    else:
        single = 0
        for i in sorted(by_id):
            rs = by_id[i]
            if len(rs) < 2:
                single += 1
            n_e = max(1, int(enrol_frac * len(rs)))
            n_e = min(n_e, len(rs) - 1) if len(rs) >= 2 else 1
            for j, r in enumerate(rs):
                assign.setdefault("enrol" if j < n_e else "later", []).append((i, r))
        stats["enrol_only_identities"] = single
    rows = []
    for split, items in assign.items():
        for ident, r in items:
            dst = out_p / split / ident / r.file
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / ident / r.file, dst)
            rows.append([split, ident, f"{split}/{ident}/{r.file}", r.source, r.frame, *(f"{v:.2f}" for v in r.xyxy)])
        stats[f"{split}_crops"] = len(items)
        stats[f"{split}_ids"] = len({i for i, _ in items})
    shutil.rmtree(stage, ignore_errors=True)
    out_p.mkdir(parents=True, exist_ok=True)
    with (out_p / "crops.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "identity", "file", "source", "frame", "x1", "y1", "x2", "y2"])
        w.writerows(sorted(rows))
    stats["out"] = str(out_p)
    return stats
