"""`flockid.provenance.environment()`: what an evaluation's JSON records about the run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flockid.provenance import environment


def test_environment_names_the_versions_the_machine_and_the_commit() -> None:
    env = environment()
    assert env["packages"]["numpy"] == np.__version__
    assert "not-a-package" not in env["packages"] and set(env["packages"]) <= {
        "numpy", "scipy", "onnxruntime", "opencv-python-headless", "opencv-python", "torch", "ultralytics"}
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["cpus"] >= 1 and env["machine"]
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", env["commit"]) and env["commit"].startswith(head)


def test_a_measurement_carries_the_environment_and_other_output_does_not(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from flockid.console import emit

    emit({"x": 1}, as_json=True, measured=True)
    measured = json.loads(capsys.readouterr().out)
    assert measured["x"] == 1 and measured["environment"] == environment()
    emit({"x": 1}, as_json=True)
    assert json.loads(capsys.readouterr().out) == {"x": 1}
    emit({"x": 1}, as_json=False, measured=True, title="t")  # the table shows it too
    assert "environment" in capsys.readouterr().out
