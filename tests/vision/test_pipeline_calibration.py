"""Confidence thresholds follow the detector's model card (conf_at_max_f1) unless the user sets them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import make_constant_yolo, make_mean_colour_embedder

from vision.pipeline import (
    DetectorCalibration,
    FlockPipeline,
    PipelineConfig,
    calibrate_config,
    detector_calibration_from_card,
    reid_tracker_config_from_card,
)


def _card(model: Path, value: object) -> None:
    model.with_suffix(".json").write_text(json.dumps({"metrics": {"synth_det/val": {"conf_at_max_f1": value}}}))


def test_calibration_reads_the_card_and_falls_back_without_it(tmp_path: Path) -> None:
    model = tmp_path / "det.onnx"
    none = detector_calibration_from_card(model)
    assert none.conf_at_max_f1 is None and none.tracker_config() == {}
    assert none.detector_conf() == 0.25  # no card: the detector's usual default
    model.with_suffix(".json").write_text(json.dumps({"metrics": {"other/val": {"conf_at_max_f1": 0.3}}}))
    assert detector_calibration_from_card(model).conf_at_max_f1 is None
    _card(model, 0.27)
    cal = detector_calibration_from_card(model)
    assert cal.conf_at_max_f1 == pytest.approx(0.27)
    assert cal.tracker_config() == pytest.approx({"high_thresh": 0.27, "new_track_thresh": 0.37, "low_thresh": 0.1})
    assert cal.detector_conf() == pytest.approx(0.1)
    # A detector that peaks low: the second stage goes below it.
    assert DetectorCalibration(0.12, "t").tracker_config()["low_thresh"] == pytest.approx(0.06)


@pytest.mark.parametrize("bad", ["0.3", 0.0, 1.0, -0.2, True])
def test_calibration_rejects_a_bad_card_value_naming_the_field(tmp_path: Path, bad: object) -> None:
    model = tmp_path / "det.onnx"
    _card(model, bad)
    with pytest.raises(ValueError, match="conf_at_max_f1"):
        detector_calibration_from_card(model)


def test_user_thresholds_win_over_the_calibration() -> None:
    cal = DetectorCalibration(0.27, "t")
    auto = calibrate_config(PipelineConfig(), cal)
    assert auto.tracker_config == pytest.approx({"high_thresh": 0.27, "new_track_thresh": 0.37, "low_thresh": 0.1})
    assert auto.embed_min_confidence == pytest.approx(0.27)  # a trusted box gets a crop, hence a bird id
    user = calibrate_config(
        PipelineConfig(tracker_config={"high_thresh": 0.6, "min_hits": 3}, embed_min_confidence=0.5), cal
    )
    assert user.tracker_config["high_thresh"] == 0.6 and user.tracker_config["min_hits"] == 3
    assert user.tracker_config["new_track_thresh"] == pytest.approx(0.37)
    assert user.embed_min_confidence == 0.5
    # User pins low above the calibrated high: high follows it so the config stays valid.
    low = calibrate_config(PipelineConfig(tracker_config={"low_thresh": 0.4}), cal).tracker_config
    assert low["low_thresh"] == 0.4 and low["high_thresh"] >= 0.4
    # User pins high below the calibrated low: low follows it.
    high = calibrate_config(PipelineConfig(tracker_config={"high_thresh": 0.05}), cal).tracker_config
    assert high["high_thresh"] == 0.05 and high["low_thresh"] <= 0.05
    # Other trackers have other knobs: left alone.
    assert calibrate_config(PipelineConfig(tracker="bytetrack"), cal).tracker_config == {}
    assert calibrate_config(PipelineConfig(), DetectorCalibration(None, "t")) == PipelineConfig()


def test_from_defaults_calibrates_tracker_and_detector_from_the_card(tmp_path: Path) -> None:
    raw = np.zeros((1, 5, 4), np.float32)
    # Four well-separated boxes scored 0.05 / 0.15 / 0.25 / 0.35: which ones survive depends on the floor.
    for k, score in enumerate([0.05, 0.15, 0.25, 0.35]):
        raw[0, :, k] = [8.0 + 14 * k, 32.0, 8.0, 8.0, score]
    det_path = make_constant_yolo(tmp_path / "det.onnx", raw, imgsz=64)
    reid_path = make_mean_colour_embedder(tmp_path / "reid.onnx")
    frame = np.full((64, 64, 3), 90, np.uint8)

    plain = FlockPipeline.from_defaults(detector_path=det_path, reid_path=reid_path)
    assert plain.calibration is not None and plain.calibration.conf_at_max_f1 is None
    assert plain.detector.conf == 0.25  # type: ignore[attr-defined]
    assert plain.tracker.config.high_thresh == 0.5  # type: ignore[attr-defined]

    _card(det_path, 0.2)
    pipe = FlockPipeline.from_defaults(detector_path=det_path, reid_path=reid_path)
    assert pipe.detector.conf == pytest.approx(0.1)  # type: ignore[attr-defined]
    cfg = pipe.tracker.config  # type: ignore[attr-defined]
    assert (cfg.high_thresh, cfg.new_track_thresh, cfg.low_thresh) == pytest.approx((0.2, 0.3, 0.1))
    assert len(pipe.detector.detect(frame)) == 3  # the 0.05 box is below the floor
    assert len(plain.detector.detect(frame)) == 2  # the old 0.25 floor left nothing for the low stage
    # The first frame starts (and confirms) a track only for the box >= new_track_thresh (0.35).
    out = pipe.process(frame, timestamp=0.0, frame_index=0)
    assert out.confidence.tolist() == pytest.approx([0.35])

    user = FlockPipeline.from_defaults(
        detector_path=det_path,
        reid_path=reid_path,
        conf=0.3,
        config=PipelineConfig(tracker_config={"high_thresh": 0.3, "new_track_thresh": 0.3, "low_thresh": 0.3}),
    )
    assert user.detector.conf == 0.3  # type: ignore[attr-defined]
    assert user.tracker.config.low_thresh == 0.3  # type: ignore[attr-defined]
    # conf left to derive: it follows the user's low threshold, not the card's.
    low = FlockPipeline.from_defaults(
        detector_path=det_path, reid_path=reid_path, config=PipelineConfig(tracker_config={"low_thresh": 0.15})
    )
    assert low.detector.conf == pytest.approx(0.15)  # type: ignore[attr-defined]


def test_a_weak_reid_model_leans_the_tracker_on_motion(tmp_path: Path) -> None:
    model = tmp_path / "reid.onnx"
    assert reid_tracker_config_from_card(model) == {}  # no card: tracker defaults

    def card(rank1: object) -> None:
        model.with_suffix(".json").write_text(json.dumps({"metrics": {"synth_reid/open-set": {"rank1": rank1}}}))

    card(0.9)
    assert reid_tracker_config_from_card(model) == {}
    card(0.28)
    weak = reid_tracker_config_from_card(model)
    assert weak == {"motion_weight": pytest.approx(0.8)}  # similarity thresholds need a calibration
    cfg = calibrate_config(PipelineConfig(tracker_config={"motion_weight": 0.6}), DetectorCalibration(None, "t"), weak)
    assert cfg.tracker_config == {"motion_weight": 0.6}  # user wins
    card("high")
    with pytest.raises(ValueError, match="rank1"):
        reid_tracker_config_from_card(model)


def test_the_tracker_uses_its_sparse_model_on_the_frames_where_every_box_is_embedded() -> None:
    from vision.tracking import make_tracker

    cfg = PipelineConfig(embed_all_above_dt_s=2.0)
    tracker = make_tracker(cfg.tracker, **cfg.tracker_kwargs())
    assert tracker.config.sparse_above_dt_s == 2.0  # type: ignore[attr-defined]
    user = PipelineConfig(embed_all_above_dt_s=2.0, tracker_config={"sparse_above_dt_s": 1.0, "min_hits": 3})
    assert user.tracker_kwargs() == {"sparse_above_dt_s": 1.0, "min_hits": 3}  # the user's setting wins
    assert PipelineConfig(tracker="bytetrack", tracker_config={"x": 1}).tracker_kwargs() == {"x": 1}
