"""Tiny datasets the training tests make themselves: a YOLO set of coloured ellipses (day and
night images) and a re-ID crop set of colour-coded identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _ellipse_image(rng: np.random.Generator, size: int, night: bool) -> tuple[np.ndarray, list[str]]:
    import cv2

    bg = (40, 90, 60) if not night else (20, 20, 20)
    img = np.full((size, size, 3), bg, np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    labels = []
    for _ in range(int(rng.integers(1, 4))):
        w, h = rng.integers(size // 6, size // 3, 2)
        cx, cy = rng.integers(w, size - w), rng.integers(h, size - h)
        colour = (230, 230, 230) if not night else (150, 150, 150)
        cv2.ellipse(img, (int(cx), int(cy)), (int(w // 2), int(h // 2)), 0, 0, 360, colour, -1)
        labels.append(f"0 {cx / size:.6f} {cy / size:.6f} {w / size:.6f} {h / size:.6f}")
    return img, labels


def make_yolo_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 96, seed: int = 0) -> Path:
    """root/data.yaml with images/{train,val} + labels, class 0 = chicken, conditions.csv."""
    import cv2

    rng = np.random.default_rng(seed)
    rows = ["image,condition"]
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            night = i % 2 == 1
            img, labels = _ellipse_image(rng, size, night)
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.jpg"), img)
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(labels) + "\n")
            rows.append(f"images/{split}/{i:03d}.jpg,{'night' if night else 'day'}")
    (root / "conditions.csv").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: chicken\n")
    return data


def make_crop_set(root: Path, n_train_ids: int = 6, n_test_ids: int = 5, per_id: int = 6, size: int = 40,
                  seed: int = 0) -> Path:
    """root/{train,query,gallery,enrol,later}/<id>/*.png; identities differ by colour and stripe."""
    import cv2

    rng = np.random.default_rng(seed)

    def crop(colour: tuple[int, int, int], stripe: int) -> np.ndarray:
        img = np.full((size, size, 3), (70, 110, 80), np.uint8)
        cv2.ellipse(img, (size // 2, size // 2), (size // 3, size // 4), 0, 0, 360, colour, -1)
        cv2.line(img, (size // 4, stripe), (3 * size // 4, stripe), (20, 20, 20), 2)
        noise = rng.integers(-12, 12, img.shape)
        return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    def identity(i: int) -> tuple[tuple[int, int, int], int]:
        c = np.random.default_rng(1000 + i).integers(40, 255, 3)
        return (int(c[0]), int(c[1]), int(c[2])), int(size // 3 + (i * 5) % (size // 3))

    for i in range(n_train_ids + n_test_ids):
        colour, stripe = identity(i)
        name = f"bird-{i:03d}"
        if i < n_train_ids:
            targets = {"train": per_id}
        else:
            targets = {"query": per_id // 2, "gallery": per_id - per_id // 2, "enrol": 2, "later": 2}
        for split, n in targets.items():
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                cv2.imwrite(str(d / f"{j:02d}.png"), crop(colour, stripe))
    return root


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_yolo_dataset(tmp_path_factory.mktemp("yolo"))


@pytest.fixture(scope="session")
def tiny_crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_crop_set(tmp_path_factory.mktemp("crops"))


@pytest.fixture(scope="session", autouse=True)
def _offline_ultralytics(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Stage ultralytics' offline environment in a temp dir before anything (e.g. torch.load of a
    checkpoint) can import ultralytics in this process."""
    import os

    from training.offline import CACHE_ENV, ensure_offline

    os.environ.setdefault(CACHE_ENV, str(tmp_path_factory.mktemp("ultralytics-cache")))
    ensure_offline()
