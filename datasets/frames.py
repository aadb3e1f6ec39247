"""Sample frames from a farm video for labelling (`flockid data frames VIDEO OUT --every N`).

Writes OUT/images/<video>_<frame>.jpg. With a detector model the frames come pre-annotated, so a person
corrects boxes instead of drawing them: YOLO labels (OUT/labels/, OUT/data.yaml) and a CVAT for images 1.1
file (OUT/annotations.xml) that CVAT imports as "CVAT for images 1.1".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.formats import yolo as yolo_fmt

Progress = Callable[..., Iterable[Any]]


def _no_progress(items: Iterable[Any], **_: Any) -> Iterable[Any]:
    return items


@dataclass
class FrameAnnotation:
    name: str
    size_wh: tuple[int, int]
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))


def iter_video_frames(
    video: str | Path | int, every: int, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(0-based frame index, BGR) of every `every`-th frame; skipped frames are grabbed, not decoded."""
    import cv2

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max must be >= 1, got {max_frames}")
    src: Any = video if isinstance(video, int) else str(video)
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        raise FileNotFoundError(f"{video}: cannot open video")
    kept = 0
    idx = -1
    try:
        while max_frames is None or kept < max_frames:
            idx += 1
            if idx % every:
                if not cap.grab():
                    break
                continue
            ok, img = cap.read()
            if not ok:
                break
            kept += 1
            yield idx, img
    finally:
        cap.release()


def write_cvat_xml(
    path: str | Path, frames: Sequence[FrameAnnotation], names: Sequence[str], *, task_name: str = "flockid"
) -> Path:
    """CVAT for images 1.1: one <image> per frame with <box> children (source="auto": model proposals)."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = task_name
    ET.SubElement(task, "size").text = str(len(frames))
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for n in names:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = n
        ET.SubElement(lab, "type").text = "rectangle"
        ET.SubElement(lab, "attributes")
    for i, f in enumerate(frames):
        im = ET.SubElement(root, "image", id=str(i), name=f.name, width=str(f.size_wh[0]), height=str(f.size_wh[1]))
        for (x1, y1, x2, y2), c in zip(
            np.asarray(f.xyxy).reshape(-1, 4), np.asarray(f.class_id).reshape(-1), strict=True
        ):
            label = names[int(c)] if 0 <= int(c) < len(names) else str(int(c))
            ET.SubElement(
                im,
                "box",
                label=label,
                source="auto",
                occluded="0",
                xtl=f"{x1:.2f}",
                ytl=f"{y1:.2f}",
                xbr=f"{x2:.2f}",
                ybr=f"{y2:.2f}",
                z_order="0",
            )
    ET.indent(root)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(p, encoding="utf-8", xml_declaration=True)
    return p


def read_cvat_xml(path: str | Path) -> tuple[list[str], list[FrameAnnotation]]:
    """Read back a CVAT for images 1.1 file (boxes only) -> (label names, frames)."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{p}:{exc.position[0]}: invalid XML: {exc}") from None
    names = [n.text or "" for n in root.iterfind("./meta/task/labels/label/name")]
    frames = []
    for im in root.iterfind("image"):
        boxes = im.findall("box")
        xyxy = np.asarray(
            [[float(b.get(k, "nan")) for k in ("xtl", "ytl", "xbr", "ybr")] for b in boxes], np.float64
        ).reshape(-1, 4)
        cls = np.asarray([names.index(b.get("label", "")) if b.get("label") in names else -1 for b in boxes], np.int64)
        frames.append(
            FrameAnnotation(
                name=im.get("name", ""),
                size_wh=(int(im.get("width", "0")), int(im.get("height", "0"))),
                xyxy=xyxy,
                class_id=cls,
            )
        )
    return names, frames


def sample_frames(
    video: str | Path,
    out: str | Path,
    *,
    every: int = 30,
    max_frames: int | None = None,
    model: str | Path | None = None,
    conf: float = 0.25,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Write every `every`-th frame as JPEG; with `model`, also YOLO labels + CVAT XML from its detections."""
    import cv2

    # str, not Path: Path("rtsp://cam/1") would collapse the "//" of a camera URL.
    video_s = str(video)
    is_stream = "://" in video_s
    if not is_stream and not Path(video_s).is_file():
        raise FileNotFoundError(f"{video_s}: no such video file")
    out_p = Path(out)
    detector = None
    names: list[str] = []
    if model is not None:
        from vision.detector import OnnxDetector  # lazy: onnxruntime only when pre-annotating

        detector = OnnxDetector(str(model), conf=conf)
        names = [str(n) for n in detector.class_names]
    total = None
    cap = cv2.VideoCapture(video_s)
    if cap.isOpened():
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        total = (n + every - 1) // every if n > 0 else None
        if total is not None and max_frames is not None:
            total = min(total, max_frames)
    cap.release()
    stem = "stream" if is_stream else (Path(video_s).stem or "frame")
    annotations: list[FrameAnnotation] = []
    n_boxes = 0
    for idx, img in progress(iter_video_frames(video_s, every, max_frames), total=total, description="sampling frames"):
        name = f"{stem}_{idx:06d}.jpg"
        dst = out_p / "images" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(dst), img):
            raise OSError(f"{dst}: cannot write frame")
        size = (int(img.shape[1]), int(img.shape[0]))
        if detector is not None:
            dets = detector.detect(img, frame_index=idx)
            xyxy = np.asarray(dets.xyxy, np.float64).reshape(-1, 4)
            xyxy = np.clip(xyxy, 0, [size[0], size[1], size[0], size[1]])
            cls = np.asarray(dets.class_id, np.int64).reshape(-1)
            # A box clipped to nothing would be a zero-size label, which validate rightly rejects.
            keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
            xyxy, cls = xyxy[keep], cls[keep]
            conf_k = np.asarray(dets.confidence, np.float64).reshape(-1)[keep]
            yolo_fmt.write_labels(yolo_fmt.label_path_for(dst), xyxy, cls, size)
            annotations.append(FrameAnnotation(name, size, xyxy, cls, conf_k))
            n_boxes += len(cls)
        else:
            annotations.append(FrameAnnotation(name, size))
    if not annotations:
        raise ValueError(f"{video_s}: no frame could be read")
    result: dict[str, Any] = {
        "video": video_s,
        "every": every,
        "frames": len(annotations),
        "out": str(out_p),
    }
    if detector is not None:
        yolo_fmt.write_data_yaml(out_p, names, "images", "images")
        write_cvat_xml(out_p / "annotations.xml", annotations, names, task_name=stem)
        result.update({"model": str(model), "boxes": n_boxes, "mean_boxes_per_frame": n_boxes / len(annotations)})
    return result
