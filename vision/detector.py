"""YOLO detector on onnxruntime: letterbox -> ONNX -> decode -> class-aware NMS -> undo letterbox.

Works with ultralytics detection exports whose output is (B, 4+nc, N) (cx, cy, w, h in input
pixels followed by per-class scores, NMS not inside the graph), fp32 or int8-quantised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vision.backends.letterbox import LetterboxParams, letterbox, unletterbox_xyxy
from vision.backends.providers import make_session
from vision.detections import Detections
from vision.nms import batched_nms


def decode_yolo_output(
    raw: np.ndarray, *, conf: float, iou: float, max_det: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw output (4+nc, N) -> (xyxy (K,4) in input pixels, scores (K,), class_id (K,))."""
    if raw.ndim != 2 or raw.shape[0] < 5:
        raise ValueError(f"YOLO output must be (4+nc, N) per image, got {raw.shape}")
    # Filter by score on the (4+nc, N) layout first: only the few candidates above conf are gathered
    # and transposed (N is 2100 at 320 px, 8400 at 640; a handful survive).
    cls_scores = raw[4:]
    best = cls_scores[0] if cls_scores.shape[0] == 1 else cls_scores.max(axis=0)
    keep = np.flatnonzero(best >= conf)
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    scores = best[keep]
    single = cls_scores.shape[0] == 1
    class_id = np.zeros(keep.size, np.int64) if single else np.argmax(cls_scores[:, keep], axis=0)
    cxcywh = raw[:4, keep].T
    half = cxcywh[:, 2:4] / 2
    xyxy = np.concatenate([cxcywh[:, 0:2] - half, cxcywh[:, 0:2] + half], axis=1).astype(np.float32)
    kept = batched_nms(xyxy, scores, class_id, iou, max_det)
    return xyxy[kept], scores[kept].astype(np.float32), class_id[kept].astype(np.int64)


class OnnxDetector:
    """`detect(frame) -> Detections` for YOLO ONNX exports.

    conf: minimum class score kept (the tracker's low-confidence stage wants low values, e.g. 0.1).
    iou: NMS IoU threshold. imgsz: input size when the model has dynamic spatial axes.
    spin: let onnxruntime's idle threads busy-wait (less wall time per frame, more CPU; see
    `vision.backends.providers.make_session`).
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        conf: float = 0.25,
        iou: float = 0.5,
        providers: Sequence[str] = ("cpu",),
        imgsz: int | None = None,
        max_det: int = 300,
        threads: int = 0,
        spin: bool = False,
    ) -> None:
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"conf must be in [0, 1], got {conf}")
        if not 0.0 <= iou <= 1.0:
            raise ValueError(f"iou must be in [0, 1], got {iou}")
        self.model_path = Path(model_path)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.session: Any = make_session(self.model_path, providers, threads=threads, spin=spin)
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ValueError(f"{self.model_path}: detector input must be (B, 3, H, W), got {shape}")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        from vision.weights import read_card

        card = read_card(self.model_path)
        size: int | None = imgsz
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            self.input_wh = (int(shape[3]), int(shape[2]))
            if imgsz is not None and (imgsz, imgsz) != self.input_wh:
                raise ValueError(f"imgsz={imgsz} but {self.model_path} has a fixed input of {self.input_wh}")
        else:
            size = size or int(card.get("imgsz", 640))
            self.input_wh = (size, size)
        names = card.get("class_names") or card.get("names")
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names, key=lambda x: int(x))]
        self.class_names: list[str] = list(names) if names else ["chicken"]
        self._canvas: np.ndarray | None = None
        self._inputs: dict[int, np.ndarray] = {}

    @property
    def imgsz(self) -> int:
        return max(self.input_wh)

    def _prepare(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[LetterboxParams]]:
        # Reused buffers (one letterbox canvas, one input tensor per batch size): a stream of frames
        # allocates nothing per frame. Not thread-safe; one detector serves one camera thread.
        iw, ih = self.input_wh
        if self._canvas is None:
            self._canvas = np.empty((ih, iw, 3), np.uint8)
        x = self._inputs.get(len(frames))
        if x is None:
            x = self._inputs[len(frames)] = np.empty((len(frames), 3, ih, iw), np.float32)
        params = []
        for i, frame in enumerate(frames):
            img, p = letterbox(frame, self.input_wh, out=self._canvas)
            np.divide(img.transpose(2, 0, 1)[::-1], np.float32(255.0), out=x[i])  # BGR HWC -> RGB CHW
            params.append(p)
        return (x if self.input_dtype == np.float32 else x.astype(self.input_dtype)), params

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is not None and x.shape[0] != self.fixed_batch:
            outs = [self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(x.shape[0])]
            return np.concatenate(outs, axis=0)
        return self.session.run(None, {self.input_name: x})[0]

    def detect_batch(
        self,
        frames: Sequence[np.ndarray],
        *,
        frame_indices: Sequence[int] | None = None,
        timestamps: Sequence[float] | None = None,
        camera_id: str = "cam0",
    ) -> list[Detections]:
        if not frames:
            return []
        x, params = self._prepare(frames)
        raw = np.asarray(self._run(x), dtype=np.float32)
        out: list[Detections] = []
        for i, p in enumerate(params):
            xyxy, scores, cls = decode_yolo_output(raw[i], conf=self.conf, iou=self.iou, max_det=self.max_det)
            out.append(
                Detections(
                    xyxy=unletterbox_xyxy(xyxy, p),
                    confidence=scores,
                    class_id=cls,
                    frame_index=int(frame_indices[i]) if frame_indices is not None else i,
                    timestamp=float(timestamps[i]) if timestamps is not None else 0.0,
                    camera_id=camera_id,
                    frame_size_wh=p.size_wh,
                )
            )
        return out

    def detect(
        self, frame_bgr: np.ndarray, *, frame_index: int = 0, timestamp: float = 0.0, camera_id: str = "cam0"
    ) -> Detections:
        return self.detect_batch(
            [frame_bgr], frame_indices=[frame_index], timestamps=[timestamp], camera_id=camera_id
        )[0]
