"""Non-maximum suppression over numpy arrays (class-aware by coordinate offset)."""

from __future__ import annotations

import numpy as np


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = max(float((box[2] - box[0]) * (box[3] - box[1])), 0.0)
    area_b = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


# Above this many candidates the (K, K) IoU matrix (4 bytes a pair) would be too big: fall back to
# one-against-the-rest rows. YOLO at conf >= 0.1 leaves tens to a few hundred boxes.
_MATRIX_MAX = 2048


def _iou_matrix(xyxy: np.ndarray) -> np.ndarray:
    b = xyxy.astype(np.float32, copy=False)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int = 1000) -> np.ndarray:
    """Indices of kept boxes, highest score first (greedy NMS; ties keep input order)."""
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    if xyxy.shape[0] != scores.shape[0]:
        raise ValueError(f"nms: {xyxy.shape[0]} boxes but {scores.shape[0]} scores")
    order = np.argsort(-scores, kind="stable")
    if order.size > _MATRIX_MAX:
        return _nms_rows(xyxy, order, iou_threshold, max_det)
    # One IoU matrix in sorted order, then the greedy pass only flips flags: the per-kept-box cost is
    # one boolean row instead of gathering and intersecting the remaining boxes again.
    over = _iou_matrix(xyxy[order]) > iou_threshold
    alive = np.ones(order.size, bool)
    keep: list[int] = []
    for i in range(order.size):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det:
            break
        alive &= ~over[i]
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)


def _nms_rows(xyxy: np.ndarray, order: np.ndarray, iou_threshold: float, max_det: int) -> np.ndarray:
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        ious = _iou_one_to_many(xyxy[i], xyxy[rest])
        order = rest[ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou_threshold: float, max_det: int = 1000
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other."""
    if xyxy.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    span = float(np.max(xyxy)) + 1.0
    shifted = xyxy + (class_id.astype(np.float32) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_det)
