"""Re-ID: sampler, augmentations, losses, smoke training + resume, export parity, int8, both eval protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.reid_data import PKSampler, augment, scan_crops
from training.reid_model import ArcFace, batch_hard_triplet, build_reid_model


def test_pk_sampler_batches_are_identity_balanced():
    labels = np.repeat(np.arange(5), [2, 3, 8, 1, 4])
    sampler = PKSampler(labels, p=3, k=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) >= 1
    for b in batches:
        ids, counts = np.unique(labels[b], return_counts=True)
        assert len(ids) == 3 and set(counts.tolist()) == {4}


def test_pk_sampler_rejects_single_identity():
    with pytest.raises(ValueError, match="at least 2 identities"):
        PKSampler(np.zeros(6, np.int64), p=2, k=2)


def test_augment_keeps_shape_range_and_is_seeded():
    batch = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    a = augment(batch, np.random.default_rng(3))
    b = augment(batch, np.random.default_rng(3))
    assert tuple(a.shape) == (6, 3, 32, 32)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)


def test_batch_hard_triplet_hand_case():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # positives at distance 0, negatives at distance 1: loss = relu(0 - 1 + m)
    assert float(batch_hard_triplet(emb, labels, margin=0.3)) == pytest.approx(0.0)
    assert float(batch_hard_triplet(emb, labels, margin=1.5)) == pytest.approx(0.5)


def test_model_output_is_unit_norm_and_arcface_trains():
    model = build_reid_model(dim=16, width=8)
    x = torch.rand(4, 3, 32, 32)
    y = model(x)
    assert y.shape == (4, 16)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(4))
    loss = ArcFace(16, 3)(model.features_of(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert loss.item() > 0
    with pytest.raises(ValueError, match="valid"):
        build_reid_model("ResNet9000")


def test_scan_crops_requires_images(tmp_path: Path):
    (tmp_path / "bird-1").mkdir()
    with pytest.raises(ValueError, match="no crops"):
        scan_crops(tmp_path)


@pytest.fixture(scope="module")
def reid_run(tiny_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from training.export import export_reid
    from training.reid_train import reid_recipe_config, train_reid

    out = tmp_path_factory.mktemp("reid")
    cfg = reid_recipe_config("smoke", data=tiny_crops, epochs=1)
    first = train_reid(cfg, out, log=lambda m: None)
    cfg2 = reid_recipe_config("smoke", data=tiny_crops, epochs=2)
    # a different config (epochs) starts over; same config + unfinished resumes
    rec = train_reid(cfg2, out, log=lambda m: None)
    exported = export_reid(out / "best.pt", out / "best.onnx", calib=tiny_crops)
    return {"out": out, "first": first, "record": rec, "export": exported}


def test_reid_training_writes_checkpoint_card_metrics(reid_run: dict):
    out = reid_run["out"]
    rec = reid_run["record"]
    assert len(rec["history"]) == 2 and rec["train_identities"] == 6
    ck = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert ck["data_sha256"] == rec["data_sha256"] and "match_threshold" in ck
    assert json.loads((out / "metrics.json").read_text())["task"] == "reid"


def test_reid_resume_continues_from_last(tiny_crops: Path, tmp_path: Path):
    from training.reid_train import reid_recipe_config, train_reid

    cfg = reid_recipe_config("smoke", data=tiny_crops, epochs=2)
    train_reid(cfg, tmp_path, log=lambda m: None)
    ck = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    ck["epoch"] = 1  # pretend it stopped after epoch 1
    ck["history"] = ck["history"][:1]
    torch.save(ck, tmp_path / "last.pt")
    msgs: list[str] = []
    rec = train_reid(cfg, tmp_path, log=msgs.append)
    assert any("resuming" in m for m in msgs)
    assert [h["epoch"] for h in rec["history"]] == [1, 2]


def test_reid_export_parity_and_card(reid_run: dict):
    exp = reid_run["export"]
    assert exp["parity_max_abs_diff"] < exp["tolerance"]
    card = json.loads(Path(exp["onnx"]).with_suffix(".json").read_text())
    assert card["task"] == "reid" and card["mean"] == [0.0, 0.0, 0.0] and card["std"] == [1.0, 1.0, 1.0]
    assert card["embedding_dim"] == 16 and card["input_size"] == [32, 32]
    for key in ("class_names", "training_data_sha256", "config", "metrics", "date", "source_checkpoint_sha256",
                "licence", "match_threshold"):
        assert key in card, key


def test_reid_parity_check_fails_on_a_wrong_model(reid_run: dict, tmp_path: Path):
    import onnxruntime as ort

    from training.export import max_abs_diff
    from training.reid_model import build_reid_model

    other = build_reid_model(dim=16, width=8).eval()
    sess = ort.InferenceSession(reid_run["export"]["onnx"], providers=["CPUExecutionProvider"])
    diff = max_abs_diff(other, sess, [np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)])
    assert diff > 1e-2


def test_eval_reid_cli_open_and_closed_set(reid_run: dict, tiny_crops: Path):
    from typer.testing import CliRunner

    from flockid.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "reid", "--model", reid_run["export"]["onnx"], "--data", str(tiny_crops),
                              "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["protocol"] == "open-set" and r["queries"] == 15 and r["identities"] == 5
    assert r["unknown_queries"] == 3  # every 5th gallery identity hidden: 1 of 5 ids x 3 queries
    assert 0 <= r["rank1"] <= r["rank5"] <= 1
    res = runner.invoke(app, ["eval", "reid", "--model", reid_run["export"]["onnx"], "--data", str(tiny_crops),
                              "--gallery", str(tiny_crops / "enrol"), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["protocol"] == "closed-set" and r["queries"] == 10 and r["unknown_queries"] == 0


def test_export_cli_int8_reid(reid_run: dict, tiny_crops: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from flockid.cli import app

    res = CliRunner().invoke(app, ["export", str(reid_run["out"] / "best.pt"), "--out", str(tmp_path / "r.onnx"),
                                   "--int8", "--calib", str(tiny_crops), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["kind"] == "reid" and r["parity_max_abs_diff"] < r["tolerance"]
    assert Path(r["int8"]["int8_model"]).is_file()
    assert set(r["int8"]["accuracy_int8"]) >= {"rank1", "mAP"}
