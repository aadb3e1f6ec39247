"""`import vision` and every vision submodule load neither torch nor ultralytics (edge boxes have neither)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_vision_imports_load_no_torch_or_ultralytics() -> None:
    code = """
import importlib, pkgutil, sys
import vision
names = sorted(m.name for m in pkgutil.walk_packages(vision.__path__, "vision."))
assert names, "found no vision submodules"
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in ("torch", "ultralytics") if m in sys.modules)
print(len(names), ",".join(bad))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    n, bad = proc.stdout.strip().split(" ", 1) if " " in proc.stdout.strip() else (proc.stdout.strip(), "")
    assert int(n) >= 10
    assert bad == "", f"vision imported {bad}"
