"""What the world yields: one camera frame and its ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameGT:
    """Ground truth of one frame of one camera, one row per bird on the farm (not removed).

    xyxy: the full (amodal) box of the bird clipped to the frame, float32 pixels; zeros when not in view.
    visible_xyxy: box of the bird's visible pixels (zeros when none are visible).
    visibility: visible pixels / all pixels of the bird (occlusion by birds and props, and the frame edge).
    in_view: some part of the bird projects inside the frame (it may still be fully hidden).
    """

    bird_id: np.ndarray  # (N,) int64, 1-based, also the MOT track id
    xyxy: np.ndarray  # (N, 4) float32
    visible_xyxy: np.ndarray  # (N, 4) float32
    visibility: np.ndarray  # (N,) float32 0..1
    state: np.ndarray  # (N,) object: "ok" | "sick" | "dead"
    lying: np.ndarray  # (N,) bool: dead birds lie on their side
    in_view: np.ndarray  # (N,) bool
    pose: np.ndarray  # (N,) object: stand | peck | sit | sick | dead | "" (not drawn)
    weight_g: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return int(self.bird_id.shape[0])

    def select(self, mask: np.ndarray) -> FrameGT:
        return FrameGT(
            bird_id=self.bird_id[mask],
            xyxy=self.xyxy[mask],
            visible_xyxy=self.visible_xyxy[mask],
            visibility=self.visibility[mask],
            state=self.state[mask],
            lying=self.lying[mask],
            in_view=self.in_view[mask],
            pose=self.pose[mask],
            weight_g=self.weight_g[mask],
        )

    def annotated(self, min_visibility: float) -> FrameGT:
        """Rows an annotator would draw: in view and at least min_visibility visible."""
        return self.select(self.in_view & (self.visibility >= max(min_visibility, 1e-6)))


@dataclass
class Frame:
    """One image of one camera. index is 0-based and shared by all cameras of the same instant: it counts
    the instants of one fixed-step `FlockWorld.frames()` call, or, filming at `times_s`, the instants
    since the world was first filmed."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    index: int
    time_s: float  # simulated seconds since the first frame
    timestamp: float  # epoch seconds (what the overlay shows)
    is_night: bool
    camera_id: str
    gt: FrameGT
    tamper: str | None = None  # "covered" | "dark" | "moved" | "frozen" while tampered
    age_days: float = 0.0
