"""Detection and re-ID metrics in plain numpy (checked against hand-computed cases in the tests).

Detection: COCO-style matching (predictions in descending confidence take the best-IoU unmatched
ground truth of the same class at each IoU threshold), AP = area under the precision envelope
sampled at 101 recall points, averaged over classes that have ground truth.
Re-ID: CMC Rank-k and mAP over a query/gallery split with cosine similarity, plus the open-set
rejection rate of unknown birds at an operating threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_image(
    pred_xyxy: np.ndarray,
    pred_conf: np.ndarray,
    pred_cls: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_cls: np.ndarray,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> np.ndarray:
    """(P, T) bool: is prediction p a true positive at IoU threshold t (one GT per prediction)."""
    n_pred = len(pred_conf)
    tp = np.zeros((n_pred, len(iou_thresholds)), bool)
    if n_pred == 0 or len(gt_cls) == 0:
        return tp
    iou = box_iou(pred_xyxy, gt_xyxy)
    iou[np.asarray(pred_cls)[:, None] != np.asarray(gt_cls)[None, :]] = 0.0
    order = np.argsort(-np.asarray(pred_conf), kind="stable")
    for t, thr in enumerate(iou_thresholds):
        taken = np.zeros(len(gt_cls), bool)
        for p in order:
            cand = np.where(taken, -1.0, iou[p])
            g = int(np.argmax(cand))
            if cand[g] >= thr - 1e-12:
                taken[g] = True
                tp[p, t] = True
    return tp


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO 101-point AP (as pycocotools) from a PR curve ordered by descending confidence."""
    recall = np.asarray(recall, np.float64)
    if recall.size == 0:
        return 0.0
    envelope = np.flip(np.maximum.accumulate(np.flip(np.asarray(precision, np.float64))))
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    vals = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(vals.mean())


@dataclass
class DetectionAccumulator:
    """Feed images one by one, then `summary()` gives mAP50, mAP50-95, precision, recall."""

    nc: int
    iou_thresholds: np.ndarray = field(default_factory=lambda: IOU_THRESHOLDS.copy())
    _tp: list[np.ndarray] = field(default_factory=list)
    _conf: list[np.ndarray] = field(default_factory=list)
    _cls: list[np.ndarray] = field(default_factory=list)
    _n_gt: np.ndarray | None = None
    images: int = 0

    def add(
        self,
        pred_xyxy: np.ndarray,
        pred_conf: np.ndarray,
        pred_cls: np.ndarray,
        gt_xyxy: np.ndarray,
        gt_cls: np.ndarray,
    ) -> None:
        if self._n_gt is None:
            self._n_gt = np.zeros(self.nc, np.int64)
        gt_cls = np.asarray(gt_cls, np.int64).reshape(-1)
        if gt_cls.size and (gt_cls.min() < 0 or gt_cls.max() >= self.nc):
            raise ValueError(f"ground-truth class out of range 0..{self.nc - 1}: {np.unique(gt_cls)}")
        self._n_gt += np.bincount(gt_cls, minlength=self.nc)[: self.nc]
        self._tp.append(match_image(pred_xyxy, pred_conf, pred_cls, gt_xyxy, gt_cls, self.iou_thresholds))
        self._conf.append(np.asarray(pred_conf, np.float64).reshape(-1))
        self._cls.append(np.asarray(pred_cls, np.int64).reshape(-1))
        self.images += 1

    def summary(self) -> dict[str, float | int]:
        n_gt = self._n_gt if self._n_gt is not None else np.zeros(self.nc, np.int64)
        t = len(self.iou_thresholds)
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, t), bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        cls = np.concatenate(self._cls) if self._cls else np.zeros(0, np.int64)
        classes = [c for c in range(self.nc) if n_gt[c] > 0]
        ap = np.zeros((len(classes), t))
        # precision/recall at the confidence that maximises mean F1 (as ultralytics reports them)
        grid = np.linspace(0, 1, 1000)
        p_curve = np.zeros((len(classes), grid.size))
        r_curve = np.zeros((len(classes), grid.size))
        for i, c in enumerate(classes):
            sel = cls == c
            order = np.argsort(-conf[sel], kind="stable")
            tpc = tp[sel][order].astype(np.float64)
            confc = conf[sel][order]
            if tpc.shape[0] == 0:
                continue
            ctp = np.cumsum(tpc, 0)
            cfp = np.cumsum(1 - tpc, 0)
            recall = ctp / n_gt[c]
            precision = ctp / np.maximum(ctp + cfp, 1e-12)
            for j in range(t):
                ap[i, j] = average_precision(recall[:, j], precision[:, j])
            # curves at IoU 0.5 against a confidence grid (conf decreasing along the arrays)
            r_curve[i] = np.interp(-grid, -confc, recall[:, 0], left=0)
            p_curve[i] = np.interp(-grid, -confc, precision[:, 0], left=1)
        if classes:
            f1 = 2 * p_curve * r_curve / np.maximum(p_curve + r_curve, 1e-12)
            best = int(np.argmax(f1.mean(0)))
            precision_at, recall_at, conf_at = float(p_curve[:, best].mean()), float(r_curve[:, best].mean()), float(
                grid[best]
            )
        else:
            precision_at = recall_at = conf_at = 0.0
        return {
            "mAP50": float(ap[:, 0].mean()) if classes else 0.0,
            "mAP50-95": float(ap.mean()) if classes else 0.0,
            "precision": precision_at,
            "recall": recall_at,
            "conf_at_max_f1": conf_at,
            "images": self.images,
            "instances": int(n_gt.sum()),
            "predictions": len(conf),
        }


