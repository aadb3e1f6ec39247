"""Re-ID crop folders, identity-balanced P x K batches and identity-preserving augmentations.

A crop folder is `ROOT/<identity>/*.jpg|png`. A crop *set* (what `flockid data synth-reid` and
`flockid data crops` write) has `train/`, `query/`, `gallery/` (and optionally `enrol/`, `later/`)
crop folders inside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.cards import IMAGE_SUFFIXES, tree_sha256


@dataclass
class CropFolder:
    root: Path
    paths: list[Path]
    labels: np.ndarray  # (N,) int64 index into identities
    identities: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def sha256(self) -> str:
        return tree_sha256(self.paths, self.root)

    def label_names(self) -> list[str]:
        return [self.identities[i] for i in self.labels]


def scan_crops(root: Path) -> CropFolder:
    """Every image under `root/<identity>/` (identity = folder name), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"crop folder not found: {root}")
    ids = sorted(d.name for d in root.iterdir() if d.is_dir())
    paths: list[Path] = []
    labels: list[int] = []
    for i, name in enumerate(ids):
        for p in sorted((root / name).iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(p)
                labels.append(i)
    if not paths:
        raise ValueError(f"{root}: no crops found; expected images in {root}/<identity>/")
    return CropFolder(root, paths, np.asarray(labels, np.int64), ids)


def train_folder(data: Path) -> Path:
    """The training crops of a crop set (`DATA/train`) or DATA itself if it is a plain crop folder."""
    data = Path(data)
    return data / "train" if (data / "train").is_dir() else data


def load_images(paths: list[Path], hw: tuple[int, int]) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB, each crop stretched to hw (the embedder does the same resize)."""
    import cv2

    h, w = hw
    out = np.empty((len(paths), h, w, 3), np.uint8)
    for i, p in enumerate(paths):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read image {p}")
        out[i] = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    return out


class PKSampler:
    """Batches of P identities x K crops each; identities with fewer than K crops are sampled with
    replacement. One epoch visits about every crop once."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0) -> None:
        if p < 2:
            raise ValueError(f"P (identities per batch) must be >= 2 for triplets, got {p}")
        if k < 2:
            raise ValueError(f"K (crops per identity) must be >= 2 for triplets, got {k}")
        self.by_id = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if len(self.by_id) < 2:
            raise ValueError("re-ID training needs at least 2 identities")
        self.p = min(p, len(self.by_id))
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.n_batches = max(1, math.ceil(len(labels) / (self.p * self.k)))

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.n_batches):
            ids = self.rng.choice(len(self.by_id), self.p, replace=False)
            idx = [
                self.rng.choice(self.by_id[i], self.k, replace=len(self.by_id[i]) < self.k) for i in ids
            ]
            yield np.concatenate(idx)


def augment(batch_u8: np.ndarray, rng: np.random.Generator, strength: float = 1.0):  # type: ignore[no-untyped-def]
    """Identity-preserving augmentations on a (B, H, W, 3) uint8 RGB batch -> float tensor (B, 3, H, W).

    Crop jitter (scale/shift), horizontal flip, brightness/contrast/saturation within reason (no
    hue shift: a bird's colour is part of who it is), blur (focus, motion), and IR-like greyscale
    (night cameras). Everything runs batched in torch.
    """
    import torch
    from torch.nn import functional as F

    x = torch.from_numpy(batch_u8).permute(0, 3, 1, 2).float().div_(255.0)
    b = x.shape[0]
    s = strength
    # crop jitter: zoom 0.85-1.1 and shift up to 8 % as one affine warp
    scale = torch.from_numpy(rng.uniform(1 - 0.15 * s, 1 + 0.1 * s, b)).float()
    shift = torch.from_numpy(rng.uniform(-0.08 * s, 0.08 * s, (b, 2))).float()
    flip = torch.from_numpy(np.where(rng.random(b) < 0.5, -1.0, 1.0)).float()
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # colour within reason
    bright = torch.from_numpy(rng.uniform(1 - 0.25 * s, 1 + 0.25 * s, (b, 1, 1, 1))).float()
    contrast = torch.from_numpy(rng.uniform(1 - 0.25 * s, 1 + 0.25 * s, (b, 1, 1, 1))).float()
    sat = torch.from_numpy(rng.uniform(1 - 0.3 * s, 1 + 0.3 * s, (b, 1, 1, 1))).float()
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = grey + (x - grey) * sat
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    x = x * bright
    # blur on ~20 %: 5x5 gaussian, sigma random
    blur_mask = rng.random(b) < 0.2 * s
    if blur_mask.any():
        sigma = float(rng.uniform(0.6, 1.4))
        ax = torch.arange(5, dtype=torch.float32) - 2
        k1 = torch.exp(-(ax**2) / (2 * sigma**2))
        k1 = k1 / k1.sum()
        kernel = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5).contiguous()
        idx = torch.from_numpy(np.flatnonzero(blur_mask))
        x[idx] = F.conv2d(F.pad(x[idx], (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
    # IR-like greyscale on ~10 %: luminance only, replicated to 3 channels, slightly washed out
    ir_mask = rng.random(b) < 0.1 * s
    if ir_mask.any():
        idx = torch.from_numpy(np.flatnonzero(ir_mask))
        g = 0.299 * x[idx, 0:1] + 0.587 * x[idx, 1:2] + 0.114 * x[idx, 2:3]
        g = g * 0.8 + 0.15
        x[idx] = g.expand(-1, 3, -1, -1)
    return x.clamp_(0.0, 1.0)


def to_tensor(batch_u8: np.ndarray):  # type: ignore[no-untyped-def]
    """(B, H, W, 3) uint8 RGB -> float tensor (B, 3, H, W) in [0, 1], no augmentation."""
    import torch

    return torch.from_numpy(batch_u8).permute(0, 3, 1, 2).float().div_(255.0)
