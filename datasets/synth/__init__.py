"""The synthetic flock world: a seeded farm with cameras, individual birds and ground truth.

    from datasets.synth import FlockWorld, WorldConfig
    world = FlockWorld(WorldConfig(seed=7, birds=40, frames=600))
    for f in world.frames():
        f.image, f.gt.bird_id, f.gt.xyxy, f.gt.visibility

Writers (`write_sequence`, `write_detect_dataset`, `write_reid_dataset`) put worlds on disk. See README.md.
"""

from datasets.synth.birds import Bird, BirdTraits, GrowthCurve
from datasets.synth.config import HealthEvent, Removal, Tamper, WorldConfig
from datasets.synth.detect import write_detect_dataset
from datasets.synth.frame import Frame, FrameGT
from datasets.synth.reid import write_reid_dataset
from datasets.synth.sequence import read_frames_csv, write_sequence
from datasets.synth.world import FlockWorld

__all__ = [
    "Bird",
    "BirdTraits",
    "FlockWorld",
    "Frame",
    "FrameGT",
    "GrowthCurve",
    "HealthEvent",
    "Removal",
    "Tamper",
    "WorldConfig",
    "read_frames_csv",
    "write_detect_dataset",
    "write_reid_dataset",
    "write_sequence",
]
