"""The shipped default models: present, small, loadable by the edge code, and honestly carded."""

from __future__ import annotations

import numpy as np
import pytest

from vision.weights import WEIGHTS_DIR, default_detector_path, default_reid_path, model_sha256, read_card

CARD_KEYS = ("task", "input_size", "class_names", "training_data_sha256", "config", "metrics", "date",
             "source_checkpoint_sha256", "licence", "model_sha256")


@pytest.mark.parametrize("getter", [default_detector_path, default_reid_path])
def test_shipped_model_has_complete_card(getter):
    path = getter()
    card = read_card(path)
    for key in CARD_KEYS:
        assert key in card, f"{path.name} card lacks {key}"
    assert card["model_sha256"] == model_sha256(path)
    assert path.stat().st_size < 30e6
    src = path.with_suffix(".pt")
    assert src.is_file(), "the torch checkpoint the model came from ships next to it"
    assert card["source_checkpoint_sha256"] == model_sha256(src)


def test_shipped_detector_runs_and_is_ultralytics_licensed():
    from vision.detector import OnnxDetector

    path = default_detector_path()
    card = read_card(path)
    assert card["task"] == "detect" and card["class_names"] == ["chicken"]
    assert "AGPL-3.0" in card["licence"]
    det = OnnxDetector(path)
    out = det.session.get_outputs()[0].shape
    assert out[1] == 4 + len(card["class_names"])
    d = det.detect(np.zeros((360, 640, 3), np.uint8))
    assert d.xyxy.shape[1] == 4


def test_shipped_reid_outputs_unit_vectors():
    from vision.embedder import OnnxEmbedder

    path = default_reid_path()
    card = read_card(path)
    assert card["task"] == "reid" and card["match_threshold"] is not None
    emb = OnnxEmbedder(path).embed_crops([np.full((40, 30, 3), v, np.uint8) for v in (30, 200)])
    assert emb.shape == (2, card["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_weights_dir_holds_only_small_files():
    for p in WEIGHTS_DIR.iterdir():
        assert p.stat().st_size < 30e6, p
