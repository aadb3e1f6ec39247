"""`flockid eval reid`: Rank-1, Rank-5, mAP of an ONNX re-ID model through the edge's own
`vision.embedder.OnnxEmbedder`, in two protocols.

open-set: a crop set with `query/` and `gallery/` of identities never seen in training. Ranking
  uses the whole gallery; the unknown-bird rejection rate hides every 5th gallery identity (sorted)
  and counts how many of their queries score below the operating threshold (the edge registry's
  `IdentityConfig.match_threshold`, and also the card's calibrated threshold).
closed-set: `--gallery ENROL_DIR` (the farm's enrolled birds, earlier images) with queries from
  `--data` (later images of the same birds; `DATA/later` if DATA is a crop set).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import open_set_rates, reid_ranking
from training.reid_data import CropFolder, scan_crops

UNKNOWN_EVERY = 5  # every 5th gallery identity is hidden to play the unknown bird


def _embed_folder(embedder: Any, folder: CropFolder, batch: int = 128) -> np.ndarray:
    import cv2

    outs = []
    for s in range(0, len(folder.paths), batch):
        crops = []
        for p in folder.paths[s : s + batch]:
            img = cv2.imread(str(p))
            if img is None:
                raise ValueError(f"cannot read crop {p}")
            crops.append(img)
        outs.append(embedder.embed_crops(crops))
    return np.concatenate(outs)


def _thresholds(model: Path, threshold: float | None) -> dict[str, float]:
    """Where to measure rejection: --threshold if given; else the edge registry's operating
    `match_threshold` (what decides a match on the box) and the card's calibrated one."""
    if threshold is not None:
        return {"given": float(threshold)}
    from vision.identity import IdentityConfig
    from vision.weights import read_card

    out = {"operating": float(IdentityConfig().match_threshold)}
    card_t = read_card(model).get("match_threshold")
    if card_t is not None:
        out["card"] = float(card_t)
    return out


def evaluate_reid(model: Path, data: Path, *, gallery: Path | None = None,
                  threshold: float | None = None) -> dict[str, Any]:
    from vision.embedder import OnnxEmbedder

    data = Path(data)
    emb = OnnxEmbedder(model)
    thresholds = _thresholds(model, threshold)
    if gallery is not None:
        protocol = "closed-set"
        q_dir = data / "later" if (data / "later").is_dir() else data
        g_dir = Path(gallery)
    else:
        protocol = "open-set"
        q_dir, g_dir = data / "query", data / "gallery"
        if not (q_dir.is_dir() and g_dir.is_dir()):
            raise FileNotFoundError(f"--data {data}: open-set evaluation needs {q_dir} and {g_dir} "
                                    "(or pass --gallery ENROL_DIR for the closed-set protocol)")
    q, g = scan_crops(q_dir), scan_crops(g_dir)
    qe, ge = _embed_folder(emb, q), _embed_folder(emb, g)
    qn, gn = np.asarray(q.label_names()), np.asarray(g.label_names())
    result: dict[str, Any] = {"protocol": protocol, "model": str(model), "query": str(q_dir),
                              "gallery": str(g_dir), **reid_ranking(qe, qn, ge, gn)}
    missing = sorted(set(qn.tolist()) - set(gn.tolist()))
    result["query_identities_not_in_gallery"] = len(missing)
    if protocol == "open-set":
        hidden = set(g.identities[::UNKNOWN_EVERY])
        keep = ~np.isin(gn, list(hidden))
        ge, gn = ge[keep], gn[keep]
    for i, (name, thr) in enumerate(thresholds.items()):
        rates = open_set_rates(qe, qn, ge, gn, thr)
        if i == 0:
            result.update(rates)  # the main operating point, flat for scripts
            result["threshold_source"] = name
        else:
            result[f"at_{name}_threshold"] = rates
    return result


SAME_PERCENTILES = (1, 5, 10, 25, 50)
DIFFERENT_PERCENTILES = (50, 90, 95, 99, 99.9)


def similarity_calibration(model: Path, data: Path | Sequence[Path]) -> dict[str, Any]:
    """The model card's `similarity_calibration` block: where this model's cosine similarities fall for
    two crops of the SAME bird and for two DIFFERENT birds, from crop sets' `query/` x `gallery/` splits.

    Cosine similarities are only meaningful relative to one model (the shipped ones have put the
    same/different boundary anywhere from ~0.3 to ~0.45), so the edge derives its appearance thresholds
    (tracker veto/rescue/re-identification, registry match/new-bird thresholds, headcount duplicates)
    from these percentiles (`vision.identity.calibration`) instead of having them tuned to one model.
    Pairs are query x gallery of one crop set (never two crops of one folder, never across crop sets), so
    give a mixed and a uniform (look-alike) set to cover both kinds of flock. Keys: `same` {p1..p50},
    `different` {p50..p99.9}, `threshold` (the balanced-accuracy midpoint between the two populations,
    as `training.metrics.calibrate_threshold`), pair counts and the data it came from.
    """
    from vision.embedder import OnnxEmbedder

    folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    if not folders:
        raise ValueError("similarity calibration: give at least one crop set")
    emb = OnnxEmbedder(model)
    same_parts, diff_parts, identities = [], [], 0
    for folder in folders:
        q_dir, g_dir = folder / "query", folder / "gallery"
        if not (q_dir.is_dir() and g_dir.is_dir()):
            raise FileNotFoundError(f"--data {folder}: similarity calibration needs {q_dir} and {g_dir}")
        q, g = scan_crops(q_dir), scan_crops(g_dir)
        qe, ge = _embed_folder(emb, q), _embed_folder(emb, g)
        qn, gn = np.asarray(q.label_names()), np.asarray(g.label_names())
        sim = (qe @ ge.T).astype(np.float64)  # both L2-normalised by the embedder
        same_mask = qn[:, None] == gn[None, :]
        same_parts.append(sim[same_mask])
        diff_parts.append(sim[~same_mask])
        identities += len(set(qn.tolist()) | set(gn.tolist()))
    same, diff = np.concatenate(same_parts), np.concatenate(diff_parts)
    if same.size < 10 or diff.size < 10:
        raise ValueError(
            f"--data {', '.join(map(str, folders))}: similarity calibration needs >= 10 same-bird and >= 10 "
            f"different-bird query/gallery pairs, got {same.size} and {diff.size}"
        )
    grid = np.linspace(-1.0, 1.0, 801)
    acc = np.array([0.5 * ((same >= t).mean() + (diff < t).mean()) for t in grid])
    best = np.flatnonzero(acc >= acc.max() - 1e-12)

    def pct(values: np.ndarray, ps: tuple[float, ...]) -> dict[str, float]:
        return {f"p{p:g}": round(float(np.percentile(values, p)), 4) for p in ps}

    return {
        "same": pct(same, SAME_PERCENTILES),
        "different": pct(diff, DIFFERENT_PERCENTILES),
        "threshold": round(float((grid[best[0]] + grid[best[-1]]) / 2), 4),
        "same_pairs": int(same.size),
        "different_pairs": int(diff.size),
        "identities": int(identities),
        "data": [str(f) for f in folders],
    }
