"""`flockid bench pipeline` runs end to end and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner


def test_bench_pipeline_reports_all_runners():
    from flockid.cli import app

    res = CliRunner().invoke(app, ["bench", "pipeline", "--frames", "7", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["frames"] == 2 and r["imgsz"] == 320
    for key in ("bare", "pipeline", "ultralytics_track_onnx", "ultralytics_track_pt"):
        assert r[f"{key}_ms_mean"] > 0, key
    for key in ("ratio_pipeline_vs_bare", "ratio_ultralytics_track_onnx_vs_pipeline",
                "ratio_ultralytics_track_pt_vs_pipeline"):
        assert r[key] > 0, key
    assert isinstance(r["meets_target"], bool)
