"""On-disk format of the registry: a directory with `registry.json` (metadata) and `vectors-<gen>.npz`.

The JSON file is the commit point: vectors go to a new generation file first (fsynced), then the JSON
naming that generation is written to a temp file, fsynced and renamed over the old one. A crash at any
moment leaves either the old or the new registry, never a mix. Old generations are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "flockid-registry"
FORMAT_VERSION = 1
META_NAME = "registry.json"


@dataclass
class BirdRecord:
    """One registered bird: prototype, exemplars and bookkeeping (timestamps in stream seconds)."""

    bird_id: str
    prototype: np.ndarray  # (D,) float32, L2-normalised
    exemplars: np.ndarray  # (K, D) float32, K <= max_exemplars
    first_seen: float
    last_seen: float
    observations: int = 0
    enrol_nearest_sim: float = -1.0  # similarity to the nearest other bird when enrolled
    enrolled_by_elimination: bool = False
    cameras: set[str] = field(default_factory=set)
    last_seen_by_camera: dict[str, float] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {
            "bird_id": self.bird_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "observations": self.observations,
            "enrol_nearest_sim": self.enrol_nearest_sim,
            "enrolled_by_elimination": self.enrolled_by_elimination,
            "cameras": sorted(self.cameras),
            "last_seen_by_camera": dict(sorted(self.last_seen_by_camera.items())),
            "n_exemplars": int(self.exemplars.shape[0]),
        }


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable; not supported on every OS/filesystem.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_registry(
    directory: Path,
    *,
    farm_id: str,
    embedder: str | None,
    dim: int,
    next_number: int,
    birds: list[BirdRecord],
    generation: int,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    vec_name = f"vectors-{generation:08d}.npz"
    vec_tmp = directory / (vec_name + ".tmp")
    exemplar_counts = np.array([b.exemplars.shape[0] for b in birds], np.int64)
    protos = np.stack([b.prototype for b in birds]).astype(np.float32) if birds else np.zeros((0, dim), np.float32)
    exemplars = (
        np.concatenate([b.exemplars for b in birds]).astype(np.float32).reshape(-1, dim)
        if birds and dim
        else np.zeros((0, dim), np.float32)
    )
    with open(vec_tmp, "wb") as fh:
        np.savez(fh, prototypes=protos, exemplars=exemplars, exemplar_counts=exemplar_counts)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(vec_tmp, directory / vec_name)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "farm_id": farm_id,
        "embedder": embedder,
        "dim": dim,
        "next_number": next_number,
        "generation": generation,
        "vectors": vec_name,
        "birds": [b.meta() for b in birds],
    }
    meta_tmp = directory / (META_NAME + ".tmp")
    with open(meta_tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(meta_tmp, directory / META_NAME)
    _fsync_dir(directory)
    for old in directory.glob("vectors-*.npz"):
        if old.name != vec_name:
            with contextlib.suppress(OSError):
                old.unlink()


@dataclass
class LoadedRegistry:
    farm_id: str
    embedder: str | None
    dim: int
    next_number: int
    generation: int
    birds: list[BirdRecord]


def load_registry(directory: Path) -> LoadedRegistry | None:
    """Read a registry directory; None when it holds no registry yet. Raises ValueError naming the file
    on a corrupt or foreign file."""
    meta_path = directory / META_NAME
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: cannot read registry metadata: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a FlockID registry (format != {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: registry format version {meta.get('version')} is not supported "
            f"(this code reads version {FORMAT_VERSION})"
        )
    vec_path = directory / str(meta["vectors"])
    try:
        with np.load(vec_path) as z:
            protos = np.asarray(z["prototypes"], np.float32)
            exemplars = np.asarray(z["exemplars"], np.float32)
            counts = np.asarray(z["exemplar_counts"], np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{vec_path}: cannot read registry vectors: {exc}") from exc
    birds_meta = meta.get("birds", [])
    if protos.shape[0] != len(birds_meta) or counts.shape[0] != len(birds_meta):
        raise ValueError(f"{vec_path}: {protos.shape[0]} prototypes but {meta_path} lists {len(birds_meta)} birds")
    if int(counts.sum()) != exemplars.shape[0]:
        raise ValueError(f"{vec_path}: exemplar counts do not add up")
    dim = int(meta["dim"])
    birds: list[BirdRecord] = []
    offset = 0
    for i, bm in enumerate(birds_meta):
        k = int(counts[i])
        birds.append(
            BirdRecord(
                bird_id=str(bm["bird_id"]),
                prototype=protos[i].copy(),
                exemplars=exemplars[offset : offset + k].copy().reshape(k, dim),
                first_seen=float(bm["first_seen"]),
                last_seen=float(bm["last_seen"]),
                observations=int(bm["observations"]),
                enrol_nearest_sim=float(bm.get("enrol_nearest_sim", -1.0)),
                enrolled_by_elimination=bool(bm.get("enrolled_by_elimination", False)),
                cameras=set(bm.get("cameras", [])),
                last_seen_by_camera={str(k2): float(v) for k2, v in bm.get("last_seen_by_camera", {}).items()},
            )
        )
        offset += k
    return LoadedRegistry(
        farm_id=str(meta["farm_id"]),
        embedder=meta.get("embedder"),
        dim=dim,
        next_number=int(meta["next_number"]),
        generation=int(meta.get("generation", 0)),
        birds=birds,
    )
