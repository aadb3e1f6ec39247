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
