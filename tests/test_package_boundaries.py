"""Static import rules: ultralytics (AGPL) and torch only in training/; edge and api never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "torchvision", "ultralytics"}
RULES = {
    "vision": HEAVY | {"edge", "api", "training"},
    "edge": HEAVY | {"api", "training"},
    "api": HEAVY | {"edge", "training"},
    "datasets": HEAVY | {"edge", "api", "training"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_forbidden_imports(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, mod in _imports(path):
            if mod in RULES[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {mod}")
    assert not bad, "\n".join(bad)


def test_only_training_imports_ultralytics() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"training", "tests", ".venv", "build"}:
            continue
        bad += [f"{rel}:{line}" for line, mod in _imports(path) if mod == "ultralytics"]
    assert not bad, "ultralytics (AGPL-3.0) imported outside training/: " + ", ".join(bad)
