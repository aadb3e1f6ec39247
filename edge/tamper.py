"""Camera tamper detection from frame statistics: dark, covered, moved, frozen.

Works on a small grey copy of each processed frame:
- dark: mean brightness below `dark_mean`;
- covered: little texture (low std and almost no Canny edges) while not dark;
- moved: the scene no longer lines up with a learnt background reference (phase-correlation shift
  above `moved_shift_frac` of the width) for `confirm_frames` frames in a row; the reference is then
  re-learnt so one move raises one alert;
- frozen: no pixel change between processed frames for `frozen_s` seconds of source time (a real
  sensor always has some noise; a replayed still or a hung encoder does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.config import TamperConfig

STATES = ("ok", "dark", "covered", "moved", "frozen")
_SIZE = (160, 120)


@dataclass
class TamperEvent:
    state: str  # the new state
    previous: str
    timestamp: float


class TamperDetector:
    def __init__(self, config: TamperConfig | None = None) -> None:
        self.cfg = config or TamperConfig()
        self.state = "ok"
        self._reference: np.ndarray | None = None
        self._ref_count = 0
        self._prev: np.ndarray | None = None
        self._still_since: float | None = None
        self._candidate = "ok"
        self._candidate_n = 0
        self._window: np.ndarray | None = None
        self.last_stats: dict[str, float] = {}

    def _prep(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        return cv2.resize(gray, _SIZE, interpolation=cv2.INTER_AREA)

    def _moved(self, small: np.ndarray) -> tuple[bool, float, float]:
        """Phase correlation against the reference: a whole-scene shift means the camera moved.
        (Birds moving do not shift the whole floor; a view of another place gives a large random
        shift with a weak peak, which counts as moved too.)"""
        import cv2

        if self._reference is None:
            return False, 0.0, 1.0
        if self._window is None:
            self._window = cv2.createHanningWindow(_SIZE, cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(
            self._reference.copy(), small.astype(np.float32), self._window
        )  # copies: phaseCorrelate applies the window to its inputs in place
        shift = float(np.hypot(dx, dy)) / _SIZE[0]
        return shift > self.cfg.moved_shift_frac, shift, float(response)

    def update(self, frame: np.ndarray, timestamp: float) -> TamperEvent | None:
        """Feed one processed frame; returns an event when the confirmed state changes."""
        import cv2

        small = self._prep(frame)
        mean = float(small.mean())
        std = float(small.std())
        edges = float((cv2.Canny(small, 50, 150) > 0).mean())
        diff = (
            float(np.abs(small.astype(np.int16) - self._prev.astype(np.int16)).mean())
            if self._prev is not None
            else 1e9
        )
        self._prev = small
        if diff <= self.cfg.frozen_diff:
            if self._still_since is None:
                self._still_since = timestamp
        else:
            self._still_since = None

        if mean < self.cfg.dark_mean:
            raw = "dark"
        elif std < self.cfg.covered_std and edges < self.cfg.covered_edges:
            raw = "covered"
        else:
            moved, shift, response = self._moved(small)
            self.last_stats.update(shift=shift, response=response)
            if self._still_since is not None and timestamp - self._still_since >= self.cfg.frozen_s:
                raw = "frozen"
            elif moved:
                raw = "moved"
            else:
                raw = "ok"
        self.last_stats.update(mean=mean, std=std, edges=edges, diff=diff)

        if raw == "ok" and self._ref_count < self.cfg.reference_frames:
            # The reference is the average of the first good frames: birds move, the barn does not.
            f = small.astype(np.float32)
            self._reference = (
                f if self._reference is None else (self._reference * self._ref_count + f) / (self._ref_count + 1)
            )
            self._ref_count += 1

        if raw == self._candidate:
            self._candidate_n += 1
        else:
            self._candidate, self._candidate_n = raw, 1
        confirm = 1 if raw == "frozen" else self.cfg.confirm_frames
        if self._candidate_n >= confirm and raw != self.state:
            event = TamperEvent(raw, self.state, timestamp)
            self.state = raw
            if raw == "moved":
                # Re-learn the new view so the camera is judged against where it now points.
                self._reference = None
                self._ref_count = 0
            return event
        if self.state == "moved" and raw == "ok":
            self.state = "ok"
        return None
