"""MotionFingerprint: honest frames of one fixed camera hours apart differ, replayed frames (JPEG
re-encoded, new timestamp overlay) match; registry snapshots carry the footage time."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import cv2
import numpy as np

from edge.fingerprint import MotionFingerprint, hamming, phash
from edge.reports import header, registry_snapshot_payload


def _footage(birds: int, night: float) -> tuple[list[float], list[np.ndarray]]:
    from datasets.synth import FlockWorld
    from flockid.demo_world import FARM_DEFAULTS, world_config

    times = [600.0 + b * 2400.0 + k * 0.1 for b in range(12) for k in range(2)]  # 8 h of bursts
    cfg = {**FARM_DEFAULTS, "birds": birds, "cameras": 1, "night_fraction": night, "seed": birds}
    world = FlockWorld(world_config(times, **cfg))
    return times, [f.image for f in world.frames(times_s=times)]


def _replayed(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (150, 14), (0, 0, 0), -1)
    cv2.putText(out, "2027-01-01 12:34:56", (2, 11), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255), 1)
    _ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 35])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _hashes(fp: MotionFingerprint, times: list[float], frames: list[np.ndarray]) -> list[str | None]:
    out = []
    for t, img in zip(times, frames, strict=True):
        fp.update(img, t)
        out.append(fp.fingerprint())
    return out


def test_motion_fingerprint_separates_new_moments_from_replays() -> None:
    for birds, night in ((8, 0.0), (40, 0.4)):
        times, frames = _footage(birds, night)
        fp = MotionFingerprint()
        honest = _hashes(fp, times, frames)
        assert honest[0] is None  # nothing learned yet: no constant hash is sent
        replay = _hashes(fp, [t + 86400 for t in times], [_replayed(f) for f in frames])
        idx = [i for i in range(2, len(times), 2) if honest[i] and replay[i]]
        far = [hamming(honest[i], honest[j]) for i, j in itertools.combinations(idx, 2)  # type: ignore[arg-type]
               if times[j] - times[i] >= 3600]
        assert min(far) > 8, (birds, night, sorted(far)[:5])
        same = [hamming(honest[i], replay[i]) for i in idx]  # type: ignore[arg-type]
        assert max(same) <= 6, (birds, night, same)
        # The whole-frame pHash cannot tell them apart: the barn dominates it.
        whole = [hamming(phash(frames[i]), phash(frames[j])) for i, j in itertools.combinations(idx, 2)
                 if times[j] - times[i] >= 3600]
        assert min(whole) < min(far)


def test_motion_fingerprint_rejects_bad_input() -> None:
    fp = MotionFingerprint()
    try:
        fp.fingerprint()
    except ValueError as exc:
        assert "update" in str(exc)
    else:
        raise AssertionError("fingerprint() before update() must fail")
    for kw in ({"tau_s": 0.0}, {"band": 0.6}):
        try:
            MotionFingerprint(**kw)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{kw} accepted")


def test_registry_snapshot_taken_at_uses_footage_time() -> None:
    footage_ts = 1_700_000_000.0
    birds = [{"bird_id": "bird-000001", "prototype": [1.0, 0.0], "first_seen": footage_ts - 60,
              "last_seen": footage_ts, "observations": 3}]
    doc = registry_snapshot_payload(header("dev", "farm", 0, None), {"birds": birds}, taken_at=footage_ts)
    assert datetime.fromisoformat(doc["taken_at"].replace("Z", "+00:00")) == datetime.fromtimestamp(
        footage_ts, timezone.utc)
    wall = registry_snapshot_payload(header("dev", "farm", 0, None), {"birds": birds})
    assert wall["taken_at"] == wall["device_clock"]
