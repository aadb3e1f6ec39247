"""Shipped default models (package data) and their JSON model cards.

A model card sits next to its model with the same stem: `detector.onnx` + `detector.json`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent
DETECTOR_NAME = "detector.onnx"
REID_NAME = "reid.onnx"


def _shipped(name: str) -> Path:
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"shipped model {name} is missing from {WEIGHTS_DIR}; reinstall flockid or pass a model path"
        )
    return path


def default_detector_path() -> Path:
    return _shipped(DETECTOR_NAME)


def default_reid_path() -> Path:
    return _shipped(REID_NAME)


def card_path(model_path: Path | str) -> Path:
    return Path(model_path).with_suffix(".json")


def read_card(model_path: Path | str) -> dict[str, Any]:
    """The model card next to model_path, or {} when the model has none (a user's own export)."""
    path = card_path(model_path)
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: model card is not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(card, dict):
        raise ValueError(f"{path}: model card must be a JSON object")
    return card


def model_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
