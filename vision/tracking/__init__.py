"""Multi-object trackers, chosen by name with `make_tracker`.

- ``"flockid"``: `FlockTracker` (Kalman motion + appearance, ByteTrack-style two-stage association,
  long-term re-identification gallery; see ``vision.tracking.tracker``).
- ``"iou"``: `IouTracker`, a greedy IoU baseline for comparison.

Every tracker satisfies the `Tracker` protocol: ``update(dets) -> Detections`` (rows with ``track_id``
set) and ``reset()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from vision.detections import Detections
from vision.tracking.iou_tracker import IouTracker, IouTrackerConfig
from vision.tracking.tracker import FlockTracker, FlockTrackerConfig, TrackEvent, TrackInfo


@runtime_checkable
class Tracker(Protocol):
    def update(self, dets: Detections) -> Detections: ...

    def reset(self) -> None: ...


TRACKERS: dict[str, Callable[..., Tracker]] = {
    "flockid": FlockTracker,
    "iou": IouTracker,
}


def make_tracker(name: str, **config: Any) -> Tracker:
    """Build a tracker by name; ``config`` goes to its pydantic config (unknown keys raise)."""
    try:
        factory = TRACKERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown tracker {name!r}; valid names: {', '.join(sorted(TRACKERS))}") from None
    return factory(**config)


__all__ = [
    "TRACKERS",
    "FlockTracker",
    "FlockTrackerConfig",
    "IouTracker",
    "IouTrackerConfig",
    "TrackEvent",
    "TrackInfo",
    "Tracker",
    "make_tracker",
]
