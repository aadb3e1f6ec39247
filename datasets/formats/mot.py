"""MOTChallenge sequences: `gt/gt.txt`, tracker results, `seqinfo.ini`, and the frames themselves.

A MOT line is `frame, id, bb_left, bb_top, width, height, conf, class, visibility` (gt) or
`frame, id, bb_left, bb_top, width, height, conf, -1, -1, -1` (results, as trackeval reads them).
Frames are 1-based. In memory we always use pixel `xyxy`; the conversion happens only here.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


class MotFormatError(ValueError):
    """A MOT file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class MotTable:
    """Rows of a MOT gt or results file as parallel arrays (one row per box)."""

    frame: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64]
    xyxy: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]
    visibility: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @classmethod
    def empty(cls) -> MotTable:
        return cls(
            frame=np.zeros(0, np.int64),
            track_id=np.zeros(0, np.int64),
            xyxy=np.zeros((0, 4), np.float64),
            confidence=np.zeros(0, np.float64),
            class_id=np.zeros(0, np.int64),
            visibility=np.zeros(0, np.float64),
        )

    def select(self, mask: npt.NDArray[np.bool_]) -> MotTable:
        return MotTable(
            frame=self.frame[mask],
            track_id=self.track_id[mask],
            xyxy=self.xyxy[mask],
            confidence=self.confidence[mask],
            class_id=self.class_id[mask],
            visibility=self.visibility[mask],
        )

    def at_frame(self, frame: int) -> MotTable:
        """Rows of one (1-based) frame."""
        return self.select(self.frame == frame)

    @property
    def frames(self) -> list[int]:
        """Sorted distinct frame numbers that have at least one box."""
        return sorted({int(f) for f in self.frame})


def _vec(a: Any, n: int, name: str, dtype: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=dtype)
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but xyxy has {n}")
    return arr


def _xyxy(xyxy: Any) -> npt.NDArray[np.float64]:
    arr = np.asarray(xyxy, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), got {arr.shape}")
    return arr


def _fmt(v: float) -> str:
    # Enough digits for sub-pixel round trips, no trailing zeros noise.
    v = float(v)
    if v == int(v):
        return str(int(v))
    return f"{v:.4f}".rstrip("0").rstrip(".")


def write_gt(
    path: str | Path,
    frame: Any,
    track_id: Any,
    xyxy: Any,
    visibility: Any,
    class_id: Any = 1,
) -> Path:
    """Write a MOTChallenge ground-truth file (`conf` column = 1: every box counts)."""
    box = _xyxy(xyxy)
    n = box.shape[0]
    vis = _vec(visibility, n, "visibility", np.float64)
    cls = _vec(class_id, n, "class_id", np.int64)
    return _write_rows(path, frame, track_id, box, lambda i: f"1,{cls[i]},{_fmt(float(vis[i]))}")


