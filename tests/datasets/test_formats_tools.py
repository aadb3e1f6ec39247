"""`flockid data crops` and `flockid data frames`."""

from __future__ import annotations

import csv
import json
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.crops import make_crops
from datasets.formats import mot, yolo
from datasets.frames import read_cvat_xml, sample_frames
from flockid.cli import app

W, H = 160, 120
BIRDS = ["Henrietta", "Clucky", "Mabel", "Pip", "Goldie", "Rosa/2"]


def _named_bird_dataset(root: Path, frames: int = 8) -> None:
    """Each frame shows every bird once; class id = bird; frame 0 has a tiny box that --min-size drops."""
    rng = np.random.default_rng(3)
    for i in range(frames):
        img = root / "images" / "train" / f"t{i:03d}.jpg"
        img.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        xs = np.arange(len(BIRDS)) * 25.0 + 2
        xyxy = np.stack([xs, np.full(len(BIRDS), 30.0), xs + 22, np.full(len(BIRDS), 60.0)], 1)
        cls = np.arange(len(BIRDS))
        if i == 0:
            xyxy = np.vstack([xyxy, [[100, 100, 105, 104]]])
            cls = np.append(cls, 0)
        yolo.write_labels(yolo.label_path_for(img), xyxy, cls, (W, H))
    yolo.write_data_yaml(root, BIRDS, "images/train", "images/train")


