"""`flockid demo` as a user runs it (one simulated day, ground-truth detection to stay quick):
the command finishes, prints the lender summary and writes the video, charts and summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest


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
    # Four 6-hour windows, one of them cut short by an early report when the dead bird is judged dead.
    assert summary["flock_reports"] == 5 and summary["reports_uploaded"] >= 5
    assert 20 <= summary["headcount"] <= 26  # 24 birds on the farm
    assert summary["headcount_low"] <= summary["headcount"] <= summary["headcount_high"]
    assert summary["placed_count"] == 24 and "placed (farm's record)" in proc.stdout
    assert summary["mean_weight_g"] and 300 < summary["mean_weight_g"] < 3000
    assert summary["collateral_value"] > 0 and summary["ltv"] > 0
    # One day: the bird that dies at 0.45 days is told within the 10-hour upper bound of the hourly
    # series, and with ground-truth boxes every band holds the 24 birds on the farm (the carcass stays).
    tc = summary["truth_check"]
    assert tc["deaths_true"] == 1 and tc["deaths_reported"] == 1 and tc["deaths_reported_before_any_death"] == 0
    assert tc["death_to_lender_h_at_most"][0] is not None and tc["death_to_lender_h_at_most"][0] <= 10
    assert tc["band_holds_truth"] == tc["buckets_with_headcount"] >= 5
    assert "checked against the synthetic truth" in proc.stdout
    assert summary["footage"]["seed"] == 3 and summary["footage"]["end"].endswith("T00:00:00+00:00")
    assert summary["environment"]["packages"]["numpy"]
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


@pytest.mark.parametrize(
    "now",
    ["2026-12-07T00:00:00+00:00", "2026-12-07T00:20:00+00:00", "2026-12-07T05:59:59+00:00",
     "2026-12-07T13:00:00+00:00", "2026-12-07T23:59:59.999+00:00", "2026-12-07T01:00:00+01:00"],
)
def test_demo_footage_ends_at_the_same_hour_whenever_it_runs(now: str) -> None:
    """The footage's hours of day must not depend on when the demo runs: a seed gives one set of figures."""
    from datetime import datetime, timezone

    from flockid.demo import footage_end

    end = footage_end(datetime.fromisoformat(now))
    expected = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert end == expected and end <= datetime.fromisoformat(now)
