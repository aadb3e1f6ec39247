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