def _ids(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def test_crops_split_by_identity_is_open_set(tmp_path: Path) -> None:
    _named_bird_dataset(tmp_path / "y")
    res = CliRunner().invoke(
        app, ["data", "crops", str(tmp_path / "y"), str(tmp_path / "c"), "--query-frac", "0.25", "--json"]
    )
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    out = tmp_path / "c"
    train, query, gallery = _ids(out / "train"), _ids(out / "query"), _ids(out / "gallery")
    assert train and query
    assert not train & query and not train & gallery
    assert query == gallery
    assert train | query == {"Henrietta", "Clucky", "Mabel", "Pip", "Goldie", "Rosa_2"}
    assert stats["skipped_small"] == 1 and stats["crops"] == 6 * 8
    for ident in query:
        nq, ng = len(list((out / "query" / ident).iterdir())), len(list((out / "gallery" / ident).iterdir()))
        assert (nq, ng) == (2, 6)
    crop = cv2.imread(str(next((out / "train").rglob("*.jpg"))))
    assert crop.shape[0] == 36 and crop.shape[1] > 22  # 30 px box + 10% pad above and below
    rows = list(csv.DictReader((out / "crops.csv").open()))
    assert len(rows) == 48 and all((out / r["file"]).is_file() for r in rows)
    assert not (out / ".staging").exists()


def test_crops_split_by_time_from_mot(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    for fr in range(1, 7):
        p = seq / "img1" / f"{fr:06d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), np.full((H, W, 3), fr * 30, np.uint8))
    fr = np.repeat(np.arange(1, 7), 2)
    tid = np.tile([4, 9], 6)
    xyxy = np.stack([tid * 10.0, np.full(12, 20.0), tid * 10.0 + 30, np.full(12, 60.0)], 1)
    mot.write_gt(seq / "gt" / "gt.txt", fr, tid, xyxy, np.ones(12))
    mot.write_seqinfo(seq, name="seq", frame_rate=5, seq_length=6, im_width=W, im_height=H)
    stats = make_crops(seq, tmp_path / "c", split_by="time", enrol_frac=0.5, pad=0.0)
    assert stats["identities"] == 2 and stats["enrol_crops"] == 6 and stats["later_crops"] == 6
    for ident in ("track00004", "track00009"):
        enrol = sorted((tmp_path / "c" / "enrol" / ident).iterdir())
        later = sorted((tmp_path / "c" / "later" / ident).iterdir())
        # frames 1-3 enrol, 4-6 later: brightness encodes the frame number
        assert [round(cv2.imread(str(p)).mean() / 30) for p in enrol] == [1, 2, 3]
        assert [round(cv2.imread(str(p)).mean() / 30) for p in later] == [4, 5, 6]


def test_crops_rejects_bad_arguments(tmp_path: Path) -> None:
    _named_bird_dataset(tmp_path / "y", frames=2)
    with pytest.raises(ValueError, match="valid: identity, time"):
        make_crops(tmp_path / "y", tmp_path / "c", split_by="camera")
    with pytest.raises(ValueError, match="query_frac"):
        make_crops(tmp_path / "y", tmp_path / "c", query_frac=1.5)


def _video(path: Path, n: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(n):
        frame = np.zeros((H, W, 3), np.uint8)
        frame[:, :] = (i * 10) % 250
        writer.write(frame)
    writer.release()


def test_frames_every(tmp_path: Path) -> None:
    _video(tmp_path / "barn.avi", 23)
    res = CliRunner().invoke(
        app, ["data", "frames", str(tmp_path / "barn.avi"), str(tmp_path / "f"), "--every", "5", "--json"]
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "f" / "images").iterdir())
    assert names == [f"barn_{i:06d}.jpg" for i in (0, 5, 10, 15, 20)]
    assert json.loads(res.stdout)["frames"] == 5
    # the 3rd kept frame is source frame 10
    assert abs(cv2.imread(str(tmp_path / "f" / "images" / "barn_000010.jpg")).mean() - 100) < 4
    out = sample_frames(tmp_path / "barn.avi", tmp_path / "g", every=2, max_frames=3)
    assert out["frames"] == 3 and not (tmp_path / "g" / "annotations.xml").exists()


def test_frames_pre_annotated_yolo_and_cvat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --model, detections land in YOLO labels and a CVAT 1.1 XML (detector stubbed: its own tests
    cover ONNX inference; this checks what we write from its Detections)."""
    from vision.detections import Detections

    class FakeDetector:
        def __init__(self, model_path: str, conf: float = 0.25) -> None:
            self.class_names = ["bird", "feeder"]
            self.conf = conf

        def detect(self, frame: np.ndarray, *, frame_index: int = 0, **_: object) -> Detections:
            x = float(frame_index)
            return Detections(
                xyxy=np.array([[x, 10, x + 20, 30], [50, 50, 70, 200]], np.float32),
                confidence=np.array([0.9, 0.6], np.float32),
                class_id=np.array([0, 1]),
            )

    fake = types.ModuleType("vision.detector")
    fake.OnnxDetector = FakeDetector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vision.detector", fake)
    _video(tmp_path / "pen.avi", 10)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"stub")
    out = sample_frames(tmp_path / "pen.avi", tmp_path / "f", every=4, model=model)
    assert out["frames"] == 3 and out["boxes"] == 6
    ds = yolo.read_data_yaml(tmp_path / "f")
    assert ds.names == ["bird", "feeder"] and len(ds.images("train")) == 3
    xyxy, cls = yolo.read_labels(tmp_path / "f" / "labels" / "pen_000004.txt", (W, H))
    assert cls.tolist() == [0, 1]
    assert np.allclose(xyxy, [[4, 10, 24, 30], [50, 50, 70, 120]], atol=1e-3)  # clipped to the frame
    root = ET.parse(tmp_path / "f" / "annotations.xml").getroot()
    assert root.findtext("version") == "1.1"
    names, frames = read_cvat_xml(tmp_path / "f" / "annotations.xml")
    assert names == ["bird", "feeder"]
    assert [f.name for f in frames] == ["pen_000000.jpg", "pen_000004.jpg", "pen_000008.jpg"]
    assert np.allclose(frames[2].xyxy, [[8, 10, 28, 30], [50, 50, 70, 120]], atol=0.01)
    assert frames[2].class_id.tolist() == [0, 1] and frames[2].size_wh == (W, H)


def _constant_yolo_onnx(path: Path) -> None:
    """A 64x64 'YOLO' whose output (1, 4+2, 2) is constant: one bird at the centre, one feeder."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    out = np.zeros((1, 6, 2), np.float32)
    out[0, :, 0] = [32, 32, 16, 16, 0.9, 0.05]
    out[0, :, 1] = [10, 40, 8, 8, 0.1, 0.8]
    # Add 0 * mean(x) so the output depends on the input, like a real network.
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "const_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 2])],
        initializer=[numpy_helper.from_array(out, "const"), numpy_helper.from_array(np.zeros(1, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"class_names": ["bird", "feeder"], "imgsz": 64}))


def test_frames_with_real_onnx_detector(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from vision.detector import OnnxDetector

    model = tmp_path / "det.onnx"
    _constant_yolo_onnx(model)
    _video(tmp_path / "pen.avi", 6)
    res = CliRunner().invoke(
        app,
        [
            "data",
            "frames",
            str(tmp_path / "pen.avi"),
            str(tmp_path / "f"),
            "--every",
            "3",
            "--model",
            str(model),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["boxes"] == 4
    frame = cv2.imread(str(tmp_path / "f" / "images" / "pen_000003.jpg"))
    dets = OnnxDetector(model).detect(frame)
    xyxy, cls = yolo.read_labels(tmp_path / "f" / "labels" / "pen_000003.txt", (W, H))
    assert cls.tolist() == dets.class_id.tolist() == [0, 1]
    assert np.allclose(xyxy, dets.xyxy, atol=1e-3)
    # 64 px input, 160x120 frame: scale 2.5, so the 16 px centre box is 40 px wide
    assert np.isclose(xyxy[0, 2] - xyxy[0, 0], 40, atol=0.5)
    names, frames = read_cvat_xml(tmp_path / "f" / "annotations.xml")
    assert names == ["bird", "feeder"] and len(frames) == 2
    assert np.allclose(frames[1].xyxy, xyxy, atol=0.01)
