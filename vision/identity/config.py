"""Settings of the identity registry (open-set matching, enrolment, prototype updates, persistence)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# identity_confidence at or above this: the registry's match passed its thresholds (a sure identity);
# below it, the id is a guess among look-alikes (`assign_ambiguous`) and may belong to another bird.
SURE_IDENTITY = 0.5


class IdentityConfig(BaseModel):
    """Thresholds are cosine similarities of L2-normalised embeddings (1 = identical).

    match_threshold / margin: a track is given a known bird's id only when its similarity to that bird
    is >= match_threshold AND beats the runner-up candidate by >= margin. Look-alike birds fail the
    margin test: with `assign_ambiguous` (default) they get the most similar bird not held by another
    track of the camera, with identity_confidence < 0.5, and never update that bird's prototype;
    without it they stay unassigned.
    new_threshold: a track whose similarity to every candidate bird is below this is a new bird and is
    enrolled after `enroll_min_frames` embeddings.
    """

    model_config = ConfigDict(extra="forbid")

    match_threshold: float = Field(default=0.70, ge=-1.0, le=1.0)
    new_threshold: float = Field(default=0.50, ge=-1.0, le=1.0)
    margin: float = Field(default=0.05, ge=0.0, le=2.0)
    match_min_frames: int = Field(default=2, ge=1, le=10_000, description="embeddings of a track before a match")
    enroll_min_frames: int = Field(default=5, ge=1, le=10_000, description="embeddings of a track before enrolling")
    enroll_min_rel_area: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="only whole-bird views enrol a new bird: box area >= this x the frame's median box area "
        "(0: off); partial views (a head behind the feeder, a bird half out of view) may still match",
    )
    relink_s: float = Field(
        default=10.0,
        ge=0.0,
        le=3600.0,
        description="a new track that starts where a bird of this camera was last seen at most this long "
        "before (stream s), or stands where a bird vanished, takes that bird's id as a guess instead "
        "of a new id, unless its looks rule the bird out (0: off; a guess, so only with assign_ambiguous)",
    )
    relink_body_lengths: float = Field(
        default=2.0, ge=0.0, le=100.0, description="'where a bird was last seen' of relink_s, in body lengths"
    )
    relink_max_frame_gap_s: float = Field(
        default=0.5,
        gt=0.0,
        le=3600.0,
        description="relink, and keep a drifting id as a guess (reverify_drop), only in footage with frames "
        "at most this far apart (stream s): seconds apart, birds walk several body lengths between frames, "
        "a spot says little about who stands on it (at a frame every 4 s a 60 s / 4 body-length relink cut "
        "a 40-bird headcount to 30) and the tracker swaps birds often",
    )
    relink_min_sim: float = Field(
        default=0.3, ge=-1.0, le=1.0, description="looks below this similarity rule a relink out"
    )
    enroll_border_px: float = Field(
        default=2.0, ge=0.0, le=1e4, description="boxes this close to the frame border do not count toward enrolment"
    )
    track_alpha: float = Field(
        default=0.3, gt=0.0, le=1.0, description="EMA weight of a new embedding in a track's mean"
    )
    prototype_alpha: float = Field(default=0.03, ge=0.0, le=1.0, description="slow EMA of a bird's prototype")
    max_exemplars: int = Field(default=6, ge=0, le=64)
    exemplar_novelty: float = Field(default=0.92, ge=-1.0, le=1.0, description="add an exemplar if below this sim")
    reverify_drop: float = Field(
        default=0.20,
        ge=0.0,
        le=2.0,
        description="a track's sure id becomes a guess when its recent embedding falls this far "
        "below match_threshold for its bird and another bird matches (or none does); in footage with "
        "frames more than relink_max_frame_gap_s apart the track loses the id instead",
    )
    exclusion: bool = Field(
        default=True,
        description="birds held by other tracks in the same frame of the same camera "
        "are not candidates (identity by elimination)",
    )
    assign_ambiguous: bool = Field(
        default=True, description="give ambiguous tracks the most similar free id at low confidence"
    )
    hold_s: float = Field(
        default=0.0, ge=0.0, le=3600.0, description="a track seen this recently holds its bird (0: this frame only)"
    )
    track_ttl_s: float = Field(
        default=120.0, gt=0.0, le=1e7, description="forget a track unseen this long (stream time)"
    )
    handoff_cm: float = Field(
        default=30.0,
        ge=0.0,
        le=1000.0,
        description="cameras with floor points: a track without a sure id takes the id another camera surely "
        "sees within this many cm of it on the pen's plan at the same moment (0: off)",
    )
    handoff_s: float = Field(default=1.0, ge=0.0, le=60.0, description="'the same moment' of handoff_cm (stream s)")
    save_every_s: float = Field(default=30.0, ge=0.0, le=1e6, description="auto-save period (wall clock); 0 = never")
    id_prefix: str = Field(default="bird-", pattern=r"^[a-z]+-$")
    id_digits: int = Field(default=6, ge=6, le=12)

    @model_validator(mode="after")
    def _order(self) -> IdentityConfig:
        if self.new_threshold > self.match_threshold:
            raise ValueError(
                f"identity: new_threshold ({self.new_threshold}) must be <= match_threshold ({self.match_threshold})"
            )
        return self
