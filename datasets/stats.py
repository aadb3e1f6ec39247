"""Difficulty of MOT sequences: occlusion, re-entries, look-alikes, night.

Works on any MOTChallenge sequence dir (gt/gt.txt + seqinfo.ini); synthetic sequences add frames.csv
(simulated time, night flags) and birds.json (appearance traits, for look-alike pairs). A dir holding
several sequences (e.g. one per camera) is summed over them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

REENTRY_GAP_S = 2.0  # a track absent this long and back again counts as a re-entry


def find_sequences(root: str | Path) -> list[Path]:
    """The sequence dirs under root (root itself if it is one)."""
    r = Path(root)
    if not r.is_dir():
        raise FileNotFoundError(f"{r}: not a directory")
    if (r / "gt" / "gt.txt").is_file():
        return [r]
    seqs = sorted(p.parent.parent for p in r.glob("*/gt/gt.txt"))
    if not seqs:
        seqs = sorted(p.parent.parent for p in r.glob("**/gt/gt.txt"))
    if not seqs:
        raise FileNotFoundError(f"{r}: no MOT sequence (gt/gt.txt) here or below")
    return seqs


def _frame_times(seq: Path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Simulated time of each listed frame (frames.csv or frame/frame_rate) and per-frame night flags."""
    from datasets.formats.mot import read_seqinfo
    from datasets.synth.sequence import read_frames_csv

    fc = read_frames_csv(seq)
    if fc is not None and len(fc["frame"]):
        lut = dict(zip(fc["frame"].tolist(), fc["time_s"].tolist(), strict=True))
        times = np.array([lut.get(int(f), np.nan) for f in frames])
        return times, fc["is_night"]
    rate = 30.0
    if (seq / "seqinfo.ini").is_file():
        rate = float(read_seqinfo(seq)["frame_rate"]) or 30.0
    return (frames - 1) / rate, None


def _night_from_images(seq: Path, max_frames: int = 40) -> float | None:
    """Fraction of sampled frames that are greyscale (infra-red); None without images or video."""
    from datasets.formats.mot import iter_sequence_frames

    try:
        got = []
        for k, (_, img) in enumerate(iter_sequence_frames(seq)):
            if k % 5:
                continue
            chans = img.astype(np.int16)
            spread = float(np.abs(chans[..., 0] - chans[..., 1]).mean() + np.abs(chans[..., 1] - chans[..., 2]).mean())
            got.append(spread < 3.0)
            if len(got) >= max_frames:
                break
        return float(np.mean(got)) if got else None
    except (FileNotFoundError, ValueError):
        return None


def reentry_events(track_id: np.ndarray, times: np.ndarray, min_gap_s: float = REENTRY_GAP_S) -> int:
    """Number of times a track reappears after being absent from the gt for at least min_gap_s."""
    n = 0
    for tid in np.unique(track_id):
        t = np.sort(times[track_id == tid])
        if t.size > 1:
            n += int(np.sum(np.diff(t) >= min_gap_s))
    return n


def lookalike_pairs_of(seq: Path, ids_seen: set[int]) -> int | None:
    """Look-alike pairs among the birds seen in the gt, from birds.json traits (None if absent)."""
    from datasets.synth.birds import lookalike_pairs_from_traits

    p = seq / "birds.json"
    if not p.is_file():
        return None
    try:
        birds = json.loads(p.read_text())["birds"]
        seen = [b for b in birds if int(b["bird_id"]) in ids_seen]
        return len(lookalike_pairs_from_traits([b["traits"] for b in seen]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{p}: malformed birds.json: {exc}") from None


def sequence_stats(seq: str | Path) -> dict[str, Any]:
    from datasets.formats.mot import read_gt, read_seqinfo

    s = Path(seq)
    gt = read_gt(s / "gt" / "gt.txt")
    info = read_seqinfo(s) if (s / "seqinfo.ini").is_file() else {}
    n_frames = int(info.get("seq_length", int(gt.frame.max()) if len(gt) else 0))
    vis = np.clip(gt.visibility, 0, 1)
    occ = 1.0 - vis
    times, night = _frame_times(s, gt.frame)
    ids = {int(i) for i in np.unique(gt.track_id)}
    if night is not None and len(night):
        night_frac: float | None = float(np.mean(night))
    else:
        night_frac = _night_from_images(s)
    wh = gt.xyxy[:, 2:4] - gt.xyxy[:, 0:2]
    length = wh.max(axis=1) if len(gt) else np.zeros(0)
    return {
        "sequence": s.name,
        "frames": n_frames,
        "boxes": len(gt),
        "ids": len(ids),
        "boxes_per_frame": len(gt) / max(n_frames, 1),
        "mean_occlusion": float(occ.mean()) if len(gt) else 0.0,
        "p90_occlusion": float(np.percentile(occ, 90)) if len(gt) else 0.0,
        "frac_visibility_lt_0_5": float(np.mean(vis < 0.5)) if len(gt) else 0.0,
        "reentry_events": reentry_events(gt.track_id, times),
        "lookalike_pairs": lookalike_pairs_of(s, ids),
        "night_fraction": night_frac,
        "median_box_px": float(np.median(length)) if len(gt) else 0.0,
        "_occ": occ,
        "_len": length,
    }


def dataset_stats(root: str | Path) -> dict[str, Any]:
    """Difficulty of every sequence under root, and the totals (box-weighted occlusion figures)."""
    seqs = [sequence_stats(s) for s in find_sequences(root)]
    occ = np.concatenate([s.pop("_occ") for s in seqs]) if seqs else np.zeros(0)
    lengths = [s.pop("_len") for s in seqs]
    frames = sum(s["frames"] for s in seqs)
    la = [s["lookalike_pairs"] for s in seqs]
    nights = [(s["night_fraction"], s["frames"]) for s in seqs if s["night_fraction"] is not None]
    out: dict[str, Any] = {
        "sequences": len(seqs),
        "frames": frames,
        "boxes": int(occ.size),
        # Tracks, not birds: cameras of one farm see the same birds under the same ids.
        "tracks": sum(s["ids"] for s in seqs),
        "mean_occlusion": float(occ.mean()) if occ.size else 0.0,
        "p90_occlusion": float(np.percentile(occ, 90)) if occ.size else 0.0,
        "frac_visibility_lt_0_5": float(np.mean(occ > 0.5)) if occ.size else 0.0,
        "reentry_events": sum(s["reentry_events"] for s in seqs),
        "lookalike_pairs": max(v for v in la if v is not None) if any(v is not None for v in la) else None,
        "night_fraction": (sum(n * f for n, f in nights) / max(sum(f for _, f in nights), 1)) if nights else None,
        "boxes_per_frame": occ.size / max(frames, 1),
        "median_box_px": float(np.median(np.concatenate(lengths))) if lengths and occ.size else 0.0,
        "per_sequence": seqs,
    }
    return out
