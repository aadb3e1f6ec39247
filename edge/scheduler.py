"""Frame scheduler: process at a target rate and never queue up work behind real time.

`due(ts)` says whether a frame with timestamp ts should be processed. When processing falls behind
(a slow frame, a pause), the schedule jumps forward instead of bursting to catch up, so the next
processed frame is always a fresh one. Timestamps come from the wall clock or from the source
(simulated clock); the scheduler does not care which.
"""

from __future__ import annotations


class FrameScheduler:
    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.period = 1.0 / fps
        self.next_ts: float | None = None
        self.skipped = 0
        self.behind = 0  # times the schedule jumped forward because processing lagged

    def due(self, ts: float) -> bool:
        nxt = self.next_ts
        # A clock that jumps back (source restarted, NTP step) restarts the schedule.
        if nxt is None or ts < nxt - 10 * self.period:
            self.next_ts = ts + self.period
            return True
        if ts + 1e-9 < nxt:
            self.skipped += 1
            return False
        nxt += self.period
        if nxt <= ts:
            self.behind += 1
            nxt = ts + self.period
        self.next_ts = nxt
        return True

    def wait_s(self, now: float) -> float:
        """Seconds until the next frame is due (0 when one is due now)."""
        return 0.0 if self.next_ts is None else max(0.0, self.next_ts - now)
