"""`flockid eval detect-states`: detector recall split by the birds' health state, on a synthetic sequence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.eval_health_recall import _state_at


@pytest.mark.parametrize(
    ("t_s", "state"),
    [(0.0, "ok"), (9.9, "ok"), (10.0, "sick"), (29.0, "sick"), (30.0, "dead"), (1e6, "dead")],
)
def test_state_at_follows_the_timeline(t_s: float, state: str) -> None:
    timeline = [{"at_s": 30.0, "state": "dead"}, {"at_s": 0.0, "state": "ok"}, {"at_s": 10.0, "state": "sick"}]
    assert _state_at(timeline, t_s) == state


def test_eval_detect_states_counts_carcasses_and_sick_birds(tmp_path: Path) -> None:
    from datasets.synth import FlockWorld, WorldConfig
    from datasets.synth.sequence import write_sequence
    from flockid.cli import app

    cfg = WorldConfig(seed=4, birds=10, frames=12, size_wh=(320, 180), time_step_s=5.0, dead_birds=1,
                      sick_birds=1, dead_window_s=(0.0, 1.0), sick_window_s=(0.0, 1.0), incident_camera=0)
    (seq,) = write_sequence(FlockWorld(cfg), tmp_path / "seq", video=False)
    res = CliRunner().invoke(app, ["eval", "detect-states", str(seq), "--every", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["boxes"]["dead"] > 0 and data["boxes"]["sick"] > 0 and data["boxes"]["ok"] > 0
    assert set(data["recall"]) == {"ok", "sick", "dead"}
    assert all(0.0 <= r <= 1.0 for r in data["recall"].values())
    assert data["rows"][0]["frames"] == 6


def test_eval_detect_states_names_a_sequence_without_frames(tmp_path: Path) -> None:
    from flockid.cli import app

    (tmp_path / "seq").mkdir()
    res = CliRunner().invoke(app, ["eval", "detect-states", str(tmp_path / "seq")])
    assert res.exit_code != 0 and "img1" in res.output
