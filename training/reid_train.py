"""Bird re-ID training from scratch (no pretrained weights exist offline): P x K batches,
batch-hard triplet + ArcFace, identity-preserving augmentations, resumable from `out/last.pt`.

Writes into `out/`: `last.pt` (resume point), `best.pt` (best on the held-out validation
identities, carrying config, identities and dataset hash), `metrics.json`, `best.json` (card).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from training.cards import TORCH_LICENCE, utc_now, write_card
from training.reid_data import CropFolder, PKSampler, augment, load_images, scan_crops, to_tensor, train_folder


class ReidTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path
    epochs: int = Field(30, ge=1, le=5000)
    imgsz: int = Field(64, ge=32, le=512, description="square input side in pixels")
    dim: int = Field(128, ge=8, le=2048)
    width: int = Field(32, ge=8, le=256)
    p: int = Field(16, ge=2, le=512, description="identities per batch")
    k: int = Field(4, ge=2, le=64, description="crops per identity per batch")
    lr: float = Field(3e-3, gt=0, le=1)
    weight_decay: float = Field(5e-4, ge=0, le=1)
    loss: str = Field("triplet+arcface", pattern=r"^(triplet|arcface|triplet\+arcface)$")
    margin: float = Field(0.3, ge=0, le=2)
    arcface_s: float = Field(30.0, gt=0, le=128)
    arcface_m: float = Field(0.3, ge=0, le=1.5)
    aug_strength: float = Field(1.0, ge=0, le=2)
    val_fraction: float = Field(0.1, ge=0, le=0.5)
    seed: int = Field(0, ge=0)
    threads: int = Field(0, ge=0, le=256, description="torch CPU threads (0 = torch default)")
    recipe: str = "custom"


REID_RECIPES: dict[str, dict[str, Any]] = {
    "default": {"epochs": 25, "imgsz": 64, "dim": 128, "width": 32, "p": 32, "k": 4, "lr": 3e-3},
    "smoke": {"epochs": 2, "imgsz": 32, "dim": 16, "width": 8, "p": 4, "k": 2, "val_fraction": 0.0},
}


def reid_recipe_config(recipe: str, **overrides: Any) -> ReidTrainConfig:
    if recipe not in REID_RECIPES and recipe != "custom":
        raise ValueError(f"unknown reid recipe {recipe!r}; valid: {sorted([*REID_RECIPES, 'custom'])}")
    base = dict(REID_RECIPES.get(recipe, {}))
    base.update({k: v for k, v in overrides.items() if v is not None})
    base["recipe"] = recipe
    return ReidTrainConfig(**base)


def _split_identities(folder: CropFolder, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over crops: training identities and held-out validation identities."""
    n_ids = len(folder.identities)
    n_val = round(n_ids * fraction) if n_ids >= 20 else 0
    rng = np.random.default_rng(seed)
    val_ids = set(rng.choice(n_ids, n_val, replace=False).tolist()) if n_val else set()
    val = np.isin(folder.labels, list(val_ids))
    return ~val, val


def embed_array(model: Any, images_u8: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(images_u8), batch):
            outs.append(model(to_tensor(images_u8[s : s + batch])).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, getattr(model, "dim", 0)), np.float32)