def _write_rows(path: str | Path, frame: Any, track_id: Any, box: np.ndarray, tail: Any) -> Path:
    """Lines `frame,id,left,top,w,h,<tail(i)>` sorted by frame then id (the layout both files share)."""
    n = box.shape[0]
    fr = _vec(frame, n, "frame", np.int64)
    tid = _vec(track_id, n, "track_id", np.int64)
    if n and fr.min() < 1:
        raise ValueError(f"frame numbers are 1-based, got {int(fr.min())}")
    lines = []
    for i in np.lexsort((tid, fr)):
        x1, y1, x2, y2 = box[i]
        lines.append(f"{fr[i]},{tid[i]},{_fmt(x1)},{_fmt(y1)},{_fmt(x2 - x1)},{_fmt(y2 - y1)},{tail(i)}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + ("\n" if lines else ""))
    return p


def write_results(path: str | Path, frame: Any, track_id: Any, xyxy: Any, confidence: Any) -> Path:
    """Write tracker output in the MOTChallenge 2D format trackeval reads (x, y, z = -1)."""
    box = _xyxy(xyxy)
    conf = _vec(confidence, box.shape[0], "confidence", np.float64)
    return _write_rows(path, frame, track_id, box, lambda i: f"{float(conf[i]):.4f},-1,-1,-1")


def parse_line(text: str) -> tuple[int, int, float, float, float, float, float, int, float]:
    """One MOT line -> (frame, id, left, top, w, h, conf, class, visibility). Raises ValueError with why.

    Accepts 6 to 10 comma- (or space-) separated fields; missing conf/class/visibility default to 1.
    """
    parts = [p for p in (text.split(",") if "," in text else text.split()) if p.strip() != ""]
    if len(parts) < 6 or len(parts) > 10:
        raise ValueError(f"expected 6 to 10 fields, got {len(parts)}")
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise ValueError(f"non-numeric field: {exc}") from None
    if not all(np.isfinite(nums)):
        raise ValueError("non-finite number")
    fr, tid = nums[0], nums[1]
    if fr != int(fr) or tid != int(tid):
        raise ValueError("frame and id must be integers")
    conf = nums[6] if len(nums) > 6 else 1.0
    cls = int(nums[7]) if len(nums) > 7 else 1
    vis = nums[8] if len(nums) > 8 else 1.0
    # Results files use -1 placeholders for class/visibility; treat them as "pedestrian, visible".
    if len(nums) == 10 and cls == -1:
        cls, vis = 1, 1.0
    return int(fr), int(tid), nums[2], nums[3], nums[4], nums[5], conf, cls, vis


def read_gt(path: str | Path) -> MotTable:
    """Read a MOT gt or results file. Raises MotFormatError naming `file:line` on a bad line."""
    p = Path(path)
    rows = []
    with p.open(encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, 1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            try:
                rows.append(parse_line(text))
            except ValueError as exc:
                raise MotFormatError(f"{p}:{lineno}: {exc}") from None
    if not rows:
        return MotTable.empty()
    arr = np.asarray(rows, dtype=np.float64)
    xywh = arr[:, 2:6]
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return MotTable(
        frame=arr[:, 0].astype(np.int64),
        track_id=arr[:, 1].astype(np.int64),
        xyxy=xyxy,
        confidence=arr[:, 6].copy(),
        class_id=arr[:, 7].astype(np.int64),
        visibility=arr[:, 8].copy(),
    )


def write_seqinfo(
    path: str | Path,
    *,
    name: str,
    frame_rate: float,
    seq_length: int,
    im_width: int,
    im_height: int,
    im_dir: str = "img1",
    im_ext: str = ".jpg",
) -> Path:
    """Write `seqinfo.ini`. `path` may be the file or the sequence directory."""
    p = Path(path)
    if p.suffix != ".ini":
        p = p / "seqinfo.ini"
    fr = int(frame_rate) if float(frame_rate) == int(frame_rate) else frame_rate
    text = (
        "[Sequence]\n"
        f"name={name}\n"
        f"imDir={im_dir}\n"
        f"frameRate={fr}\n"
        f"seqLength={int(seq_length)}\n"
        f"imWidth={int(im_width)}\n"
        f"imHeight={int(im_height)}\n"
        f"imExt={im_ext}\n"
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def read_seqinfo(path: str | Path) -> dict[str, Any]:
    """Read `seqinfo.ini` (file or sequence dir) -> dict with snake_case keys and typed values:
    name, im_dir, frame_rate (float), seq_length, im_width, im_height (int), im_ext."""
    p = Path(path)
    if p.is_dir():
        p = p / "seqinfo.ini"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: seqinfo.ini not found")
    cp = configparser.ConfigParser()
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep camelCase keys
    cp.read(p)
    if "Sequence" not in cp:
        raise MotFormatError(f"{p}: no [Sequence] section")
    sec = cp["Sequence"]
    out: dict[str, Any] = {
        "name": sec.get("name", p.parent.name),
        "im_dir": sec.get("imDir", "img1"),
        "im_ext": sec.get("imExt", ".jpg"),
    }
    for key, snake, typ in (
        ("frameRate", "frame_rate", float),
        ("seqLength", "seq_length", int),
        ("imWidth", "im_width", int),
        ("imHeight", "im_height", int),
    ):
        if key not in sec:
            raise MotFormatError(f"{p}: [Sequence] has no {key}")
        try:
            out[snake] = typ(float(sec[key])) if typ is int else typ(sec[key])
        except ValueError:
            raise MotFormatError(f"{p}: {key}={sec[key]!r} is not a number") from None
    return out


def write_class_names(seq_dir: str | Path, names: list[str]) -> Path:
    """`classes.txt` beside seqinfo.ini: `<MOT class> <name>` per line (MOT itself has no names)."""
    p = Path(seq_dir) / "classes.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    return p


def read_class_names(seq_dir: str | Path) -> list[str] | None:
    """Names from `classes.txt` (index = MOT class - 1), or None when the sequence has none."""
    p = Path(seq_dir) / "classes.txt"
    if not p.is_file():
        return None
    keyed: dict[int, str] = {}
    for lineno, raw in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not raw.strip():
            continue
        parts = raw.strip().split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise MotFormatError(f"{p}:{lineno}: expected '<class> <name>', got {raw.strip()!r}")
        keyed[int(parts[0])] = parts[1]
    if sorted(keyed) != list(range(1, len(keyed) + 1)):
        raise MotFormatError(f"{p}: classes must be numbered 1..{len(keyed)}")
    return [keyed[i] for i in range(1, len(keyed) + 1)]


def find_video(seq_dir: str | Path) -> Path | None:
    """The video file of a sequence dir (first by name), or None."""
    vids = sorted(q for q in Path(seq_dir).iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTS)
    return vids[0] if vids else None


def list_frame_images(seq_dir: str | Path) -> list[tuple[int, Path]]:
    """(1-based frame, path) of the sequence's image dir, numbered from the file names
    (`000001.jpg`), falling back to sorted order when the names are not numbers."""
    seq = Path(seq_dir)
    im_dir = "img1"
    if (seq / "seqinfo.ini").is_file():
        try:
            im_dir = read_seqinfo(seq)["im_dir"]
        except (MotFormatError, ValueError):
            im_dir = "img1"
    d = seq / im_dir
    if not d.is_dir():
        return []
    files = sorted(q for q in d.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
    if all(q.stem.isdigit() for q in files):
        return sorted((int(q.stem), q) for q in files)
    return [(i + 1, q) for i, q in enumerate(files)]


def iter_sequence_frames(seq_dir: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (1-based frame, BGR image) from the sequence's `img1/` or, without one, its video file."""
    import cv2

    seq = Path(seq_dir)
    images = list_frame_images(seq)
    if images:
        for frame, q in images:
            img = cv2.imread(str(q), cv2.IMREAD_COLOR)
            if img is None:
                raise MotFormatError(f"{q}: cannot decode image")
            yield frame, img
        return
    video = find_video(seq)
    if video is None:
        raise FileNotFoundError(f"{seq}: no image dir and no video file ({', '.join(VIDEO_EXTS)})")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise MotFormatError(f"{video}: cannot open video")
    try:
        frame = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frame += 1
            yield frame, img
    finally:
        cap.release()
