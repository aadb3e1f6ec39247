"""Model cards (the JSON file next to every exported model) and the hashes they carry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ULTRALYTICS_LICENCE = (
    "Trained with ultralytics (AGPL-3.0). Weights produced by ultralytics training are, per Ultralytics, "
    "subject to AGPL-3.0 unless you hold an Ultralytics Enterprise licence. The FlockID code that runs them "
    "(onnxruntime, no ultralytics import) is Apache-2.0."
)
TORCH_LICENCE = "Trained from scratch with FlockID's own PyTorch code (Apache-2.0); no third-party weights."
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def file_sha256(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_sha256(files: Iterable[Path], root: Path) -> str:
    """One hash over (relative path, content hash) of each file, order-independent.

    Renaming or editing any image or label changes it; moving the dataset elsewhere does not.
    """
    root = Path(root).resolve()
    entries = []
    for f in files:
        f = Path(f).resolve()
        try:
            rel = f.relative_to(root).as_posix()
        except ValueError:
            rel = f.as_posix()
        entries.append(f"{rel}\0{file_sha256(f)}")
    h = hashlib.sha256()
    for e in sorted(entries):
        h.update(e.encode())
        h.update(b"\n")
    return h.hexdigest()


def dir_sha256(root: Path, suffixes: tuple[str, ...] | None = None) -> str:
    """`tree_sha256` of every file under root (optionally only with the given suffixes)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    files = [p for p in root.rglob("*") if p.is_file() and (suffixes is None or p.suffix.lower() in suffixes)]
    return tree_sha256(files, root)


def card_path(model_path: Path) -> Path:
    """The card of `x/detector.onnx` is `x/detector.json`."""
    return Path(model_path).with_suffix(".json")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def write_card(model_path: Path, card: Mapping[str, Any]) -> Path:
    """Write `card` next to `model_path`, adding the model's own hash and the date if missing."""
    model_path = Path(model_path)
    full = dict(card)
    full.setdefault("date", utc_now())
    full["model_file"] = model_path.name
    if model_path.is_file():
        full["model_sha256"] = file_sha256(model_path)
    out = card_path(model_path)
    out.write_text(json.dumps(full, indent=2, sort_keys=False, default=str) + "\n")
    return out


def read_card(model_path: Path) -> dict[str, Any]:
    """The card next to a model; a missing card is an error naming the file."""
    path = card_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model card not found next to {model_path}: expected {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"model card {path} is not a JSON object")
    return data