def _query_gallery_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within each identity alternate crops between gallery (even) and query (odd)."""
    q = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        q[idx[1::2]] = True
    return q, ~q


def train_reid(cfg: ReidTrainConfig, out: Path, *, resume: bool = True, log: Any = None) -> dict[str, Any]:
    """Train (or resume) the re-ID model; returns the record also written to metrics.json."""
    import torch

    from flockid.console import progress
    from training.metrics import calibrate_threshold, reid_ranking
    from training.reid_model import ArcFace, batch_hard_triplet, build_reid_model

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    folder = scan_crops(train_folder(cfg.data))
    data_hash = folder.sha256()
    images = load_images(folder.paths, (cfg.imgsz, cfg.imgsz))
    tr_mask, val_mask = _split_identities(folder, cfg.val_fraction, cfg.seed)
    tr_idx = np.flatnonzero(tr_mask)
    # contiguous class indices for ArcFace over the training identities only
    tr_classes, tr_labels = np.unique(folder.labels[tr_idx], return_inverse=True)
    model = build_reid_model(dim=cfg.dim, width=cfg.width)
    arc = ArcFace(cfg.dim, len(tr_classes), cfg.arcface_s, cfg.arcface_m) if "arcface" in cfg.loss else None
    params = list(model.parameters()) + (list(arc.parameters()) if arc is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PKSampler(tr_labels, cfg.p, cfg.k, seed=cfg.seed)
    total_steps = cfg.epochs * len(sampler)
    warmup = max(1, total_steps // 20)

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to 1 %
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    config_json = json.loads(cfg.model_dump_json())
    start_epoch, best_score, history = 0, -math.inf, []
    last_pt = out / "last.pt"
    if resume and last_pt.is_file():
        ck = torch.load(last_pt, map_location="cpu", weights_only=False)
        if ck.get("config") == config_json and ck.get("data_sha256") == data_hash and ck["epoch"] < cfg.epochs:
            model.load_state_dict(ck["model"])
            if arc is not None and ck.get("arcface") is not None:
                arc.load_state_dict(ck["arcface"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            start_epoch, best_score, history = ck["epoch"], ck["best_score"], ck["history"]
            sampler.rng = np.random.default_rng(cfg.seed + start_epoch)
            log(f"resuming re-ID training from epoch {start_epoch} ({last_pt})")
        elif ck.get("epoch", 0) >= cfg.epochs and ck.get("config") == config_json:
            log(f"{last_pt} already finished {cfg.epochs} epochs; retraining from scratch")
    rng = np.random.default_rng(cfg.seed + 1000 + start_epoch)
    val_idx = np.flatnonzero(val_mask)
    meta = {
        "spec": model.spec(), "imgsz": cfg.imgsz, "identities": folder.identities,
        "train_identities": [folder.identities[c] for c in tr_classes],
        "data_sha256": data_hash, "config": config_json,
    }
    started = time.time()
    for epoch in progress(range(start_epoch, cfg.epochs), description="re-ID epochs"):
        model.train()
        losses = []
        for batch_idx in sampler:
            x = augment(images[tr_idx[batch_idx]], rng, cfg.aug_strength)
            y = torch.from_numpy(tr_labels[batch_idx])
            feat = model.features_of(x)
            emb = torch.nn.functional.normalize(feat, dim=1)
            loss = emb.new_zeros(())
            if "triplet" in cfg.loss:
                loss = loss + batch_hard_triplet(emb, y, cfg.margin)
            if arc is not None:
                loss = loss + arc(feat, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if val_idx.size:
            emb_v = embed_array(model, images[val_idx])
            qm, gm = _query_gallery_split(folder.labels[val_idx])
            r = reid_ranking(emb_v[qm], folder.labels[val_idx][qm], emb_v[gm], folder.labels[val_idx][gm])
            entry.update({"val_rank1": r["rank1"], "val_mAP": r["mAP"]})
            score = float(r["mAP"])
        else:
            score = -entry["loss"]
        history.append(entry)
        log(json.dumps(entry))
        if score >= best_score:
            best_score = score
            torch.save({**meta, "model": model.state_dict(), "epoch": epoch + 1}, out / "best.pt")
        torch.save({
            **meta, "model": model.state_dict(), "arcface": arc.state_dict() if arc is not None else None,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch + 1,
            "best_score": best_score, "history": history,
        }, last_pt)
    wall = time.time() - started
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(best["model"])
    # operating threshold from held-out identities (never from the evaluation split)
    calib_idx = val_idx if val_idx.size else tr_idx
    threshold = calibrate_threshold(embed_array(model, images[calib_idx]), folder.labels[calib_idx])
    best["match_threshold"] = threshold
    torch.save(best, out / "best.pt")
    record: dict[str, Any] = {
        "task": "reid",
        "config": config_json,
        "data_sha256": data_hash,
        "train_identities": len(tr_classes),
        "val_identities": len(np.unique(folder.labels[val_idx])) if val_idx.size else 0,
        "best_epoch": int(best["epoch"]),
        "match_threshold": threshold,
        "history": history,
        "train_wall_s": round(wall, 1),
        "date": utc_now(),
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    write_card(out / "best.pt", {
        "task": "reid",
        "format": "pytorch",
        "input_size": [cfg.imgsz, cfg.imgsz],
        "embedding_dim": cfg.dim,
        "class_names": ["chicken"],
        "training_data_sha256": data_hash,
        "config": config_json,
        "metrics": {"val": history[-1] if history else {}},
        "match_threshold": threshold,
        "licence": TORCH_LICENCE,
        "train_wall_s": record["train_wall_s"],
    })
    return record


def load_reid_checkpoint(path: Path) -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, checkpoint dict) from a best.pt/last.pt written by train_reid."""
    import torch

    from training.reid_model import build_reid_model

    ck = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or "spec" not in ck or "model" not in ck:
        raise ValueError(f"{path}: not a FlockID re-ID checkpoint (no 'spec'/'model' keys)")
    spec = dict(ck["spec"])
    arch = spec.pop("arch")
    model = build_reid_model(arch, **spec)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck
