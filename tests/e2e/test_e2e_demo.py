"""`flockid demo` as a user runs it (one simulated day, ground-truth detection to stay quick):
the command finishes, prints the lender summary and writes the video, charts and summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2


def test_demo_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "flockid.cli", "demo", "--out", str(out), "--days", "1", "--seed", "3",
           "--detector", "ground-truth"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Lender summary" in proc.stdout
    assert "/dashboard" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chain_ok"] is True
    assert summary["flock_reports"] == 4 and summary["reports_uploaded"] >= 4
    assert 20 <= summary["headcount"] <= 26  # 24 birds on the farm
    assert summary["headcount_low"] <= summary["headcount"] <= summary["headcount_high"]
    assert summary["placed_count"] == 24 and "placed (farm's record)" in proc.stdout
    assert summary["mean_weight_g"] and 300 < summary["mean_weight_g"] < 3000
    assert summary["collateral_value"] > 0 and summary["ltv"] > 0
    for chart in ("headcount", "weight", "valuation"):
        png = out / f"{chart}.png"
        assert png.stat().st_size > 10_000, chart
        img = cv2.imread(str(png))
        assert img is not None and img.shape[1] >= 600
    video = Path(summary["outputs"]["video"])
    cap = cv2.VideoCapture(str(video))
    try:
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 100
    finally:
        cap.release()
