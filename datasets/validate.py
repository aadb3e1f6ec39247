"""Find every problem in a user's dataset (YOLO, COCO or MOTChallenge), each with its file and line.

Nothing here stops at the first problem: the point is one run that lists all of them. Errors are things
that make training or evaluation wrong (a box outside the image, a class id with no name, an image that
does not decode); warnings are legal but suspicious (an image with no label file is an empty frame).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from datasets.formats import coco as coco_fmt
from datasets.formats import mot as mot_fmt
from datasets.formats import yolo as yolo_fmt

T = TypeVar("T")
Progress = Callable[..., Iterable[Any]]

FORMATS = ("yolo", "coco", "mot")
DUP_IOU = 0.95
NORM_TOL = 1e-3  # normalised overshoot tolerated as rounding
PIX_TOL = 0.5  # pixel overshoot tolerated as rounding


@dataclass(frozen=True)
class Issue:
    path: str
    line: int  # 1-based; 0 when the problem is the whole file
    severity: str  # "error" | "warning"
    code: str
    message: str

    def format(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class ValidationReport:
    format: str
    root: str
    issues: list[Issue] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, path: Path | str, line: int, code: str, message: str) -> None:
        self.issues.append(Issue(str(path), int(line), "error", code, message))

    def warning(self, path: Path | str, line: int, code: str, message: str) -> None:
        self.issues.append(Issue(str(path), int(line), "warning", code, message))

    def summary(self) -> dict[str, Any]:
        """Counts for the summary table: problems by code, and the dataset stats."""
        by_code = Counter(f"{i.severity}:{i.code}" for i in self.issues)
        return {
            "format": self.format,
            "root": self.root,
            **{k: v for k, v in self.stats.items() if not isinstance(v, dict)},
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": dict(sorted(by_code.items())),
            **{k: v for k, v in self.stats.items() if isinstance(v, dict)},
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "ok": self.ok, "issues": [asdict(i) for i in self.issues]}


def _no_progress(items: Iterable[T], **_: Any) -> Iterable[T]:
    return items


def _iou_matrix(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def duplicate_pairs(
    xyxy: npt.NDArray[np.float64], group: Sequence[int] | npt.NDArray[np.int64], thr: float = DUP_IOU
) -> list[tuple[int, int, float]]:
    """(i, j, iou) for each box i that duplicates an earlier box j of the same group (IoU > thr)."""
    box = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if box.shape[0] < 2:
        return []
    g = np.asarray(group).reshape(-1)
    iou = _iou_matrix(box, box)
    # Vectorised: a dense flock has hundreds of boxes per frame and thousands of frames.
    hit = (iou > thr) & (g[:, None] == g[None, :]) & np.tri(len(g), k=-1, dtype=bool)
    rows = np.flatnonzero(hit.any(axis=1))
    first = hit[rows].argmax(axis=1)
    return [(int(i), int(j), float(iou[i, j])) for i, j in zip(rows, first, strict=True)]


def _decode(path: Path) -> tuple[int, int] | None:
    """(w, h) of an image that actually decodes, else None."""
    import cv2

    try:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    return int(img.shape[1]), int(img.shape[0])


# --------------------------------------------------------------------------------------------- detection


def detect_format(path: str | Path) -> str:
    """'yolo', 'coco' or 'mot' from what is on disk; ValueError saying what was looked for."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_file():
        suf = p.suffix.lower()
        if suf in (".yaml", ".yml"):
            return "yolo"
        if suf == ".json":
            return "coco"
        if p.name == "seqinfo.ini" or (suf == ".txt" and p.parent.name == "gt"):
            return "mot"
        raise ValueError(f"{p}: cannot tell the format from this file; pass --format {'|'.join(FORMATS)}")
    if (p / "seqinfo.ini").is_file() or (p / "gt" / "gt.txt").is_file():
        return "mot"
    if any(p.glob("*.yaml")) or any(p.glob("*.yml")):
        return "yolo"
    if any(p.glob("*.json")) or any((p / "annotations").glob("*.json")):
        return "coco"
    if any((c / "seqinfo.ini").is_file() for c in p.iterdir() if c.is_dir()):
        return "mot"
    if (p / "labels").is_dir() or (p / "images").is_dir():
        return "yolo"
    raise ValueError(f"{p}: found no data.yaml, COCO json or MOT seqinfo.ini; pass --format {'|'.join(FORMATS)}")


