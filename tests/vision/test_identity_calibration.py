"""Appearance thresholds follow the re-ID model card's similarity calibration (vision.identity.calibration)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import make_constant_yolo, make_mean_colour_embedder

from vision.identity import IdentityConfig
from vision.identity.calibration import (
    CARD_BLOCK,
    AppearanceCalibration,
    appearance_calibration_from_card,
    calibration_from_card,
)
from vision.pipeline import (
    DetectorCalibration,
    FlockPipeline,
    PipelineConfig,
    calibrate_config,
    counting_config_from_card,
    identity_config_from_card,
    reid_tracker_config_from_card,
)

BLOCK = {
    "same": {"p1": -0.1, "p5": 0.1, "p10": 0.2, "p25": 0.36, "p50": 0.54},
    "different": {"p50": 0.16, "p90": 0.52, "p95": 0.61, "p99": 0.77, "p99.9": 0.89},
    "threshold": 0.35,
}


def _write(model: Path, card: dict[str, object]) -> Path:
    model.with_suffix(".json").write_text(json.dumps(card))
    return model


def test_block_gives_every_appearance_threshold() -> None:
    cal = calibration_from_card({CARD_BLOCK: BLOCK})
    assert cal is not None and cal.spread == pytest.approx(0.38)
    assert cal.tracker_config() == pytest.approx(
        {"app_reject": 0.9, "app_rescue": 0.11, "reid_min_sim": 0.77, "reid_margin": 0.076}
    )
    ident = cal.identity_config()
    assert ident == pytest.approx(
        {"match_threshold": 0.77, "new_threshold": 0.54, "margin": 0.038, "reverify_drop": 0.152,
         "exemplar_novelty": 0.77, "relink_min_sim": 0.1}  # same.p5: the tracker's veto (1 - app_reject)
    )
    IdentityConfig(**ident)  # a valid config
    assert cal.counting_config() == pytest.approx({"duplicate_sim": 0.77})


def test_thresholds_move_with_the_model_scale() -> None:
    """A model whose similarities sit higher gets stricter thresholds; nothing is pinned to one model."""
    low = calibration_from_card({"match_threshold": 0.3})
    high = calibration_from_card({"match_threshold": 0.6})
    assert low is not None and high is not None
    for key in ("reid_min_sim",):
        assert high.tracker_config()[key] > low.tracker_config()[key]
    # A veto distance shrinks (a stricter veto) as the same-bird similarities rise.
    assert high.tracker_config()["app_reject"] < low.tracker_config()["app_reject"]
    for key in ("match_threshold", "new_threshold"):
        assert high.identity_config()[key] > low.identity_config()[key]
    assert high.counting_config()["duplicate_sim"] > low.counting_config()["duplicate_sim"]
    assert "match_threshold" in low.source


def test_fallback_from_match_threshold_is_ordered_and_valid() -> None:
    for t in (-0.5, 0.0, 0.3075, 0.45, 0.9):
        cal = calibration_from_card({"match_threshold": t})
        assert cal is not None
        assert cal.same_p5 <= cal.threshold <= cal.same_p50
        assert cal.diff_p50 <= cal.threshold <= cal.diff_p99 <= cal.diff_p999
        tc = cal.tracker_config()
        assert 0.0 <= tc["app_rescue"] <= tc["app_reject"] <= 1.0
        IdentityConfig(**cal.identity_config())


def test_no_card_no_calibration(tmp_path: Path) -> None:
    model = tmp_path / "reid.onnx"
    assert appearance_calibration_from_card(model) is None
    assert reid_tracker_config_from_card(model) == {}
    assert counting_config_from_card(model) == {}
    assert identity_config_from_card(model) == IdentityConfig()
    assert calibration_from_card({"task": "reid"}) is None


@pytest.mark.parametrize(
    ("card", "match"),
    [
        ({CARD_BLOCK: [0.1]}, "must be an object"),
        ({CARD_BLOCK: {"same": {"p5": 0.1}}}, "needs objects 'same'"),
        ({CARD_BLOCK: {**BLOCK, "same": {"p5": 0.1}}}, r"same\.p50 must be a number"),
        ({CARD_BLOCK: {**BLOCK, "threshold": "0.3"}}, r"threshold must be a number"),
        ({CARD_BLOCK: {**BLOCK, "threshold": 1.5}}, r"threshold must be a cosine similarity"),
        ({CARD_BLOCK: {**BLOCK, "different": {**BLOCK["different"], "p99": 0.95}}}, "must increase"),  # type: ignore[dict-item]
        ({"match_threshold": True}, "match_threshold must be a number"),
        ({"match_threshold": 1.0}, r"match_threshold must be in \(-1, 1\)"),
    ],
)
def test_bad_cards_fail_naming_the_field(tmp_path: Path, card: dict[str, object], match: str) -> None:
    model = _write(tmp_path / "reid.onnx", card)
    with pytest.raises(ValueError, match=match):
        appearance_calibration_from_card(model)
    with pytest.raises(ValueError, match="reid.json"):
        appearance_calibration_from_card(model)


def test_block_wins_over_match_threshold_and_identity_block_wins_over_both(tmp_path: Path) -> None:
    model = _write(tmp_path / "reid.onnx", {"match_threshold": 0.3, CARD_BLOCK: BLOCK})
    cal = appearance_calibration_from_card(model)
    assert cal is not None and cal.threshold == 0.35 and CARD_BLOCK in cal.source
    assert identity_config_from_card(model).match_threshold == pytest.approx(0.77)
    _write(model, {CARD_BLOCK: BLOCK, "identity": {"match_threshold": 0.3}})
    cfg = identity_config_from_card(model)
    # The explicit match threshold stays; the derived new_threshold (0.54) moves under it.
    assert cfg.match_threshold == 0.3 and cfg.new_threshold == pytest.approx(0.3)
    assert cfg.margin == pytest.approx(0.038)
    _write(model, {CARD_BLOCK: BLOCK, "identity": {"new_threshold": 0.8}})
    cfg = identity_config_from_card(model)
    assert cfg.new_threshold == 0.8 and cfg.match_threshold == pytest.approx(0.8)


def test_user_config_wins_over_the_card() -> None:
    cal = calibration_from_card({CARD_BLOCK: BLOCK})
    assert cal is not None
    det = DetectorCalibration(None, "t")
    auto = calibrate_config(PipelineConfig(), det, cal.tracker_config(), cal.counting_config())
    assert auto.tracker_config["reid_min_sim"] == pytest.approx(0.77)
    assert auto.counting.duplicate_sim == pytest.approx(0.77)
    user = PipelineConfig(tracker_config={"reid_min_sim": 0.9}, counting={"duplicate_sim": 0.5})  # type: ignore[arg-type]
    mine = calibrate_config(user, det, cal.tracker_config(), cal.counting_config())
    assert mine.tracker_config["reid_min_sim"] == 0.9 and mine.counting.duplicate_sim == 0.5
    assert mine.tracker_config["app_reject"] == pytest.approx(0.9)  # the rest still calibrated


def test_from_defaults_applies_the_card_to_tracker_registry_and_counting(tmp_path: Path) -> None:
    det_path = make_constant_yolo(tmp_path / "det.onnx", np.zeros((1, 5, 4), np.float32), imgsz=64)
    reid_path = _write(make_mean_colour_embedder(tmp_path / "reid.onnx"), {CARD_BLOCK: BLOCK})
    pipe = FlockPipeline.from_defaults(detector_path=det_path, reid_path=reid_path)
    assert isinstance(pipe.appearance, AppearanceCalibration)
    tc = pipe.tracker.config  # type: ignore[attr-defined]
    assert (tc.app_reject, tc.reid_min_sim) == pytest.approx((0.9, 0.77))
    assert pipe.registry.config.match_threshold == pytest.approx(0.77)
    assert pipe.registry.config.new_threshold == pytest.approx(0.54)
    assert pipe.config.counting.duplicate_sim == pytest.approx(0.77)
    bare_reid = make_mean_colour_embedder(tmp_path / "p.onnx")
    plain = FlockPipeline.from_defaults(detector_path=det_path, reid_path=bare_reid)
    assert plain.appearance is None and plain.registry.config == IdentityConfig()


def test_training_calibration_block_round_trips_into_the_edge(tmp_path: Path) -> None:
    """`training.eval_reid.similarity_calibration` writes the block this module reads."""
    from training.eval_reid import similarity_calibration

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (6, 3))
    for split in ("query", "gallery"):
        for k, c in enumerate(colours):
            d = tmp_path / "crops" / split / f"bird{k}"
            d.mkdir(parents=True)
            for j in range(3):
                img = np.clip(c + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(d / f"{j}.png"), img)
    model = make_mean_colour_embedder(tmp_path / "reid.onnx")
    block = similarity_calibration(model, tmp_path / "crops")
    assert block["same_pairs"] == 6 * 3 * 3 and block["different_pairs"] == 6 * 3 * 15
    assert block["same"]["p50"] > block["different"]["p50"]
    _write(model, {CARD_BLOCK: block})
    cal = appearance_calibration_from_card(model)
    assert cal is not None and cal.same_p50 == block["same"]["p50"] and cal.diff_p99 == block["different"]["p99"]
    with pytest.raises(FileNotFoundError, match="query"):
        similarity_calibration(model, tmp_path)


def test_a_callers_identity_config_keeps_what_it_sets_and_takes_the_rest_from_the_card(tmp_path: Path) -> None:
    """The edge passes IdentityConfig(**options): options it leaves out still follow the model card."""
    model = _write(tmp_path / "reid.onnx", {CARD_BLOCK: BLOCK})
    assert identity_config_from_card(model, IdentityConfig()).match_threshold == pytest.approx(0.77)
    mine = identity_config_from_card(model, IdentityConfig(margin=0.2, enroll_min_frames=9))
    assert (mine.margin, mine.enroll_min_frames) == (0.2, 9)
    assert (mine.match_threshold, mine.new_threshold) == pytest.approx((0.77, 0.54))
    both = identity_config_from_card(model, IdentityConfig(new_threshold=0.8, match_threshold=0.9))
    assert (both.new_threshold, both.match_threshold) == (0.8, 0.9)
    only_new = identity_config_from_card(model, IdentityConfig(new_threshold=0.6))
    assert (only_new.new_threshold, only_new.match_threshold) == pytest.approx((0.6, 0.77))
    # Setting only match_threshold below the card's new threshold moves new_threshold down with it.
    only_match = identity_config_from_card(model, IdentityConfig(match_threshold=0.4, new_threshold=0.3))
    assert (only_match.match_threshold, only_match.new_threshold) == (0.4, 0.3)
    low = identity_config_from_card(model, IdentityConfig.model_validate({"match_threshold": 0.5}))
    assert (low.match_threshold, low.new_threshold) == (0.5, 0.5)
    assert identity_config_from_card(tmp_path / "none.onnx", IdentityConfig(margin=0.2)) == IdentityConfig(margin=0.2)
