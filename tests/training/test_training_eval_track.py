"""eval track: the trackeval plumbing on hand-made tracker outputs, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.eval_track import _Output, _Seq, _trackeval


def _seq(tmp: Path) -> _Seq:
    # two birds over 10 frames, moving right
    rows = []
    for f in range(1, 11):
        rows.append([f, 1, 10 + 5 * f, 10, 20, 20, 1, 1, 1.0])
        rows.append([f, 2, 10 + 5 * f, 100, 20, 20, 1, 1, 1.0])
    return _Seq("s1", tmp, 10, 10.0, np.arange(10) / 10.0, np.asarray(rows, np.float64))


def _as_output(gt: np.ndarray, swap_after: int | None = None) -> _Output:
    o = _Output()
    for r in gt:
        tid = int(r[1])
        if swap_after is not None and r[0] > swap_after:
            tid = 3 - tid  # identities swap half-way
        o.rows.append([r[0], tid, r[2], r[3], r[4], r[5], 0.9, 1, -1, -1])
    return o


def test_trackeval_perfect_tracks_score_one(tmp_path: Path):
    s = _seq(tmp_path)
    res = _trackeval([s], {"s1": {"perfect": _as_output(s.gt_rows)}}, tmp_path / "w")
    r = res["perfect"]["s1"]
    assert r["HOTA"] == pytest.approx(1.0) and r["IDF1"] == pytest.approx(1.0)
    assert r["MOTA"] == pytest.approx(1.0) and r["id_switches"] == 0


def test_trackeval_counts_identity_swaps(tmp_path: Path):
    s = _seq(tmp_path)
    res = _trackeval([s], {"s1": {"swap": _as_output(s.gt_rows, swap_after=5)}}, tmp_path / "w")
    r = res["swap"]["s1"]
    assert r["id_switches"] == 2  # both birds switch once
    assert r["IDF1"] == pytest.approx(0.5)
    assert r["MOTA"] == pytest.approx(1.0 - 2 / 20)


def test_unknown_tracker_is_rejected(tmp_path: Path):
    from training.eval_track import evaluate_tracking

    with pytest.raises(ValueError, match="valid"):
        evaluate_tracking([tmp_path], detector=tmp_path / "d.onnx", reid=None, trackers=["sort9000"])


@pytest.fixture(scope="module")
def tiny_seq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets.synth import FlockWorld, WorldConfig
    from datasets.synth.sequence import write_sequence

    out = tmp_path_factory.mktemp("seq") / "farm1"
    write_sequence(FlockWorld(WorldConfig(seed=3, birds=8, frames=12)), out, video=False)
    return out


def test_eval_track_cli_compares_trackers_on_same_detections(tiny_seq: Path):
    from typer.testing import CliRunner

    from flockid.cli import app

    res = CliRunner().invoke(app, ["eval", "track", str(tiny_seq), "--tracker", "flockid", "--tracker",
                                   "bytetrack", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["frames"] == 12 and r["sequences"] == ["farm1"]
    for t in ("flockid", "bytetrack"):
        for key in ("HOTA", "IDF1", "MOTA", "id_switches", "id_switches_per_bird_hour", "headcount_abs_error"):
            assert key in r[t], (t, key)
        assert 0.0 <= r[t]["HOTA"] <= 1.0
    assert {row["tracker"] for row in r["rows"]} == {"flockid", "bytetrack"}
    # bird-hours come from the ground truth alone, so both trackers see the same exposure
    assert len({round(row["bird_hours"], 9) for row in r["rows"]}) == 1