def validate(path: str | Path, fmt: str | None = None, *, progress: Progress | None = None) -> ValidationReport:
    """Validate a dataset; `fmt` None = auto-detect. Never raises for problems in the data itself."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    prog: Progress = progress or _no_progress
    if fmt == "yolo":
        return validate_yolo(path, progress=prog)
    if fmt == "coco":
        return validate_coco(path, progress=prog)
    return validate_mot(path, progress=prog)


# -------------------------------------------------------------------------------------------------- YOLO


def _yaml_key_line(yaml_path: Path, key: str) -> int:
    try:
        for n, raw in enumerate(yaml_path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if raw.startswith(f"{key}:"):
                return n
    except OSError:
        pass
    return 0


def validate_yolo_labels(
    label_path: Path, nc: int | None, names: Sequence[str], report: ValidationReport, per_class: Counter[str]
) -> int:
    """Check one label file line by line; returns the number of boxes it holds."""
    try:
        lines = label_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.error(label_path, 0, "unreadable-label", f"cannot read label file: {exc}")
        return 0
    good_boxes: list[tuple[float, float, float, float]] = []
    good_cls: list[int] = []
    good_lines: list[int] = []
    n_boxes = 0
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        n_boxes += 1
        try:
            c, cx, cy, w, h = yolo_fmt.parse_label_line(text)
        except ValueError as exc:
            report.error(label_path, lineno, "malformed", f"malformed line {text!r}: {exc}")
            continue
        bad = False
        if c < 0 or (nc is not None and c >= nc):
            rng = f"0..{nc - 1}" if nc else "none defined"
            report.error(label_path, lineno, "bad-class", f"class id {c} outside names ({rng})")
            bad = True
        else:
            per_class[names[c] if c < len(names) else str(c)] += 1
        outside = [f"{k}={v:g}" for k, v in (("cx", cx), ("cy", cy), ("w", w), ("h", h)) if not 0.0 <= v <= 1.0]
        if w <= 0 or h <= 0:
            report.error(label_path, lineno, "bad-size", f"zero or negative box size (w={w:g}, h={h:g})")
            bad = True
        elif outside:
            report.error(
                label_path,
                lineno,
                "out-of-range",
                f"normalised coordinate outside [0, 1]: {', '.join(outside)}",
            )
            bad = True
        else:
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            if x1 < -NORM_TOL or y1 < -NORM_TOL or x2 > 1 + NORM_TOL or y2 > 1 + NORM_TOL:
                report.error(
                    label_path,
                    lineno,
                    "out-of-range",
                    f"box extends past the image edge (x1={x1:.4f}, y1={y1:.4f}, x2={x2:.4f}, y2={y2:.4f})",
                )
                bad = True
        if not bad:
            good_boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            good_cls.append(c)
            good_lines.append(lineno)
    for i, j, iou in duplicate_pairs(np.asarray(good_boxes, np.float64), good_cls):
        kind = "exact duplicate" if iou > 1 - 1e-9 else f"near duplicate (IoU {iou:.3f})"
        report.error(label_path, good_lines[i], "duplicate", f"{kind} of line {good_lines[j]} (same class)")
    return n_boxes


def _check_split_overlap(ds: yolo_fmt.YoloDataset, report: ValidationReport) -> None:
    """Images shared by two splits: the model is evaluated on what it trained on."""
    resolved = {k: {q.resolve() for q in v} for k, v in ds.splits.items()}
    names = list(resolved)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = resolved[a] & resolved[b]
            if shared:
                yaml_path = ds.yaml_path or Path(ds.root)
                report.warning(
                    yaml_path,
                    _yaml_key_line(yaml_path, b),
                    "split-overlap",
                    f"{len(shared)} of {len(resolved[b])} {b} images are also in {a} (evaluating on training data)",
                )


def _image_dir_for_label_dir(label_dir: Path) -> Path:
    s = str(label_dir) + "/"
    if "/labels/" in s:
        head, tail = s.rsplit("/labels/", 1)
        return Path((head + "/images/" + tail).rstrip("/"))
    return label_dir


def validate_yolo(path: str | Path, *, progress: Progress = _no_progress) -> ValidationReport:
    p = Path(path)
    report = ValidationReport(format="yolo", root=str(p))
    names: list[str] = []
    nc: int | None = None
    images: list[Path]
    yaml_path: Path | None = None
    if p.is_file() or any(p.glob("*.yaml")) or any(p.glob("*.yml")):
        try:
            ds = yolo_fmt.read_data_yaml(p)
        except (yolo_fmt.YoloFormatError, FileNotFoundError, OSError) as exc:
            yaml_path = p if p.is_file() else p / "data.yaml"
            msg = str(exc)
            prefix = f"{yaml_path}: "
            msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
            line = _yaml_key_line(yaml_path, "names") if "names" in msg else 0
            report.error(yaml_path, line, "yaml", msg)
            return report
        names, nc, yaml_path = ds.names, len(ds.names), ds.yaml_path
        report.root = str(ds.root)
        images = ds.images()
        for split, paths in ds.splits.items():
            report.stats[f"images_{split}"] = len(paths)
        _check_split_overlap(ds, report)
    else:
        report.warning(p, 0, "no-yaml", "no data.yaml: class ids are not checked against names")
        images = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in yolo_fmt.IMAGE_EXTS)
    per_class: Counter[str] = Counter()
    n_boxes = n_labels = n_empty = n_bad_img = 0
    expected_labels: set[Path] = set()
    label_dirs: set[Path] = set()
    for img in progress(images, description="validating images"):
        lab = yolo_fmt.label_path_for(img)
        expected_labels.add(lab.resolve())
        label_dirs.add(lab.parent)
        if not img.is_file():
            report.error(img, 0, "missing-image", "image listed in the split does not exist")
            n_bad_img += 1
        elif _decode(img) is None:
            report.error(img, 0, "unreadable-image", "image file cannot be decoded (corrupt or not an image)")
            n_bad_img += 1
        if not lab.is_file():
            report.warning(img, 0, "missing-label", f"no label file {lab.name}; counted as an empty frame (negative)")
            n_empty += 1
            continue
        n_labels += 1
        got = validate_yolo_labels(lab, nc, names, report, per_class)
        n_empty += got == 0
        n_boxes += got
    # Label files whose image is gone: usually a rename or a deleted frame, and their boxes are lost.
    orphans = 0
    for d in sorted(label_dirs):
        if not d.is_dir():
            continue
        img_dir = _image_dir_for_label_dir(d)
        for lab in sorted(d.glob("*.txt")):
            if lab.name == "classes.txt" or lab.resolve() in expected_labels:
                continue
            stem_imgs = [img_dir / (lab.stem + ext) for ext in yolo_fmt.IMAGE_EXTS]
            if not any(q.is_file() for q in stem_imgs):
                report.error(lab, 0, "orphan-label", f"label file has no image ({lab.stem}.* not in {img_dir})")
                orphans += 1
    report.stats.update(
        {
            "classes": nc if nc is not None else "-",
            "images": len(images),
            "unreadable_images": n_bad_img,
            "label_files": n_labels,
            "empty_frames": n_empty,
            "boxes": n_boxes,
            "orphan_labels": orphans,
            "boxes_per_class": dict(sorted(per_class.items())),
        }
    )
    return report


# -------------------------------------------------------------------------------------------------- COCO


def _coco_files(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    files = sorted((p / "annotations").glob("*.json")) or sorted(p.glob("*.json"))
    return files


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _is_int(v: Any) -> bool:
    return _is_num(v) and float(v) == int(v)


def validate_coco(path: str | Path, *, progress: Progress = _no_progress) -> ValidationReport:
    p = Path(path)
    report = ValidationReport(format="coco", root=str(p))
    files = _coco_files(p)
    if not files:
        report.error(p, 0, "missing", "no COCO .json file here or in annotations/")
        return report
    totals: Counter[str] = Counter()
    per_class: Counter[str] = Counter()
    for f in files:
        _validate_coco_file(f, report, totals, per_class, progress)
    report.stats.update({**totals, "files": len(files), "boxes_per_class": dict(sorted(per_class.items()))})
    return report


def _validate_coco_file(
    f: Path, report: ValidationReport, totals: Counter[str], per_class: Counter[str], progress: Progress
) -> None:
    try:
        raw = coco_fmt.load_raw(f)
    except coco_fmt.CocoFormatError as exc:
        msg = str(exc)
        line = int(msg.split(":")[1]) if msg.count(":") >= 2 and msg.split(":")[1].isdigit() else 0
        report.error(f, line, "json", msg.split(": ", 1)[1] if ": " in msg else msg)
        return
    except (OSError, UnicodeDecodeError) as exc:
        report.error(f, 0, "json", f"cannot read: {exc}")
        return
    for sec in ("images", "annotations", "categories"):
        if not isinstance(raw.data.get(sec), list):
            report.error(f, 1, "schema", f"missing or non-list '{sec}'")
    cats: dict[int, str] = {}
    for line, c in raw.items("categories"):
        if not isinstance(c, dict) or not _is_int(c.get("id")) or "name" not in c:
            report.error(f, line, "schema", "category needs an integer 'id' and a 'name'")
            continue
        cid = int(c["id"])
        if cid in cats:
            report.error(f, line, "duplicate-id", f"category id {cid} used twice")
            continue
        cats[cid] = str(c["name"])
    image_items = raw.items("images")
    file_names = [str(im.get("file_name")) for _, im in image_items if isinstance(im, dict)]
    img_dir = coco_fmt.guess_image_dir(f, file_names)
    # No image found at all is one layout problem, not N missing files.
    no_images = len(file_names) > 1 and not any((img_dir / n).is_file() for n in file_names)
    if no_images:
        report.error(f, 0, "missing-image", f"none of the {len(file_names)} image files found (looked in {img_dir})")
    sizes: dict[int, tuple[int, int]] = {}
    image_line: dict[int, int] = {}
    n_bad = len(file_names) if no_images else 0
    for line, im in progress(image_items, description=f"validating {f.name} images"):
        need = ("id", "file_name", "width", "height")
        if not isinstance(im, dict) or not all(k in im for k in need):
            report.error(f, line, "schema", "image needs 'id', 'file_name', 'width' and 'height'")
            continue
        if not (_is_int(im["id"]) and _is_int(im["width"]) and _is_int(im["height"])):
            report.error(f, line, "schema", "image 'id', 'width' and 'height' must be integers")
            continue
        iid, w, h = int(im["id"]), int(im["width"]), int(im["height"])
        if iid in sizes:
            report.error(f, line, "duplicate-id", f"image id {iid} used twice (first at line {image_line[iid]})")
            continue
        if w <= 0 or h <= 0:
            report.error(f, line, "bad-size", f"image size {w}x{h} is not positive")
        sizes[iid], image_line[iid] = (w, h), line
        img = img_dir / str(im["file_name"])
        if no_images:
            continue
        if not img.is_file():
            report.error(f, line, "missing-image", f"image file {im['file_name']!r} not found in {img_dir}")
            n_bad += 1
            continue
        got = _decode(img)
        if got is None:
            report.error(img, 0, "unreadable-image", "image file cannot be decoded (corrupt or not an image)")
            n_bad += 1
        elif got != (w, h):
            report.error(f, line, "size-mismatch", f"declared {w}x{h} but {im['file_name']} is {got[0]}x{got[1]}")
    ann_ids: dict[int, int] = {}
    per_image: dict[tuple[int, int], list[tuple[int, tuple[float, float, float, float]]]] = {}
    n_boxes = 0
    for line, a in raw.items("annotations"):
        if not isinstance(a, dict):
            report.error(f, line, "schema", "annotation must be an object")
            continue
        n_boxes += 1
        if _is_int(a.get("id")):
            aid = int(a["id"])
            if aid in ann_ids:
                report.error(f, line, "duplicate-id", f"annotation id {aid} used twice (first at line {ann_ids[aid]})")
            else:
                ann_ids[aid] = line
        img_ref: Any = a.get("image_id")
        cat_ref: Any = a.get("category_id")
        bb: Any = a.get("bbox")
        bad = False
        if not _is_int(img_ref) or int(img_ref) not in sizes:
            report.error(f, line, "dangling-image-id", f"image_id {img_ref!r} is not in 'images'")
            bad = True
        if not _is_int(cat_ref) or int(cat_ref) not in cats:
            report.error(f, line, "dangling-category-id", f"category_id {cat_ref!r} is not in 'categories'")
            bad = True
        else:
            per_class[cats[int(cat_ref)]] += 1
        if not isinstance(bb, list) or len(bb) != 4 or not all(_is_num(v) for v in bb):
            report.error(f, line, "malformed", f"bbox must be [x, y, w, h] numbers, got {bb!r}")
            continue
        bx, by, bw, bh = (float(v) for v in bb)
        if bw <= 0 or bh <= 0:
            report.error(f, line, "bad-size", f"bbox has zero or negative size (w={bw:g}, h={bh:g})")
            continue
        if bad:
            continue
        W, H = sizes[int(img_ref)]
        if bx < -PIX_TOL or by < -PIX_TOL or bx + bw > W + PIX_TOL or by + bh > H + PIX_TOL:
            report.error(f, line, "outside-image", f"bbox [{bx:g}, {by:g}, {bw:g}, {bh:g}] outside the {W}x{H} image")
            continue
        if not a.get("iscrowd", 0):
            key = (int(img_ref), int(cat_ref))
            per_image.setdefault(key, []).append((line, (bx, by, bx + bw, by + bh)))
    for rows in per_image.values():
        box = np.asarray([b for _, b in rows], np.float64)
        for i, j, iou in duplicate_pairs(box, np.zeros(len(rows), np.int64)):
            kind = "exact duplicate" if iou > 1 - 1e-9 else f"near duplicate (IoU {iou:.3f})"
            report.error(f, rows[i][0], "duplicate", f"{kind} of the annotation at line {rows[j][0]}")
    totals["images"] += len(image_items)
    totals["unreadable_images"] += n_bad
    totals["boxes"] += n_boxes
    totals["categories"] += len(cats)


# --------------------------------------------------------------------------------------------------- MOT


def _mot_seq_dirs(p: Path) -> list[Path]:
    if p.is_file():
        return [p.parent if p.name == "seqinfo.ini" else p.parent.parent]
    if (p / "seqinfo.ini").is_file() or (p / "gt").is_dir():
        return [p]
    return sorted(c for c in p.iterdir() if c.is_dir() and ((c / "seqinfo.ini").is_file() or (c / "gt").is_dir()))


def validate_mot(path: str | Path, *, progress: Progress = _no_progress) -> ValidationReport:
    p = Path(path)
    report = ValidationReport(format="mot", root=str(p))
    seqs = _mot_seq_dirs(p)
    if not seqs:
        report.error(p, 0, "missing", "no MOT sequence (seqinfo.ini or gt/) here")
        return report
    totals: Counter[str] = Counter()
    for seq in seqs:
        _validate_mot_seq(seq, report, totals, progress)
    report.stats.update({**totals, "sequences": len(seqs)})
    return report


def _validate_mot_seq(seq: Path, report: ValidationReport, totals: Counter[str], progress: Progress) -> None:
    info: dict[str, Any] | None = None
    ini = seq / "seqinfo.ini"
    if not ini.is_file():
        report.error(ini, 0, "seqinfo", "missing seqinfo.ini: frame range and image size cannot be checked")
    else:
        try:
            info = mot_fmt.read_seqinfo(ini)
        except (mot_fmt.MotFormatError, ValueError) as exc:
            msg = str(exc)
            report.error(ini, 0, "seqinfo", msg.split(": ", 1)[1] if msg.startswith(str(ini)) else msg)
    n_frames = int(info["seq_length"]) if info else None
    size = (int(info["im_width"]), int(info["im_height"])) if info else None
    # frames: images (decoded) or the video
    images = mot_fmt.list_frame_images(seq)
    if images:
        have = {fr for fr, _ in images}
        if n_frames is not None:
            missing = [fr for fr in range(1, n_frames + 1) if fr not in have]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                report.error(ini, 0, "missing-image", f"{len(missing)} of {n_frames} frame images missing: {shown}")
        for fr, img in progress(images, description=f"validating {seq.name} frames"):
            got = _decode(img)
            if got is None:
                report.error(img, 0, "unreadable-image", f"frame {fr} cannot be decoded (corrupt or not an image)")
                totals["unreadable_images"] += 1
            elif size is not None and got != size:
                report.error(img, 0, "size-mismatch", f"frame is {got[0]}x{got[1]}, seqinfo says {size[0]}x{size[1]}")
        totals["images"] += len(images)
    else:
        video = mot_fmt.find_video(seq)
        if video is None:
            report.error(seq, 0, "missing-image", "no image dir (img1/) and no video file")
        else:
            import cv2

            cap = cv2.VideoCapture(str(video))
            try:
                if not cap.isOpened():
                    report.error(video, 0, "unreadable-image", "video cannot be opened")
                else:
                    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                    ok, _ = cap.read()
                    if not ok:
                        report.error(video, 0, "unreadable-image", "video has no decodable frame")
                    elif n_frames is not None and 0 < count < n_frames:
                        report.error(video, 0, "frame-range", f"video has {count} frames, seqLength is {n_frames}")
                    totals["images"] += count
            finally:
                cap.release()
    gt = seq / "gt" / "gt.txt"
    if not gt.is_file():
        report.warning(gt, 0, "missing-label", "no gt/gt.txt (a test sequence?)")
        return
    seen: dict[tuple[int, int], int] = {}
    per_frame: dict[int, list[tuple[int, int, tuple[float, float, float, float]]]] = {}
    for lineno, raw in enumerate(gt.read_text(encoding="utf-8-sig").splitlines(), 1):
        text = raw.strip()
        if not text:
            continue
        totals["boxes"] += 1
        try:
            fr, tid, x, y, w, h, _conf, cls, vis = mot_fmt.parse_line(text)
        except ValueError as exc:
            report.error(gt, lineno, "malformed", f"malformed line {text!r}: {exc}")
            continue
        bad = False
        if fr < 1 or (n_frames is not None and fr > n_frames):
            lim = f"1..{n_frames}" if n_frames is not None else ">= 1"
            report.error(gt, lineno, "frame-range", f"frame {fr} outside the sequence ({lim})")
            bad = True
        if w <= 0 or h <= 0:
            report.error(gt, lineno, "bad-size", f"zero or negative box size (w={w:g}, h={h:g})")
            bad = True
        if not 0.0 <= vis <= 1.0:
            report.error(gt, lineno, "out-of-range", f"visibility {vis:g} outside [0, 1]")
        if (fr, tid) in seen:
            report.error(
                gt,
                lineno,
                "duplicate-id",
                f"track {tid} has a second box in frame {fr} (line {seen[(fr, tid)]})",
            )
            bad = True
        else:
            seen[(fr, tid)] = lineno
        if size is not None and w > 0 and h > 0:
            W, H = size
            if x >= W or y >= H or x + w <= 0 or y + h <= 0:
                report.error(
                    gt,
                    lineno,
                    "outside-image",
                    f"box [{x:g}, {y:g}, {w:g}, {h:g}] is outside the {W}x{H} image",
                )
                bad = True
            elif x < -PIX_TOL or y < -PIX_TOL or x + w > W + PIX_TOL or y + h > H + PIX_TOL:
                report.warning(
                    gt,
                    lineno,
                    "partly-outside",
                    f"box [{x:g}, {y:g}, {w:g}, {h:g}] extends past the {W}x{H} image",
                )
        if not bad:
            per_frame.setdefault(fr, []).append((lineno, cls, (x, y, x + w, y + h)))
    for items in per_frame.values():
        box = np.asarray([b for _, _, b in items], np.float64)
        for i, j, iou in duplicate_pairs(box, [c for _, c, _ in items]):
            kind = "exact duplicate" if iou > 1 - 1e-9 else f"near duplicate (IoU {iou:.3f})"
            report.error(gt, items[i][0], "duplicate", f"{kind} of line {items[j][0]} (same frame and class)")
    totals["tracks"] += len({tid for _, tid in seen})
