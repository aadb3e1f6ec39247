"""`flockid bench pipeline` runs end to end and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner


def test_bench_pipeline_reports_all_runners():
    from flockid.cli import app
    from vision.weights import default_detector_path, read_card

    # The shipped detector may be a fixed-shape export of any size: bench it at its own size.
    imgsz = int(read_card(default_detector_path()).get("imgsz", 320))
    res = CliRunner().invoke(app, ["bench", "pipeline", "--frames", "7", "--imgsz", str(imgsz), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["frames"] == 2 and r["imgsz"] == imgsz
    assert r["embed_crops_per_frame"] >= 0 and r["pipeline_cpu_ms_per_frame"] > 0
    for key in ("bare", "pipeline", "ultralytics_track_onnx", "ultralytics_track_pt"):
        assert r[f"{key}_ms_mean"] > 0, key
    for key in ("ratio_pipeline_vs_bare", "ratio_ultralytics_track_onnx_vs_pipeline",
                "ratio_ultralytics_track_pt_vs_pipeline"):
        assert r[key] > 0, key
    assert isinstance(r["meets_target"], bool)
    import onnxruntime

    assert r["environment"]["packages"]["onnxruntime"] == onnxruntime.__version__


def test_bench_pipeline_blocks_skip_the_first_frame_of_each_turn():
    import pytest

    from training.bench import bench_pipeline, synthetic_frames
    from vision.weights import default_detector_path, default_reid_path, read_card

    imgsz = int(read_card(default_detector_path()).get("imgsz", 320))
    frames = synthetic_frames(9)
    # Warm-up 5, turns of 3 frames: 0-2, 3-5, 6-8; timed are 5 (not first of its turn), 7 and 8.
    r = bench_pipeline(frames, detector=default_detector_path(), reid=default_reid_path(), pt=None,
                       imgsz=imgsz, ultralytics=False, block=3)
    assert r["frames"] == 4 and r["timed_frames"] == 3 and r["block"] == 3
    assert "ultralytics_track_onnx_ms_mean" not in r and r["pipeline_ms_mean"] > 0
    with pytest.raises(ValueError, match="block"):
        bench_pipeline(frames, detector=default_detector_path(), reid=default_reid_path(), pt=None,
                       imgsz=imgsz, ultralytics=False, block=0)
    with pytest.raises(ValueError, match="no frame was timed"):
        bench_pipeline(frames[:6], detector=default_detector_path(), reid=default_reid_path(), pt=None,
                       imgsz=imgsz, ultralytics=False, block=5)
