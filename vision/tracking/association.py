"""Cost matrices and assignment between tracks (rows) and detections (columns).

Every cost is a distance in ``[0, 1]`` (0 = same object) or ``INF_COST`` for a pair that gating rules
out. ``linear_assignment`` (Hungarian, scipy) and ``greedy_assignment`` turn a cost matrix into
matches, keeping only pairs at or under a threshold; both accept empty matrices.

Appearance is optional per row and per column: an all-zero (or non-finite) embedding row means "not
embedded on this frame" and the appearance term is simply left out for that pair (see
``fuse_motion_appearance``), so callers may embed only some boxes on some frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from vision.geometry import box_iou_batch

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

#: Cost of a forbidden pair. Finite on purpose: scipy rejects matrices whose finite entries cannot
#: form a full matching, and a finite sentinel that no threshold accepts avoids that.
INF_COST = 1e6


def _matrix(cost: Any, name: str) -> F64:
    arr = np.asarray(cost, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (tracks, detections) matrix, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def embedding_mask(embedding: Any) -> B:
    """(N, D) -> (N,) True for rows that hold a usable embedding (finite, non-zero)."""
    emb = np.asarray(embedding, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embedding must have shape (N, D), got {emb.shape}")
    finite = np.isfinite(emb).all(axis=1)
    nonzero = np.abs(np.where(np.isfinite(emb), emb, 0.0)).sum(axis=1) > 0
    return np.asarray(finite & nonzero)


def l2_normalize(embedding: Any) -> F32:
    """Rows scaled to unit length; unusable rows (zero, non-finite) become exact zeros."""
    emb = np.asarray(embedding, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embedding must have shape (N, D), got {emb.shape}")
    ok = embedding_mask(emb)
    out = np.zeros_like(emb)
    if ok.any():
        rows = emb[ok]
        out[ok] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def iou_distance(track_xyxy: Any, det_xyxy: Any) -> F64:
    """``1 - IoU``: (T, 4), (N, 4) -> (T, N)."""
    return 1.0 - box_iou_batch(track_xyxy, det_xyxy).astype(np.float64)


def appearance_distance(track_emb: Any, det_emb: Any) -> tuple[F64, B]:
    """Cosine distance ``1 - cos`` clipped to [0, 1], and where it is defined.

    Returns ``(dist (T, N), available (T, N))``; ``dist`` is 1 where ``available`` is False. Rows need
    not be normalised. Dimensions must agree.
    """
    t = np.asarray(track_emb, dtype=np.float32)
    d = np.asarray(det_emb, dtype=np.float32)
    if t.ndim != 2 or d.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got track {t.shape} and detection {d.shape}")
    if t.shape[0] and d.shape[0] and t.shape[1] != d.shape[1]:
        raise ValueError(f"embedding dimensions differ: tracks have {t.shape[1]}, detections {d.shape[1]}")
    tn, dn = l2_normalize(t), l2_normalize(d)
    return normalized_appearance_distance(tn, dn, embedding_mask(t), embedding_mask(d))


def normalized_appearance_distance(
    track_emb: F32, det_emb: F32, track_ok: B, det_ok: B, where: B | None = None
) -> tuple[F64, B]:
    """`appearance_distance` for rows already L2-normalised with known usable-row masks (hot path).

    ``where`` (T, N), if given, limits the work to those pairs (e.g. the ones inside the motion gate);
    the others come back as not available. Row-wise dot products instead of one matrix product also
    keep multi-threaded BLAS out of the per-frame loop, which oversubscribes small edge CPUs.
    """
    available = track_ok[:, None] & det_ok[None, :]
    if where is not None:
        available &= where
    dist = np.ones((track_emb.shape[0], det_emb.shape[0]), np.float64)
    if track_emb.shape[0] == 0 or det_emb.shape[0] == 0:
        return dist, available
    if where is None:
        sim = (track_emb @ det_emb.T).astype(np.float64)
        dist = np.clip(1.0 - sim, 0.0, 1.0)
        dist[~available] = 1.0
        return dist, available
    r, c = np.nonzero(available)
    sim_pairs = np.einsum("ij,ij->i", track_emb[r], det_emb[c]).astype(np.float64)
    dist[r, c] = np.clip(1.0 - sim_pairs, 0.0, 1.0)
    return dist, available


def fuse_motion_appearance(
    iou_dist: Any,
    app_dist: Any,
    app_available: Any,
    *,
    motion_weight: float = 0.5,
    min_iou: float = 0.1,
    app_reject: float = 0.5,
    app_rescue: float = 0.15,
    gate_ok: Any = None,
) -> F64:
    """Fused cost with gating, in the spirit of BoT-SORT (motion + appearance, each able to veto).

    For a pair with appearance: ``motion_weight * iou_dist + (1 - motion_weight) * app_dist``; without:
    ``iou_dist``. A pair is forbidden (``INF_COST``) when

    - ``gate_ok`` (e.g. Mahalanobis gate from the Kalman filter) is False, or
    - appearance is available and ``app_dist > app_reject`` (a confident "different bird"; stops swaps), or
    - IoU is below ``min_iou``, unless appearance is available and ``app_dist <= app_rescue`` (a fast
      bird whose boxes no longer overlap the prediction but that clearly looks the same).
    """
    iou_d = _matrix(iou_dist, "iou_dist")
    app_d = _matrix(app_dist, "app_dist")
    avail = np.asarray(app_available, dtype=bool)
    if app_d.shape != iou_d.shape or avail.shape != iou_d.shape:
        raise ValueError(
            f"cost shapes differ: iou_dist {iou_d.shape}, app_dist {app_d.shape}, app_available {avail.shape}"
        )
    if not 0.0 <= motion_weight <= 1.0:
        raise ValueError(f"motion_weight must be in [0, 1], got {motion_weight}")
    cost = np.where(avail, motion_weight * iou_d + (1.0 - motion_weight) * app_d, iou_d)
    overlap_ok = (1.0 - iou_d) >= min_iou
    allowed = (overlap_ok | (avail & (app_d <= app_rescue))) & ~(avail & (app_d > app_reject))
    if gate_ok is not None:
        gate = np.asarray(gate_ok, dtype=bool)
        if gate.shape != iou_d.shape:
            raise ValueError(f"gate_ok has shape {gate.shape}, expected {iou_d.shape}")
        allowed &= gate
    return np.where(allowed, cost, INF_COST)


def _unmatched(n: int, used: I64) -> I64:
    mask = np.ones(n, bool)
    mask[used] = False
    return np.flatnonzero(mask).astype(np.int64)


def linear_assignment(cost: Any, threshold: float, *, cost_limit: bool = True) -> tuple[I64, I64, I64]:
    """Minimum-cost matching in which leaving a row or a column unmatched costs ``threshold / 2``: a
    pair is taken where it beats leaving both out, so only pairs with ``cost <= threshold``.

    ``cost_limit=False``: the most pairs under ``INF_COST`` at the least cost, then the pairs over
    ``threshold`` dropped (takes more pairs, some of them at the expense of a better one).

    Returns ``(matches (K, 2) [row, col], unmatched_rows, unmatched_cols)``, sorted by row.
    """
    c = _matrix(cost, "cost")
    n, m = c.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    from scipy.optimize import linear_sum_assignment

    # Leaving a row or a column unmatched costs threshold / 2 (lapjv's cost_limit, as ByteTrack solves
    # it), so a pair is taken only where it beats leaving both out. Equivalently, on the n x m matrix:
    # an allowed pair costs cost - threshold (<= 0) and any other pair 0, the same as no pair. Solved
    # with the plain costs instead, the Hungarian method first maximised the number of pairs under the
    # sentinel and dropped the ones over threshold afterwards: in a crowd it broke a near-perfect pair
    # (a bird and its own box) to give two tracks mediocre boxes, one of them a neighbour's.
    ok = c <= threshold
    if cost_limit:
        rows, cols = linear_sum_assignment(np.where(ok, c - threshold, 0.0))
    else:
        rows, cols = linear_sum_assignment(np.minimum(c, INF_COST))
    keep = ok[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    return matches, _unmatched(n, matches[:, 0]), _unmatched(m, matches[:, 1])


def greedy_assignment(cost: Any, threshold: float) -> tuple[I64, I64, I64]:
    """Repeatedly take the cheapest remaining pair with ``cost <= threshold`` (ties: lowest row, col).

    Same return layout as ``linear_assignment``; cheaper but not optimal.
    """
    c = _matrix(cost, "cost")
    n, m = c.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    rows, cols = np.nonzero(c <= threshold)
    order = np.lexsort((cols, rows, c[rows, cols]))
    row_used = np.zeros(n, bool)
    col_used = np.zeros(m, bool)
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, q = int(rows[k]), int(cols[k])
        if row_used[r] or col_used[q]:
            continue
        row_used[r] = col_used[q] = True
        pairs.append((r, q))
    pairs.sort()
    matches = np.array(pairs, np.int64).reshape(-1, 2)
    return matches, _unmatched(n, matches[:, 0]), _unmatched(m, matches[:, 1])
