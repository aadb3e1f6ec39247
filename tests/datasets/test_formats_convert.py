"""`flockid data convert`: YOLO <-> COCO <-> MOT round trips keep boxes, classes and names."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.convert import convert, read_source
from datasets.formats import coco, mot, yolo
from datasets.validate import validate
from flockid.cli import app

W, H = 80, 60
NAMES = ["hen", "rooster", "duck"]


def _img(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8))


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    x1 = rng.uniform(0, W - 12, n)
    y1 = rng.uniform(0, H - 12, n)
    return np.stack([x1, y1, x1 + rng.uniform(3, 11, n), y1 + rng.uniform(3, 11, n)], 1)


def _make_yolo(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """6 frames (4 train, 2 val), one without a label file; returns name -> (xyxy, class) truth."""
    rng = np.random.default_rng(7)
    truth = {}
    for i in range(6):
        split = "train" if i < 4 else "val"
        name = f"f{i:02d}.jpg"
        img = root / "images" / split / name
        _img(img, i)
        n = int(rng.integers(0, 4))
        xyxy, cls = _random_boxes(rng, n), rng.integers(0, len(NAMES), n)
        if i != 2:  # frame 2: no label file = empty frame
            yolo.write_labels(yolo.label_path_for(img), xyxy, cls, (W, H))
        else:
            xyxy, cls = np.zeros((0, 4)), np.zeros(0, np.int64)
        truth[name] = (xyxy, cls)
    yolo.write_data_yaml(root, NAMES, "images/train", "images/val")
    return truth


def _boxes_by_name(path: Path, fmt: str | None = None) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    src = read_source(path, fmt)
    out = {}
    for s in src.samples():
        out[Path(s.name).name] = (s.xyxy, s.class_id)
    return src.names, out


def _assert_same(
    got: dict[str, tuple[np.ndarray, np.ndarray]], want: dict[str, tuple[np.ndarray, np.ndarray]], tol: float
) -> None:
    assert sorted(got) == sorted(want)
    for k, (xyxy, cls) in want.items():
        g_xyxy, g_cls = got[k]
        assert g_cls.tolist() == np.asarray(cls).tolist(), k
        if len(cls):
            assert np.abs(g_xyxy - xyxy).max() < tol, k


def test_yolo_coco_yolo_round_trip(tmp_path: Path) -> None:
    truth = _make_yolo(tmp_path / "y")
    r1 = convert(tmp_path / "y", tmp_path / "c", "coco")
    assert r1["from"] == "yolo" and r1["images"] == 6 and r1["splits"] == "train,val"
    assert sorted(q.name for q in (tmp_path / "c" / "annotations").iterdir()) == [
        "instances_train.json",
        "instances_val.json",
    ]
    names, got = _boxes_by_name(tmp_path / "c")
    assert names == NAMES
    _assert_same(got, truth, 1e-3)
    assert validate(tmp_path / "c").ok
    convert(tmp_path / "c", tmp_path / "y2", "yolo")
    names, got = _boxes_by_name(tmp_path / "y2")
    assert names == NAMES
    _assert_same(got, truth, 1e-3)
    ds = yolo.read_data_yaml(tmp_path / "y2")
    assert sorted(ds.splits) == ["train", "val"] and len(ds.images("val")) == 2
    assert (tmp_path / "y2" / "images" / "val" / "f05.jpg").is_file()  # no images/val/val/ nesting
    assert validate(tmp_path / "y2").ok


def test_yolo_mot_yolo_round_trip_keeps_names(tmp_path: Path) -> None:
    truth = _make_yolo(tmp_path / "y")
    r = convert(tmp_path / "y", tmp_path / "m", "mot", frame_rate=5)
    assert r["sequences"] == "train,val"
    info = mot.read_seqinfo(tmp_path / "m" / "train")
    assert (info["seq_length"], info["im_width"], info["im_height"], info["frame_rate"]) == (4, W, H, 5.0)
    report = validate(tmp_path / "m")
    assert report.ok, [i.format() for i in report.issues]
    convert(tmp_path / "m", tmp_path / "y2", "yolo")
    names, got = _boxes_by_name(tmp_path / "y2")
    assert names == NAMES
    # MOT renames frames <seq>_<frame>; frame order is the source order
    order = sorted(truth)
    renamed = {
        f"{'train' if i < 4 else 'val'}_{(i if i < 4 else i - 4) + 1:06d}.jpg": truth[k] for i, k in enumerate(order)
    }
    _assert_same(got, renamed, 1e-3)


def _make_mot_video_seq(seq: Path) -> mot.MotTable:
    """A sequence whose frames live in a video (no img1/), two birds walking right."""
    seq.mkdir(parents=True)
    writer = cv2.VideoWriter(str(seq / "pen.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for _ in range(5):
        writer.write(np.full((H, W, 3), 90, np.uint8))
    writer.release()
    fr = np.repeat(np.arange(1, 6), 2)
    tid = np.tile([1, 2], 5)
    x = fr * 5.0 + tid * 20
    xyxy = np.stack([x, np.full(10, 10.0), x + 10.5, np.full(10, 22.25)], 1)
    mot.write_gt(seq / "gt" / "gt.txt", fr, tid, xyxy, np.ones(10))
    mot.write_seqinfo(seq, name=seq.name, frame_rate=10, seq_length=5, im_width=W, im_height=H)
    return mot.read_gt(seq / "gt" / "gt.txt")


def test_mot_video_to_coco_and_back_keeps_tracks(tmp_path: Path) -> None:
    table = _make_mot_video_seq(tmp_path / "pen01")
    res = CliRunner().invoke(
        app,
        [
            "data",
            "convert",
            str(tmp_path / "pen01"),
            str(tmp_path / "c"),
            "--to",
            "coco",
            "--names",
            "broiler",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == 5
    ds = coco.read_coco(tmp_path / "c" / "annotations" / "instances_train.json")
    assert ds.names == ["broiler"]
    assert [im.file_name for im in ds.images] == [f"train/pen01_{i:06d}.jpg" for i in range(1, 6)]
    for i, im in enumerate(ds.images, 1):
        xyxy, cls = ds.annotations_of(im.id)
        assert np.allclose(xyxy, table.at_frame(i).xyxy, atol=1e-3) and cls.tolist() == [0, 0]
        assert cv2.imread(str(ds.image_path(im))).shape == (H, W, 3)
    # MOT -> MOT keeps the track ids
    convert(tmp_path / "pen01", tmp_path / "m2", "mot")
    t2 = mot.read_gt(tmp_path / "m2" / "pen01" / "gt" / "gt.txt")
    assert t2.track_id.tolist() == table.track_id.tolist()
    assert np.allclose(t2.xyxy, table.xyxy, atol=1e-3)
    assert mot.read_class_names(tmp_path / "m2" / "pen01") == ["bird"]


def test_convert_refuses_non_empty_output_and_bad_target(tmp_path: Path) -> None:
    _make_yolo(tmp_path / "y")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        convert(tmp_path / "y", tmp_path / "busy", "coco")
    with pytest.raises(ValueError, match="valid: yolo, coco, mot"):
        convert(tmp_path / "y", tmp_path / "o", "voc")
    res = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "y"), str(tmp_path / "busy"), "--to", "coco"])
    assert res.exit_code == 2
