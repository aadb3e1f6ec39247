"""`flockid data validate` must list every planted error with its file and line, and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.formats import mot, yolo
from datasets.validate import detect_format, validate
from flockid.cli import app

W, H = 64, 48


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return path


def _lab(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["data", "validate", *args])
    return res.exit_code, res.stdout


def _planted_yolo(root: Path) -> set[tuple[str, int, str]]:
    """A YOLO dataset with one of each error; returns the expected (file name, line, code) errors."""
    good = "0 0.5 0.5 0.2 0.2"
    for name in ("a", "b", "c", "d", "e"):
        _img(root / "images" / "train" / f"{name}.jpg", seed=ord(name))
    _img(root / "images" / "val" / "f.jpg")
    _lab(root / "labels" / "train" / "a.txt", [good, "1 0.2 0.2 0.1 0.1"])
    _lab(
        root / "labels" / "train" / "b.txt",
        [
            good,
            "0 0.5 0.5 0.2",  # 2: wrong field count
            "0 0.5 abc 0.2 0.2",  # 3: not a number
            "5 0.5 0.5 0.1 0.1",  # 4: class outside names
            "0 1.2 0.5 0.1 0.1",  # 5: coordinate outside [0, 1]
            "1 0.5 0.5 0 0.1",  # 6: zero width
            "0 0.95 0.5 0.2 0.2",  # 7: box past the right edge
        ],
    )
    _lab(
        root / "labels" / "train" / "c.txt",
        [
            "0 0.3 0.3 0.2 0.2",
            "0 0.3 0.3 0.2 0.2",  # 2: exact duplicate of 1
            "0 0.301 0.3 0.2 0.2",  # 3: near duplicate of 1
            "1 0.3 0.3 0.2 0.2",  # other class: fine
        ],
    )
    (root / "images" / "train" / "d.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")  # corrupt
    _lab(root / "labels" / "train" / "d.txt", [good])
    # e.jpg has no label file: a warning only
    _lab(root / "labels" / "train" / "orphan.txt", [good])  # label without image
    _lab(root / "labels" / "val" / "f.txt", [good])
    yolo.write_data_yaml(root, ["hen", "rooster"], "images/train", "images/val")
    return {
        ("b.txt", 2, "malformed"),
        ("b.txt", 3, "malformed"),
        ("b.txt", 4, "bad-class"),
        ("b.txt", 5, "out-of-range"),
        ("b.txt", 6, "bad-size"),
        ("b.txt", 7, "out-of-range"),
        ("c.txt", 2, "duplicate"),
        ("c.txt", 3, "duplicate"),
        ("d.jpg", 0, "unreadable-image"),
        ("orphan.txt", 0, "orphan-label"),
    }


def test_yolo_planted_errors_each_listed_with_file_and_line(tmp_path: Path) -> None:
    expected = _planted_yolo(tmp_path)
    code, out = _run(str(tmp_path), "--json")
    assert code == 1
    result = json.loads(out)  # exactly one JSON object
    got = {(Path(i["path"]).name, i["line"], i["code"]) for i in result["issues"] if i["severity"] == "error"}
    assert got == expected
    warnings = [(Path(i["path"]).name, i["code"]) for i in result["issues"] if i["severity"] == "warning"]
    assert warnings == [("e.jpg", "missing-label")]
    assert result["errors"] == len(expected)
    assert result["boxes_per_class"]["hen"] >= 5

    code, text = _run(str(tmp_path / "data.yaml"))
    assert code == 1
    lines = text.splitlines()
    for name, line, _ in expected:
        where = f"{name}:{line}: error:" if line else f"{name}: error:"
        assert any(where in ln for ln in lines), f"{where} missing from output"
    assert any("e.jpg: warning:" in ln for ln in lines)


def test_missing_label_is_only_a_warning(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "train" / "a.jpg")
    _img(tmp_path / "images" / "train" / "b.jpg", seed=1)
    _img(tmp_path / "images" / "val" / "c.jpg", seed=2)
    _lab(tmp_path / "labels" / "train" / "a.txt", ["0 0.5 0.5 0.2 0.2"])
    _lab(tmp_path / "labels" / "val" / "c.txt", [])  # empty file: a labelled negative, no warning
    yolo.write_data_yaml(tmp_path, {0: "bird"}, "images/train", "images/val")
    code, out = _run(str(tmp_path), "--json")
    result = json.loads(out)
    assert code == 0, out
    assert result["errors"] == 0 and result["warnings"] == 1
    assert result["issues"][0]["code"] == "missing-label" and result["issues"][0]["path"].endswith("b.jpg")
    assert result["empty_frames"] == 2 and result["boxes"] == 1


def test_split_overlap_is_a_warning_on_the_yaml_line(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg")
    _lab(tmp_path / "labels" / "a.txt", ["0 0.5 0.5 0.2 0.2"])
    yolo.write_data_yaml(tmp_path, ["bird"], "images", "images")
    report = validate(tmp_path)
    assert report.ok
    (w,) = report.warnings
    assert (w.code, w.line) == ("split-overlap", 3) and w.path.endswith("data.yaml")


def test_yolo_bad_yaml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/nowhere\nval: images/nowhere\nnames: [a]\n")
    code, out = _run(str(tmp_path / "data.yaml"), "--json")
    assert code == 1
    issue = json.loads(out)["issues"][0]
    assert issue["path"].endswith("data.yaml") and "nowhere" in issue["message"]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_coco_planted_errors(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "ok.jpg")
    (tmp_path / "images" / "bad.jpg").write_bytes(b"garbage")
    data = {
        "images": [
            {"id": 1, "file_name": "ok.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "bad.jpg", "width": W, "height": H},
            {"id": 3, "file_name": "gone.jpg", "width": W, "height": H},
            {"id": 4, "file_name": "ok.jpg", "width": 100, "height": H},
        ],
        "categories": [{"id": 1, "name": "hen"}],
        "annotations": [
            {"id": 101, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 102, "image_id": 99, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 103, "image_id": 1, "category_id": 7, "bbox": [20, 1, 10, 10]},
            {"id": 104, "image_id": 1, "category_id": 1, "bbox": [60, 40, 10, 10]},
            {"id": 105, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},
            {"id": 106, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 107, "image_id": 1, "category_id": 1, "bbox": [1, 1]},
        ],
    }
    f = tmp_path / "annotations" / "instances_train.json"
    f.parent.mkdir()
    text = json.dumps(data, indent=2)
    f.write_text(text)
    # indent=2 puts `{` on the line before the object's first key
    ann = {k: _line_of(text, f'"id": {k},') - 1 for k in (102, 103, 104, 105, 106, 107)}
    img = {k: _line_of(text, f'"id": {k},') - 1 for k in (3, 4)}
    ann[101] = _line_of(text, '"id": 101,') - 1
    assert detect_format(tmp_path) == "coco"
    code, out = _run(str(tmp_path), "--json")
    assert code == 1
    got = {(Path(i["path"]).name, i["line"], i["code"]) for i in json.loads(out)["issues"]}
    assert got == {
        ("instances_train.json", ann[102], "dangling-image-id"),
        ("instances_train.json", ann[103], "dangling-category-id"),
        ("instances_train.json", ann[104], "outside-image"),
        ("instances_train.json", ann[105], "bad-size"),
        ("instances_train.json", ann[106], "duplicate"),
        ("instances_train.json", ann[107], "malformed"),
        ("instances_train.json", img[3], "missing-image"),
        ("instances_train.json", img[4], "size-mismatch"),
        ("bad.jpg", 0, "unreadable-image"),
    }


def test_coco_invalid_json_line(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{\n"images": [],\n"annotations": [,]\n}\n')
    report = validate(f)
    assert [(i.line, i.code) for i in report.errors] == [(3, "json")]


def test_mot_planted_errors(tmp_path: Path) -> None:
    seq = tmp_path / "seq01"
    for fr in range(1, 5):
        _img(seq / "img1" / f"{fr:06d}.jpg", seed=fr)
    (seq / "img1" / "000005.jpg").write_bytes(b"not an image")
    mot.write_seqinfo(seq, name="seq01", frame_rate=10, seq_length=5, im_width=W, im_height=H)
    gt = seq / "gt" / "gt.txt"
    gt.parent.mkdir()
    gt.write_text(
        "\n".join(
            [
                "1,1,10,10,8,8,1,1,1",
                "7,1,10,10,8,8,1,1,1",  # 2: frame beyond seqLength
                "2,1,100,10,8,8,1,1,1",  # 3: box outside the image
                "1,1,20,20,8,8,1,1,1",  # 4: track 1 twice in frame 1
                "2,2,10,x,8,8,1,1,1",  # 5: not a number
                "3,3,60,10,8,8,1,1,1",  # 6: partly outside: warning
                "1,2,10,10,8,8,1,1,1",  # 7: duplicate box of line 1
                "3,4,10,10,-2,8,1,1,1",  # 8: negative width
            ]
        )
        + "\n"
    )
    code, out = _run(str(seq), "--json")
    assert code == 1
    issues = json.loads(out)["issues"]
    got = {(Path(i["path"]).name, i["line"], i["severity"], i["code"]) for i in issues}
    assert got == {
        ("gt.txt", 2, "error", "frame-range"),
        ("gt.txt", 3, "error", "outside-image"),
        ("gt.txt", 4, "error", "duplicate-id"),
        ("gt.txt", 5, "error", "malformed"),
        ("gt.txt", 6, "warning", "partly-outside"),
        ("gt.txt", 7, "error", "duplicate"),
        ("gt.txt", 8, "error", "bad-size"),
        ("000005.jpg", 0, "error", "unreadable-image"),
    }


def test_format_flag_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: yolo, coco, mot"):
        validate(tmp_path, "voc")
    code, _ = _run(str(tmp_path), "--format", "voc")
    assert code == 2


def test_coco_without_any_image_is_one_error(tmp_path: Path) -> None:
    from datasets.formats import coco

    coco.write_coco(tmp_path / "a.json", ["hen"], [(f"{i}.jpg", (W, H), [[1, 1, 5, 5]], [0]) for i in range(50)])
    report = validate(tmp_path / "a.json")
    assert [(i.code, i.line) for i in report.issues] == [("missing-image", 0)]
    assert report.stats["unreadable_images"] == 50


def test_bare_yolo_dir_without_yaml(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg")
    _lab(tmp_path / "labels" / "a.txt", ["3 0.5 0.5 0.2 0.2", "0 0.5 0.5 0.2 0.2 0.3"])
    report = validate(tmp_path)
    assert report.format == "yolo"
    assert [(Path(i.path).name, i.line, i.code) for i in report.issues] == [
        (tmp_path.name, 0, "no-yaml"),
        ("a.txt", 2, "malformed"),
    ]


@pytest.mark.parametrize(
    ("boxes", "groups", "expected"),
    [
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [(1, 0)]),  # exact
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 1], []),  # other class
        ([[0, 0, 10, 10], [0.1, 0, 10.1, 10]], [0, 0], [(1, 0)]),  # IoU 0.98
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0, 0], []),  # IoU 0.82
        ([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10], [0, 0, 10, 10]], [0, 0, 0, 0], [(2, 0), (3, 0)]),
        ([[0, 0, 10, 10]], [0], []),
    ],
)
def test_duplicate_pairs(boxes: list[list[float]], groups: list[int], expected: list[tuple[int, int]]) -> None:
    from datasets.validate import duplicate_pairs

    got = duplicate_pairs(np.asarray(boxes, np.float64), groups)
    assert [(i, j) for i, j, _ in got] == expected
