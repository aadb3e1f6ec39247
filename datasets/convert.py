"""Convert between YOLO, COCO and MOTChallenge datasets (`flockid data convert SRC DST --to FMT`).

Everything goes through one in-memory sample stream (image + pixel xyxy boxes + 0-based class ids +
optional track ids), so each format needs one reader and one writer, not one converter per pair.
Layouts written:
  yolo: DST/images/<split>/<name>, DST/labels/<split>/<stem>.txt, DST/data.yaml
  coco: DST/annotations/instances_<split>.json, DST/images/<split>/<name> (file_name = "<split>/<name>")
  mot:  DST/<sequence>/{img1/000001.jpg, gt/gt.txt, seqinfo.ini} (one sequence per source split or sequence)
MOT class c is class id c-1 (MOT is 1-based); MOT gt rows with conf 0 (MOT's "ignore this box") are dropped.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets.formats import coco as coco_fmt
from datasets.formats import mot as mot_fmt
from datasets.formats import yolo as yolo_fmt

FORMATS = ("yolo", "coco", "mot")
Progress = Callable[..., Iterable[Any]]


def _no_progress(items: Iterable[Any], **_: Any) -> Iterable[Any]:
    return items


@dataclass
class Sample:
    """One image and its boxes. Exactly one of `path` (copy the file) or `image` (encode it) is set."""

    split: str
    group: str  # MOT sequence this frame belongs to (the split for YOLO/COCO sources)
    name: str  # output file name, posix, unique within the split
    size_wh: tuple[int, int]
    xyxy: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64] | None = None
    path: Path | None = None
    image: np.ndarray | None = None
    order: int = 0  # position within the group (frame number for MOT sources)


@dataclass
class Source:
    format: str
    names: list[str]
    count: int
    make_samples: Callable[[], Iterator[Sample]] = field(repr=False)

    def samples(self) -> Iterator[Sample]:
        return self.make_samples()


def _split_name(raw: str) -> str:
    s = raw.lower()
    for pre in ("instances_", "annotations_", "labels_"):
        if s.startswith(pre):
            s = s[len(pre) :]
    if s in ("valid", "validation"):
        return "val"
    return s or "train"


def _unique(name: str, used: set[str]) -> str:
    if name not in used:
        used.add(name)
        return name
    stem, suf = Path(name).stem, Path(name).suffix
    k = 1
    while f"{stem}_{k}{suf}" in used:
        k += 1
    out = f"{stem}_{k}{suf}"
    used.add(out)
    return out


# ---------------------------------------------------------------------------------------------- readers


def read_yolo_source(path: str | Path) -> Source:
    ds = yolo_fmt.read_data_yaml(path)
    count = sum(len(v) for v in ds.splits.values())

    def gen() -> Iterator[Sample]:
        for split, images in ds.splits.items():
            used: set[str] = set()
            for order, img in enumerate(images):
                try:
                    rel = img.resolve().relative_to(ds.root).as_posix()
                except ValueError:
                    rel = img.name
                for prefix in ("images/", f"{split}/"):
                    if rel.startswith(prefix):
                        rel = rel[len(prefix) :]
                size = yolo_fmt.image_size_wh(img)
                xyxy, cls = yolo_fmt.read_labels(yolo_fmt.label_path_for(img), size)
                if cls.size and cls.max() >= len(ds.names):
                    raise yolo_fmt.YoloFormatError(
                        f"{yolo_fmt.label_path_for(img)}: class id {int(cls.max())} outside names "
                        f"(0..{len(ds.names) - 1}); run `flockid data validate` first"
                    )
                yield Sample(split, split, _unique(rel, used), size, xyxy, cls, path=img, order=order)

    return Source("yolo", list(ds.names), count, gen)


def read_coco_source(path: str | Path) -> Source:
    p = Path(path)
    files = [p] if p.is_file() else (sorted((p / "annotations").glob("*.json")) or sorted(p.glob("*.json")))
    if not files:
        raise FileNotFoundError(f"{p}: no COCO .json here or in annotations/")
    sets = [coco_fmt.read_coco(f) for f in files]
    names = sets[0].names
    for s in sets[1:]:
        if s.names != names:
            raise coco_fmt.CocoFormatError(f"{s.path}: categories {s.names} differ from {sets[0].path}: {names}")
    count = sum(len(s.images) for s in sets)

    def gen() -> Iterator[Sample]:
        for s in sets:
            split = "train" if len(sets) == 1 else _split_name(s.path.stem)
            used: set[str] = set()
            for order, im in enumerate(s.images):
                img = s.image_path(im)
                if not img.is_file():
                    raise FileNotFoundError(
                        f"{s.path}:{im.line}: image file {im.file_name!r} not found in {s.image_dir}"
                    )
                xyxy, cls = s.annotations_of(im.id)
                rel = Path(im.file_name).as_posix().lstrip("/")
                if rel.startswith(f"{split}/"):  # our own layout: file_name = "<split>/<name>"
                    rel = rel[len(split) + 1 :]
                name = _unique(rel, used)
                yield Sample(split, split, name, (im.width, im.height), xyxy, cls, path=img, order=order)

    return Source("coco", list(names), count, gen)


def _mot_seqs(p: Path) -> list[Path]:
    if p.is_file():
        return [p.parent if p.name == "seqinfo.ini" else p.parent.parent]
    if (p / "seqinfo.ini").is_file() or (p / "gt").is_dir():
        return [p]
    seqs = sorted(c for c in p.iterdir() if c.is_dir() and (c / "seqinfo.ini").is_file())
    if not seqs:
        raise FileNotFoundError(f"{p}: no MOT sequence (seqinfo.ini) here")
    return seqs


def read_mot_source(path: str | Path, names: Sequence[str] | None = None, split: str = "train") -> Source:
    seqs = _mot_seqs(Path(path))
    tables: dict[Path, mot_fmt.MotTable] = {}
    infos: dict[Path, dict[str, Any]] = {}
    max_cls = 1
    count = 0
    for seq in seqs:
        gt = seq / "gt" / "gt.txt"
        table = mot_fmt.read_gt(gt) if gt.is_file() else mot_fmt.MotTable.empty()
        table = table.select(table.confidence != 0)
        if len(table) and table.class_id.min() < 1:
            raise mot_fmt.MotFormatError(f"{gt}: MOT class ids are 1-based, found {int(table.class_id.min())}")
        tables[seq] = table
        if len(table):
            max_cls = max(max_cls, int(table.class_id.max()))
        infos[seq] = mot_fmt.read_seqinfo(seq) if (seq / "seqinfo.ini").is_file() else {}
        count += int(infos[seq].get("seq_length", 0)) or len(mot_fmt.list_frame_images(seq))
    if names is None:
        names = mot_fmt.read_class_names(seqs[0])
    if names is None:
        names = ["bird"] + [f"class{c}" for c in range(2, max_cls + 1)]
    elif len(names) < max_cls:
        raise ValueError(f"--names has {len(names)} names but the MOT files use classes up to {max_cls}")
    names_l = list(names)

    def gen() -> Iterator[Sample]:
        for seq in seqs:
            table, info = tables[seq], infos[seq]
            images = mot_fmt.list_frame_images(seq)
            if images:
                frames: Iterable[tuple[int, Path | None, np.ndarray | None]] = ((f, q, None) for f, q in images)
            else:
                frames = ((f, None, img) for f, img in mot_fmt.iter_sequence_frames(seq))
            for fr, q, img in frames:
                if img is not None:
                    size = (int(img.shape[1]), int(img.shape[0]))
                elif info:
                    size = (int(info["im_width"]), int(info["im_height"]))
                else:
                    size = yolo_fmt.image_size_wh(q)  # type: ignore[arg-type]
                rows = table.at_frame(fr)
                suffix = q.suffix.lower() if q is not None else ".jpg"
                yield Sample(
                    split,
                    seq.name,
                    f"{seq.name}_{fr:06d}{suffix}",
                    size,
                    rows.xyxy,
                    rows.class_id - 1,
                    track_id=rows.track_id,
                    path=q,
                    image=img,
                    order=fr,
                )

    return Source("mot", names_l, count, gen)


def read_source(path: str | Path, fmt: str | None = None, *, names: Sequence[str] | None = None) -> Source:
    from datasets.validate import detect_format

    fmt = fmt or detect_format(path)
    if names is not None and fmt != "mot":
        raise ValueError(f"names are only for MOT sources (MOT files carry no names); {fmt} brings its own")
    if fmt == "yolo":
        return read_yolo_source(path)
    if fmt == "coco":
        return read_coco_source(path)
    if fmt == "mot":
        return read_mot_source(path, names=names)
    raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")


# ---------------------------------------------------------------------------------------------- writers


def _put_image(sample: Sample, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if sample.path is not None and sample.path.suffix.lower() == dst.suffix.lower():
        shutil.copyfile(sample.path, dst)
        return
    import cv2

    img = sample.image if sample.image is not None else cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{sample.path}: cannot decode image")
    if not cv2.imwrite(str(dst), img):
        raise OSError(f"{dst}: cannot write image")


def _yolo_split(split: str) -> str:
    return split if split in yolo_fmt.SPLITS else "train"


def write_yolo(source: Source, out: str | Path, *, progress: Progress = _no_progress) -> dict[str, Any]:
    root = Path(out)
    seen_splits: list[str] = []
    n_img = n_box = 0
    for s in progress(source.samples(), total=source.count, description="writing yolo"):
        split = _yolo_split(s.split)
        if split not in seen_splits:
            seen_splits.append(split)
        img = root / "images" / split / s.name
        _put_image(s, img)
        yolo_fmt.write_labels(yolo_fmt.label_path_for(img), s.xyxy, s.class_id, s.size_wh)
        n_img += 1
        n_box += len(s.class_id)
    if not seen_splits:
        seen_splits = ["train"]
        (root / "images" / "train").mkdir(parents=True, exist_ok=True)
    train = "images/train" if "train" in seen_splits else f"images/{seen_splits[0]}"
    val = "images/val" if "val" in seen_splits else train
    test = "images/test" if "test" in seen_splits else None
    yolo_fmt.write_data_yaml(root, source.names, train, val, test)
    return {"to": "yolo", "images": n_img, "boxes": n_box, "splits": ",".join(seen_splits), "out": str(root)}


def write_coco(source: Source, out: str | Path, *, progress: Progress = _no_progress) -> dict[str, Any]:
    root = Path(out)
    writers: dict[str, coco_fmt.CocoWriter] = {}
    n_img = n_box = 0
    for s in progress(source.samples(), total=source.count, description="writing coco"):
        w = writers.setdefault(s.split, coco_fmt.CocoWriter(names=source.names))
        file_name = f"{s.split}/{s.name}"
        _put_image(s, root / "images" / file_name)
        w.add_image(file_name, s.size_wh, s.xyxy, s.class_id)
        n_img += 1
        n_box += len(s.class_id)
    if not writers:
        writers["train"] = coco_fmt.CocoWriter(names=source.names)
    for split, w in writers.items():
        w.write(root / "annotations" / f"instances_{split}.json")
    return {"to": "coco", "images": n_img, "boxes": n_box, "splits": ",".join(writers), "out": str(root)}


def write_mot(
    source: Source, out: str | Path, *, frame_rate: float = 25.0, progress: Progress = _no_progress
) -> dict[str, Any]:
    """One MOT sequence per group. Frames keep source order; boxes without a track id get a fresh id each
    (YOLO/COCO carry no identity), so the result is valid MOT but has one-frame tracks."""
    root = Path(out)
    state: dict[str, dict[str, Any]] = {}
    n_box = 0
    for s in progress(source.samples(), total=source.count, description="writing mot"):
        st = state.setdefault(s.group, {"frame": 0, "size": s.size_wh, "rows": [], "next_id": 1, "ext": ".jpg"})
        if s.size_wh != st["size"]:
            raise ValueError(
                f"{s.path or s.name}: {s.size_wh[0]}x{s.size_wh[1]} differs from the sequence's "
                f"{st['size'][0]}x{st['size'][1]}; a MOT sequence needs one frame size"
            )
        st["frame"] += 1
        fr = st["frame"]
        _put_image(s, root / s.group / "img1" / f"{fr:06d}.jpg")
        if s.track_id is not None:
            tid = s.track_id
        else:
            tid = np.arange(st["next_id"], st["next_id"] + len(s.class_id), dtype=np.int64)
        if len(tid):
            st["next_id"] = max(st["next_id"], int(tid.max()) + 1)
        st["rows"].append((np.full(len(tid), fr), tid, s.xyxy, s.class_id + 1))
        n_box += len(tid)
    for group, st in state.items():
        rows = st["rows"]
        fr = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        tid = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.int64)
        xyxy = np.concatenate([r[2] for r in rows]) if rows else np.zeros((0, 4))
        cls = np.concatenate([r[3] for r in rows]) if rows else np.zeros(0, np.int64)
        seq = root / group
        mot_fmt.write_gt(seq / "gt" / "gt.txt", fr, tid, xyxy, np.ones(len(fr)), class_id=cls)
        w, h = st["size"]
        mot_fmt.write_seqinfo(seq, name=group, frame_rate=frame_rate, seq_length=st["frame"], im_width=w, im_height=h)
        mot_fmt.write_class_names(seq, list(source.names))
    return {
        "to": "mot",
        "images": sum(st["frame"] for st in state.values()),
        "boxes": n_box,
        "sequences": ",".join(state),
        "out": str(root),
    }


def convert(
    src: str | Path,
    dst: str | Path,
    to: str,
    *,
    src_format: str | None = None,
    names: Sequence[str] | None = None,
    frame_rate: float = 25.0,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Convert SRC (auto-detected format unless src_format) into DST in format `to`; returns counts."""
    if to not in FORMATS:
        raise ValueError(f"unknown target format {to!r}; valid: {', '.join(FORMATS)}")
    dst_p = Path(dst)
    if dst_p.exists() and any(dst_p.iterdir()):
        raise FileExistsError(f"{dst_p}: output folder is not empty")
    source = read_source(src, src_format, names=names)
    if to == "yolo":
        result = write_yolo(source, dst_p, progress=progress)
    elif to == "coco":
        result = write_coco(source, dst_p, progress=progress)
    else:
        result = write_mot(source, dst_p, frame_rate=frame_rate, progress=progress)
    return {"from": source.format, **result, "classes": len(source.names)}