# ----------------------------------------------------------------------------- re-ID


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def reid_ranking(
    query_emb: np.ndarray,
    query_ids: Sequence[str] | np.ndarray,
    gallery_emb: np.ndarray,
    gallery_ids: Sequence[str] | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float | int]:
    """Rank-k (CMC) and mAP over queries whose identity is in the gallery (cosine similarity)."""
    q = _normalise(query_emb)
    g = _normalise(gallery_emb)
    qid = np.asarray(query_ids).astype(str)
    gid = np.asarray(gallery_ids).astype(str)
    sim = q @ g.T
    hits = {k: 0 for k in ks}
    aps = []
    for i in range(len(qid)):
        match = gid == qid[i]
        if not match.any():
            continue
        order = np.argsort(-sim[i], kind="stable")
        good = match[order]
        first = int(np.argmax(good))
        for k in ks:
            hits[k] += int(first < k)
        ranks = np.flatnonzero(good) + 1  # 1-based ranks of every correct gallery item
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    n = len(aps)
    out: dict[str, float | int] = {f"rank{k}": (hits[k] / n if n else 0.0) for k in ks}
    out["mAP"] = float(np.mean(aps)) if n else 0.0
    out["queries"] = n
    out["gallery_items"] = len(gid)
    out["identities"] = len(set(gid.tolist()))
    return out


def open_set_rates(
    query_emb: np.ndarray,
    query_ids: Sequence[str] | np.ndarray,
    gallery_emb: np.ndarray,
    gallery_ids: Sequence[str] | np.ndarray,
    threshold: float,
) -> dict[str, float | int]:
    """At similarity `threshold`: how often an unknown bird (identity not in the gallery) is rejected,
    and how often a known bird is accepted *and* matched to the right identity."""
    q = _normalise(query_emb)
    g = _normalise(gallery_emb)
    qid = np.asarray(query_ids).astype(str)
    gid = np.asarray(gallery_ids).astype(str)
    sim = q @ g.T
    best = np.argmax(sim, axis=1)
    best_sim = sim[np.arange(len(qid)), best]
    known = np.isin(qid, gid)
    unknown = ~known
    correct = gid[best] == qid
    return {
        "threshold": float(threshold),
        "unknown_queries": int(unknown.sum()),
        "unknown_rejection_rate": float((best_sim[unknown] < threshold).mean()) if unknown.any() else 0.0,
        "known_queries": int(known.sum()),
        "known_accept_correct_rate": float(((best_sim >= threshold) & correct)[known].mean()) if known.any() else 0.0,
    }


def calibrate_threshold(emb: np.ndarray, ids: Sequence[str] | np.ndarray) -> float:
    """Cosine threshold that best separates same-bird from different-bird pairs (max balanced accuracy)."""
    e = _normalise(emb)
    ids_a = np.asarray(ids).astype(str)
    sim = e @ e.T
    iu = np.triu_indices(len(ids_a), 1)
    s = sim[iu]
    same = (ids_a[:, None] == ids_a[None, :])[iu]
    if not same.any() or same.all():
        raise ValueError("threshold calibration needs both same-identity and different-identity pairs")
    grid = np.linspace(-0.2, 1.0, 241)
    acc = np.array([0.5 * ((s[same] >= t).mean() + (s[~same] < t).mean()) for t in grid])
    # the middle of the best plateau: as far as possible from both pair populations
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float((grid[best[0]] + grid[best[-1]]) / 2)
