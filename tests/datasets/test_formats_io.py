"""Readers and writers of YOLO, COCO and MOT: round trips, conventions and loud failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.formats import coco, mot, yolo

W, H = 64, 48


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8))
    return path


BOXES = np.array([[10.5, 20.25, 30.0, 40.0], [0.0, 0.0, 64.0, 48.0], [1.0, 2.0, 3.3333, 4.0]])


def test_mot_gt_round_trip(tmp_path: Path) -> None:
    p = mot.write_gt(tmp_path / "gt" / "gt.txt", [2, 1, 1], [5, 6, 7], BOXES, [1.0, 0.5, 0.25], class_id=[1, 2, 1])
    first = p.read_text().splitlines()[0].split(",")
    assert first[:6] == ["1", "6", "0", "0", "64", "48"]  # sorted by frame, then id; x, y, w, h
    t = mot.read_gt(p)
    order = np.argsort(t.track_id)
    assert t.frame[order].tolist() == [2, 1, 1]
    assert np.allclose(t.xyxy[order], BOXES, atol=1e-4)
    assert t.visibility[order].tolist() == [1.0, 0.5, 0.25]
    assert t.class_id[order].tolist() == [1, 2, 1]
    assert len(t.at_frame(1)) == 2 and t.frames == [1, 2]


def test_mot_results_are_what_trackeval_reads(tmp_path: Path) -> None:
    p = mot.write_results(tmp_path / "seq.txt", [1, 1], [3, 4], BOXES[:2], [0.9, 0.5])
    rows = [ln.split(",") for ln in p.read_text().splitlines()]
    assert all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    t = mot.read_gt(p)
    assert np.allclose(t.confidence, [0.9, 0.5]) and np.allclose(t.xyxy, BOXES[:2])


def test_mot_bad_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "gt.txt"
    p.write_text("1,1,0,0,5,5,1,1,1\n1,2,0,zero,5,5,1,1,1\n")
    with pytest.raises(mot.MotFormatError, match=r"gt.txt:2: non-numeric"):
        mot.read_gt(p)
    with pytest.raises(ValueError, match="1-based"):
        mot.write_gt(tmp_path / "x.txt", [0], [1], BOXES[:1], [1.0])


def test_seqinfo_round_trip_and_frames(tmp_path: Path) -> None:
    mot.write_seqinfo(tmp_path, name="pen-3", frame_rate=12.5, seq_length=3, im_width=W, im_height=H)
    info = mot.read_seqinfo(tmp_path / "seqinfo.ini")
    assert info == {
        "name": "pen-3",
        "im_dir": "img1",
        "im_ext": ".jpg",
        "frame_rate": 12.5,
        "seq_length": 3,
        "im_width": W,
        "im_height": H,
    }
    for fr in (1, 2, 3):
        _img(tmp_path / "img1" / f"{fr:06d}.jpg", seed=fr)
    got = list(mot.iter_sequence_frames(tmp_path))
    assert [f for f, _ in got] == [1, 2, 3] and got[0][1].shape == (H, W, 3)


def test_sequence_frames_from_video(tmp_path: Path) -> None:
    writer = cv2.VideoWriter(str(tmp_path / "pen.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(4):
        writer.write(np.full((H, W, 3), i * 60, np.uint8))
    writer.release()
    frames = list(mot.iter_sequence_frames(tmp_path))
    assert [f for f, _ in frames] == [1, 2, 3, 4]
    assert abs(float(frames[2][1].mean()) - 120) < 5


@pytest.mark.parametrize(
    ("image", "label"),
    [
        ("/d/images/train/a.jpg", "/d/labels/train/a.txt"),
        ("/d/images/a.PNG", "/d/labels/a.txt"),
        ("/images/x/images/b.jpeg", "/images/x/labels/b.txt"),  # only the last images/ dir
        ("/d/frames/c.jpg", "/d/frames/c.txt"),  # no images/ dir: beside the image
    ],
)
def test_label_path_for(image: str, label: str) -> None:
    assert str(yolo.label_path_for(image.replace("/", os.sep))) == label.replace("/", os.sep)


def test_yolo_labels_round_trip(tmp_path: Path) -> None:
    p = yolo.write_labels(tmp_path / "a.txt", BOXES, [0, 1, 2], (W, H))
    assert p.read_text().splitlines()[1] == "1 0.50000000 0.50000000 1.00000000 1.00000000"
    xyxy, cls = yolo.read_labels(p, (W, H))
    assert cls.tolist() == [0, 1, 2]
    assert np.abs(xyxy - BOXES).max() < 1e-5
    empty_xyxy, empty_cls = yolo.read_labels(tmp_path / "missing.txt", (W, H))
    assert empty_xyxy.shape == (0, 4) and empty_cls.shape == (0,)


def test_yolo_polygon_line_becomes_its_box(tmp_path: Path) -> None:
    p = tmp_path / "seg.txt"
    p.write_text("0 0.25 0.25 0.75 0.25 0.75 0.5 0.25 0.5\n")
    xyxy, _ = yolo.read_labels(p, (100, 100))
    assert np.allclose(xyxy, [[25, 25, 75, 50]])


def test_yolo_bad_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text("0 0.5 0.5 0.1 0.1\n\n0 0.5 0.5 0.1\n")
    with pytest.raises(yolo.YoloFormatError, match=r"bad.txt:3: expected 5 fields"):
        yolo.read_labels(p, (W, H))


def test_data_yaml_write_read(tmp_path: Path) -> None:
    for split in ("train", "val"):
        _img(tmp_path / "images" / split / f"{split}1.jpg")
    y = yolo.write_data_yaml(tmp_path, ["hen", "rooster"], "images/train", "images/val")
    ds = yolo.read_data_yaml(y)
    assert ds.names == ["hen", "rooster"]
    assert [q.name for q in ds.images("train")] == ["train1.jpg"]
    assert [q.name for q in ds.images()] == ["train1.jpg", "val1.jpg"]
    with pytest.raises(ValueError, match="split 'test' not in dataset"):
        ds.images("test")


def test_data_yaml_ultralytics_conventions(tmp_path: Path) -> None:
    """names as dict, split as txt list (./ = relative to the list), stale absolute `path:` after a move."""
    root = tmp_path / "moved"
    for name in ("a", "b", "c"):
        _img(root / "images" / f"{name}.jpg")
    (root / "train.txt").write_text("./images/a.jpg\nimages/b.jpg\n")
    (root / "data.yaml").write_text(
        "path: /no/longer/here\ntrain: train.txt\nval: [images/c.jpg]\nnames:\n  0: hen\n  1: duck\n"
    )
    ds = yolo.read_data_yaml(root)
    assert ds.root == root.resolve()
    assert ds.names == ["hen", "duck"]
    assert [q.name for q in ds.splits["train"]] == ["a.jpg", "b.jpg"]
    assert [q.name for q in ds.splits["val"]] == ["c.jpg"]
    (root / "data.yaml").write_text("train: images\nval: images\nnames: {0: a, 2: b}\n")
    with pytest.raises(yolo.YoloFormatError, match="names ids must be 0..1"):
        yolo.read_data_yaml(root / "data.yaml")
    (root / "data.yaml").write_text("train: images\nval: images\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(yolo.YoloFormatError, match="nc=3 but names has 2"):
        yolo.read_data_yaml(root / "data.yaml")


def test_coco_write_read_and_lines(tmp_path: Path) -> None:
    p = coco.write_coco(
        tmp_path / "a.json",
        ["hen", "duck"],
        [("x.jpg", (W, H), BOXES[:2], [1, 0]), ("y.jpg", (W, H), np.zeros((0, 4)), [])],
    )
    ds = coco.read_coco(p)
    assert ds.names == ["hen", "duck"] and ds.category_ids == [1, 2]
    xyxy, cls = ds.annotations_of(ds.images[0].id)
    assert np.allclose(xyxy, BOXES[:2]) and cls.tolist() == [1, 0]
    assert ds.annotations_of(ds.images[1].id)[0].shape == (0, 4)
    # line numbers also work for pretty-printed files
    data = json.loads(p.read_text())
    p.write_text(json.dumps(data, indent=4))
    raw = coco.load_raw(p)
    text = p.read_text().splitlines()
    assert [text[ln - 1].strip() for ln in raw.lines["annotations"]] == ["{", "{"]
    assert len(raw.lines["images"]) == 2 and len(raw.lines["categories"]) == 2


def test_coco_dangling_ids_fail_loudly(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "x.jpg", "width": 4, "height": 4}],
                "categories": [{"id": 1, "name": "hen"}],
                "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            }
        )
    )
    with pytest.raises(coco.CocoFormatError, match=r"a.json:1: image_id 2 is not in 'images'"):
        coco.read_coco(p)


def test_windows_files_read(tmp_path: Path) -> None:
    """Labels saved by Windows tools: UTF-8 BOM and CRLF line ends."""
    p = tmp_path / "w.txt"
    p.write_bytes("\ufeff0 0.5 0.5 0.5 0.5\r\n1 0.25 0.25 0.5 0.5\r\n".encode())
    xyxy, cls = yolo.read_labels(p, (W, H))
    assert cls.tolist() == [0, 1] and np.allclose(xyxy[0], [16, 12, 48, 36])
    g = tmp_path / "gt.txt"
    g.write_bytes("\ufeff1,1,0,0,5,5,1,1,1\r\n".encode())
    assert mot.read_gt(g).xyxy.tolist() == [[0, 0, 5, 5]]
    c = tmp_path / "c.json"
    c.write_bytes(b"\xef\xbb\xbf" + json.dumps({"images": [], "annotations": [], "categories": []}).encode())
    assert coco.read_coco(c).images == []


def test_trackeval_reads_our_gt_and_results(tmp_path: Path) -> None:
    """The files are the real MOTChallenge format: trackeval scores a perfect tracker 1.0 and sees an ID swap."""
    trackeval = pytest.importorskip("trackeval")
    seq = tmp_path / "gt" / "FLOCK-train" / "pen01"
    fr = np.repeat(np.arange(1, 11), 3)
    tid = np.tile([1, 2, 3], 10)
    x = fr * 4.0 + tid * 60
    xyxy = np.stack([x, np.full(30, 10.0), x + 20, np.full(30, 40.0)], 1)
    mot.write_gt(seq / "gt" / "gt.txt", fr, tid, xyxy, np.ones(30))
    mot.write_seqinfo(seq, name="pen01", frame_rate=10, seq_length=10, im_width=320, im_height=240)
    seqmap = tmp_path / "seqmap.txt"
    seqmap.write_text("name\npen01\n")
    swapped = tid.copy()
    swapped[fr > 5] = np.tile([2, 1, 3], 5)  # birds 1 and 2 swap IDs half way
    for name, ids in (("perfect", tid + 10), ("swap", swapped)):
        mot.write_results(tmp_path / "trk" / "FLOCK-train" / name / "data" / "pen01.txt", fr, ids, xyxy, 0.9)
    cfg = trackeval.Evaluator.get_default_eval_config()
    cfg.update(
        PRINT_RESULTS=False,
        PRINT_CONFIG=False,
        OUTPUT_SUMMARY=False,
        OUTPUT_DETAILED=False,
        PLOT_CURVES=False,
        USE_PARALLEL=False,
        TIME_PROGRESS=False,
    )
    dcfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dcfg.update(
        GT_FOLDER=str(tmp_path / "gt"),
        TRACKERS_FOLDER=str(tmp_path / "trk"),
        BENCHMARK="FLOCK",
        SPLIT_TO_EVAL="train",
        TRACKERS_TO_EVAL=["perfect", "swap"],
        DO_PREPROC=False,
        SEQMAP_FILE=str(seqmap),
        PRINT_CONFIG=False,
    )
    out, _ = trackeval.Evaluator(cfg).evaluate(
        [trackeval.datasets.MotChallenge2DBox(dcfg)], [trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    )
    res = out["MotChallenge2DBox"]
    perfect = res["perfect"]["COMBINED_SEQ"]["pedestrian"]
    swap = res["swap"]["COMBINED_SEQ"]["pedestrian"]
    assert perfect["CLEAR"]["MOTA"] == 1.0 and perfect["Identity"]["IDF1"] == 1.0
    assert swap["CLEAR"]["IDSW"] == 2 and swap["Identity"]["IDF1"] < 0.8
