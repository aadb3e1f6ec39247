"""The world must not quietly get easier: the Done-when sequence stays above committed difficulty floors.

Same config as `flockid data synth OUT --seed 7 --birds 40 --frames 600 --fps 10 --size 640x360 --flock mixed
--night-fraction 0.3`, written without images or video (the gt is identical), then measured by datasets.stats.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets.stats import dataset_stats
from datasets.synth import FlockWorld, WorldConfig
from datasets.synth.sequence import write_sequence

FLOORS = Path(__file__).with_name("difficulty_floors.json")

DONE_WHEN = WorldConfig(seed=7, birds=40, frames=600, fps=10, size_wh=(640, 360), flock="mixed", night_fraction=0.3)


def test_difficulty_stays_above_floors(tmp_path: Path) -> None:
    floors = json.loads(FLOORS.read_text())["floors"]
    # The Done-when numbers are the least the floors may say.
    assert floors["frac_visibility_lt_0_5"] >= 0.20
    assert floors["reentry_events"] >= 5
    assert floors["lookalike_pairs"] >= 10
    write_sequence(FlockWorld(DONE_WHEN), tmp_path / "s", images=False, video=False)
    stats = dataset_stats(tmp_path / "s")
    below = {k: (stats[k], v) for k, v in floors.items() if stats[k] is None or stats[k] < v}
    assert not below, f"difficulty fell below the committed floors (measured, floor): {below}"
