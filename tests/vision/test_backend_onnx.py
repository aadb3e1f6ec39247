from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import make_constant_yolo, make_mean_colour_embedder

from vision.backends.providers import resolve_providers
from vision.detections import Detections
from vision.detector import OnnxDetector, decode_yolo_output
from vision.embedder import OnnxEmbedder


def _raw(boxes_cxcywh: list, scores: list[list[float]]) -> np.ndarray:
    """(1, 4+nc, N) raw YOLO output from per-box (cx, cy, w, h) and per-class scores."""
    cols = [list(b) + list(s) for b, s in zip(boxes_cxcywh, scores, strict=True)]
    return np.array(cols, np.float32).T[None]


def test_provider_names() -> None:
    assert resolve_providers(["cpu"]) == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match=r"unknown provider 'gpu'.*valid names are \['cpu', 'cuda'"):
        resolve_providers(["gpu"])
    with pytest.raises(ValueError, match="not available"):
        resolve_providers(["tensorrt"])


def test_decode_filters_by_confidence_and_nms() -> None:
    raw = _raw(
        [(20, 20, 10, 10), (21, 21, 10, 10), (50, 50, 8, 8), (5, 5, 4, 4)],
        [[0.9, 0.0], [0.8, 0.1], [0.1, 0.7], [0.05, 0.05]],
    )[0]
    xyxy, scores, cls = decode_yolo_output(raw, conf=0.25, iou=0.5)
    assert cls.tolist() == [0, 1]
    np.testing.assert_allclose(scores, [0.9, 0.7], atol=1e-6)
    np.testing.assert_allclose(xyxy[0], [15, 15, 25, 25])
    empty = decode_yolo_output(raw, conf=0.95, iou=0.5)
    assert empty[0].shape == (0, 4)


def test_detector_end_to_end_maps_boxes_back_to_frame(tmp_path: Path) -> None:
    # A 64x64 model input; a 128x64 (w x h) frame is letterboxed with scale 0.5 and pad_y 16.
    model = make_constant_yolo(tmp_path / "det.onnx", _raw([(32, 32, 16, 8)], [[0.9]]), imgsz=64)
    (tmp_path / "det.json").write_text(json.dumps({"class_names": ["chicken"], "imgsz": 64}))
    det = OnnxDetector(model, conf=0.25)
    assert det.class_names == ["chicken"] and det.input_wh == (64, 64)
    frame = np.zeros((64, 128, 3), np.uint8)
    out = det.detect(frame, frame_index=7, timestamp=1.5, camera_id="north")
    assert isinstance(out, Detections) and len(out) == 1
    np.testing.assert_allclose(out.xyxy[0], [48, 24, 80, 40], atol=1e-4)
    assert out.frame_index == 7 and out.timestamp == 1.5 and out.camera_id == "north"
    batch = det.detect_batch([frame, frame], frame_indices=[1, 2])
    assert [len(b) for b in batch] == [1, 1] and batch[1].frame_index == 2
    with pytest.raises(ValueError, match="imgsz=320"):
        OnnxDetector(model, imgsz=320)


def test_detector_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxDetector(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx"):
        OnnxDetector(bad)


def test_embedder_normalises_and_separates_colours(tmp_path: Path) -> None:
    emb = OnnxEmbedder(make_mean_colour_embedder(tmp_path / "reid.onnx"))
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[10:50, 10:50] = (0, 0, 200)  # red bird (BGR)
    frame[10:50, 100:140] = (200, 0, 0)  # blue bird
    frame[60:100, 10:50] = (0, 0, 201)  # red look-alike
    dets = Detections(
        xyxy=[[10, 10, 50, 50], [100, 10, 140, 50], [10, 60, 50, 100]], confidence=[0.9] * 3, class_id=[0] * 3
    )
    out = emb.embed(frame, dets)
    assert out.embedding is not None and out.embedding.shape == (3, 3)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-5)
    sim = out.embedding @ out.embedding.T
    assert sim[0, 2] > 0.99 and sim[0, 1] < 0.2
    partial = emb.embed(frame, dets, rows=np.array([False, True, False]))
    assert partial.embedding is not None
    assert np.allclose(partial.embedding[0], 0) and np.linalg.norm(partial.embedding[1]) == pytest.approx(1, abs=1e-5)
    assert emb.embed_crops([]).shape[0] == 0
