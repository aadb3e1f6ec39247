"""The world on disk: MOT sequences, YOLO detection sets, re-ID crop sets, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from datasets.formats.mot import read_gt, read_seqinfo
from datasets.formats.yolo import label_path_for, read_data_yaml, read_labels
from datasets.stats import dataset_stats, reentry_events
from datasets.synth import FlockWorld, WorldConfig
from datasets.synth.detect import write_detect_dataset
from datasets.synth.reid import write_reid_dataset
from datasets.synth.sequence import read_frames_csv, write_sequence


def test_mot_sequence_files(tmp_path: Path) -> None:
    cfg = WorldConfig(seed=2, frames=25, birds=12, size_wh=(320, 180), night_fraction=0.4, dead_birds=1)
    world = FlockWorld(cfg)
    (seq,) = write_sequence(world, tmp_path / "seq")
    info = read_seqinfo(seq)
    assert info["seq_length"] == 25 and info["im_width"] == 320 and info["im_height"] == 180
    assert info["frame_rate"] == 10
    gt = read_gt(seq / "gt" / "gt.txt")
    assert len(gt) > 0
    assert gt.frame.min() >= 1 and gt.frame.max() <= 25
    assert np.all(gt.visibility >= cfg.gt_min_visibility) and np.all(gt.visibility <= 1)
    assert np.all(gt.xyxy[:, 0] >= 0) and np.all(gt.xyxy[:, 2] <= 320 + 1e-3)
    assert np.all(gt.xyxy[:, 3] <= 180 + 1e-3) and np.all(gt.xyxy[:, 2] > gt.xyxy[:, 0])
    assert set(np.unique(gt.track_id)) <= set(range(1, 13))
    assert len(list((seq / "img1").glob("*.jpg"))) == 25
    cap = cv2.VideoCapture(str(seq / "video.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 25
    fc = read_frames_csv(seq)
    assert fc is not None
    assert list(fc["frame"]) == list(range(1, 26))
    assert np.allclose(np.diff(fc["time_s"]), 0.1)
    assert 0 < fc["is_night"].mean() < 1
    birds = json.loads((seq / "birds.json").read_text())
    assert len(birds["birds"]) == 12
    b = birds["birds"][0]
    assert {"bird_id", "traits", "growth", "weight_g_by_day", "health", "removed_at_s", "sex"} <= set(b)
    assert {"pattern", "primary_bgr", "secondary_bgr", "comb", "shape"} <= set(b["traits"])
    assert b["traits"]["pattern"] in ("solid", "barred", "speckled", "two-tone")
    assert birds["config"]["seed"] == 2
    dead = [x for x in birds["birds"] if x["health"][-1]["state"] == "dead"]
    assert len(dead) == 1
    # Same seed -> identical bytes of gt.
    (seq2,) = write_sequence(FlockWorld(cfg), tmp_path / "seq2", images=False, video=False)
    assert (seq / "gt" / "gt.txt").read_bytes() == (seq2 / "gt" / "gt.txt").read_bytes()
    assert (seq / "frames.csv").read_bytes() == (seq2 / "frames.csv").read_bytes()
    st = dataset_stats(seq)
    assert st["frames"] == 25 and st["boxes"] == len(gt)
    assert st["night_fraction"] == float(fc["is_night"].mean())


def test_multi_camera_sequences(tmp_path: Path) -> None:
    cfg = WorldConfig(seed=5, frames=10, birds=20, size_wh=(320, 180), cameras=2)
    seqs = write_sequence(FlockWorld(cfg), tmp_path / "farm", images=False, video=False)
    assert [s.name for s in seqs] == ["cam0", "cam1"]
    ids = [set(np.unique(read_gt(s / "gt" / "gt.txt").track_id).tolist()) for s in seqs]
    assert ids[0] & ids[1]
    st = dataset_stats(tmp_path / "farm")
    assert st["sequences"] == 2 and st["frames"] == 20


def test_reentry_counting() -> None:
    tid = np.array([1, 1, 1, 1, 2, 2, 3])
    t = np.array([0.0, 0.1, 3.0, 3.1, 0.0, 1.0, 5.0])
    assert reentry_events(tid, t, min_gap_s=2.0) == 1
    assert reentry_events(tid, t, min_gap_s=0.5) == 2


def test_yolo_detect_dataset(tmp_path: Path) -> None:
    res = write_detect_dataset(tmp_path / "det", images=12, size_wh=(320, 192), seed=1, night_fraction=0.5,
                               per_world=3, val_fraction=0.5)
    assert res["train"] == 6 and res["val"] == 6
    ds = read_data_yaml(tmp_path / "det")
    assert ds.names == ["chicken"]
    assert len(ds.images("train")) == res["train"] and len(ds.images("val")) == res["val"]
    total = 0
    for img in ds.images():
        xyxy, cls = read_labels(label_path_for(img), (320, 192))
        assert np.all(cls == 0)
        assert np.all(xyxy >= -1e-3) and np.all(xyxy[:, 2] <= 320 + 1e-3)
        total += len(xyxy)
    assert total == res["boxes"] and total > 0
    splits = json.loads((tmp_path / "det" / "splits.json").read_text())
    assert len(splits["images"]) == 12
    assert splits["val_night"] and splits["val_day"]
    assert set(splits["val_night"]).isdisjoint(splits["val_day"])
    nights = {r["image"] for r in splits["images"] if r["night"]}
    assert set(splits["val_night"]) <= nights
    # Night images really are greyscale.
    im = cv2.imread(str(tmp_path / "det" / splits["val_night"][0])).astype(int)
    assert np.abs(im[..., 0] - im[..., 2]).mean() < 3


def test_reid_crops_split_by_identity(tmp_path: Path) -> None:
    res = write_reid_dataset(tmp_path / "reid", identities=10, per_id=4, seed=3, size_wh=(320, 180))
    root = tmp_path / "reid"
    train = {p.name for p in (root / "train").iterdir()}
    query = {p.name for p in (root / "query").iterdir()}
    gallery = {p.name for p in (root / "gallery").iterdir()}
    assert train and query
    assert train.isdisjoint(query) and train.isdisjoint(gallery)
    assert query <= gallery
    for d in ("enrol", "later"):
        ids = {p.name for p in (root / d).iterdir()} if (root / d).exists() else set()
        assert ids and ids.isdisjoint(train)
    meta = json.loads((root / "meta.json").read_text())["identities"]
    assert set(meta) == train | gallery | {k for k, v in meta.items() if v["split"] == "test"}
    assert res["train"] == sum(len(list((root / "train" / i).glob("*.jpg"))) for i in train)
    crop = cv2.imread(str(next((root / "train").glob("*/*.jpg"))))
    assert crop is not None and min(crop.shape[:2]) >= 14


def test_cli_synth_and_stats(tmp_path: Path) -> None:
    from flockid.cli import app

    runner = CliRunner()
    out = tmp_path / "s"
    r = runner.invoke(app, ["data", "synth", str(out), "--seed", "3", "--birds", "10", "--frames", "8",
                            "--size", "320x180", "--night-fraction", "0.5", "--no-video"])
    assert r.exit_code == 0, r.output
    assert (out / "gt" / "gt.txt").is_file() and not (out / "video.mp4").exists()
    r = runner.invoke(app, ["data", "stats", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["frames"] == 8 and data["night_fraction"] == 0.5
    assert {"mean_occlusion", "p90_occlusion", "frac_visibility_lt_0_5", "reentry_events", "lookalike_pairs"} <= set(
        data
    )
    r = runner.invoke(app, ["data", "synth", str(tmp_path / "x"), "--flock", "zoo"])
    assert r.exit_code != 0 and "mixed" in r.output
    r = runner.invoke(app, ["data", "stats", str(tmp_path / "nothing-here")])
    assert r.exit_code != 0


def test_stats_on_a_plain_mot_sequence(tmp_path: Path) -> None:
    from datasets.formats.mot import write_gt, write_seqinfo

    seq = tmp_path / "real"
    write_seqinfo(seq, name="real", frame_rate=5, seq_length=20, im_width=64, im_height=48)
    frames = np.array([1, 2, 3, 15, 1, 2])
    ids = np.array([1, 1, 1, 1, 2, 2])
    xyxy = np.tile([[1.0, 1.0, 11.0, 21.0]], (6, 1))
    vis = np.array([1.0, 0.4, 0.2, 0.9, 0.3, 1.0])
    write_gt(seq / "gt" / "gt.txt", frames, ids, xyxy, vis)
    (seq / "img1").mkdir()
    for k in range(1, 21):
        img = np.full((48, 64, 3), 90, np.uint8)
        if k <= 10:
            img[..., 2] = 200  # colour (day) for the first half, grey (infra-red) after
        cv2.imwrite(str(seq / "img1" / f"{k:06d}.png"), img)
    st = dataset_stats(tmp_path)
    assert st["sequences"] == 1 and st["boxes"] == 6 and st["tracks"] == 2
    assert st["frac_visibility_lt_0_5"] == 0.5
    assert abs(st["mean_occlusion"] - (1 - vis.mean())) < 1e-9
    assert st["reentry_events"] == 1  # track 1: frame 3 -> 15 at 5 fps is 2.4 s away
    assert st["lookalike_pairs"] is None  # no birds.json: unknown, not zero
    assert st["night_fraction"] == 0.5


def test_detect_worlds_show_sick_and_dead_birds_in_view() -> None:
    from datasets.synth.detect import random_world_config

    rng = np.random.default_rng(0)
    cfgs = [random_world_config(rng, s, (320, 180), False, 3) for s in range(40)]
    # Carcasses and sitting sick birds are what mortality rests on: most worlds hold some.
    assert sum(c.dead_birds > 0 for c in cfgs) >= 0.6 * len(cfgs)
    assert sum(c.sick_birds > 0 for c in cfgs) >= 0.5 * len(cfgs)
    assert all(c.dead_birds + c.sick_birds <= c.birds for c in cfgs)
    cfg = next(c for c in cfgs if c.dead_birds >= 2)
    states = [f.gt.annotated(0.2).state for f in FlockWorld(cfg).frames()]
    # Dead from the first second on and moved into the camera's view: labelled on the later frames.
    assert all(int((s == "dead").sum()) >= 1 for s in states[1:])
