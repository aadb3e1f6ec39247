"""FlockWorld: a seeded farm (scene, cameras, birds, events) that yields frames with ground truth."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datasets.synth.behaviour import REST, FlockSim, Params
from datasets.synth.birds import Bird, body_length_m, make_flock
from datasets.synth.camera import Camera, make_cameras
from datasets.synth.config import WorldConfig
from datasets.synth.frame import Frame, FrameGT
from datasets.synth.render import BirdView, Renderer, RenderOut
from datasets.synth.scene import Scene, build_scene
from datasets.synth.sprites import SpriteBank

DAY_S = 86400.0
# Gaps longer than this between filmed instants count as "across a gap" for config.sick_stay_put.
SICK_STAY_GAP_S = 60.0
# A sick bird sat down by the world rests about as long as a typical rest bout before it may get up.
REST_BOUT_S = 70.0


@dataclass
class _FilmState:
    """Where filming has got to: health events and removals applied, the last instant, camera shake and
    the last live frame of every camera. Filming at times_s keeps one for the world's life, so footage
    filmed in several calls is the footage of one call."""

    applied_health: list[int]
    removed: list[bool]
    shake: np.ndarray  # (cameras, 2) pixels
    frozen: list[Frame | None]  # per camera: what a "frozen" camera keeps showing
    t: float | None = None
    instants: int = 0
    incidents: int = 0
    last_age: float = -1.0
    weights: np.ndarray | None = None
    sick_spots: dict[int, np.ndarray] = field(default_factory=dict)  # bird index -> where it sat down sick

    @classmethod
    def fresh(cls, n_birds: int, n_cameras: int) -> _FilmState:
        return cls([0] * n_birds, [False] * n_birds, np.zeros((n_cameras, 2)), [None] * n_cameras)


class FlockWorld:
    """A deterministic synthetic farm. `frames()` yields `Frame`s (all cameras of an instant in turn).

    Everything is a pure function of the config: same config -> same pixels and ground truth.
    """

    def __init__(self, config: WorldConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = WorldConfig(**overrides)
        elif overrides:
            config = config.model_copy(update=overrides)
            config = WorldConfig(**config.model_dump())
        self.config = config
        c = config
        rng = np.random.default_rng([c.seed, 0x5CE7E])
        self.birds: list[Bird] = make_flock(c.birds, c.flock, c.bird_seed)
        if c.scene == "random":
            p_run = 0.8 if c.flock == "mixed" else 0.2
            self.scene_kind = "run" if rng.random() < p_run else "barn"
        else:
            self.scene_kind = c.scene
        self.camera_kind = c.camera if c.camera != "random" else ("oblique" if rng.random() < 0.6 else "topdown")
        w = c.size_wh[0]
        bird_px = c.bird_px if c.bird_px is not None else float(rng.uniform(58, 90)) * (w / 640.0)
        lengths = [b.length_m(c.start_day) for b in self.birds]
        ref_len = float(np.median(lengths)) if lengths else body_length_m(2000)
        self.cameras: list[Camera]
        self.cameras, self.arena = make_cameras(rng, self.camera_kind, c.cameras, c.size_wh, bird_px, ref_len)
        self.scene: Scene = build_scene(rng, self.cameras, self.arena, self.scene_kind, c.randomize, c.jpeg_quality,
                                        mesh_rng=np.random.default_rng([c.seed, 0x3E5]))
        self.bank = SpriteBank({b.bird_id: b.traits for b in self.birds}, seed=c.bird_seed)
        self._schedule(np.random.default_rng([c.seed, 0x4EA17]))
        self._clock()
        sim_rng = np.random.default_rng([c.seed, 0x51A])
        params = Params(leave_rate_s=c.leave_rate_per_hour / 3600.0, absence_s=c.absence_s, arena=self.arena)
        self.sim = FlockSim(self.birds, self.scene, params, sim_rng, c.start_day)
        self.sim.night = self.is_night(0.0)
        self.renderers = [
            Renderer(self.scene, i, self.bank, np.random.default_rng([c.seed, 0xCA3, i]), c.noise, c.blur,
                     c.compression, c.overlay,
                     lens_k=None if c.lens_distortion is None else c.lens_distortion * c.randomize)
            for i in range(len(self.cameras))
        ]
        self._fx_rng = np.random.default_rng([c.seed, 0xF00])
        # Filming at times_s continues one clock across calls; a fixed step restarts it every call.
        self._film: _FilmState | None = None
        self._fixed_step_filmed = False

    # ------------------------------------------------------------------ schedule

    def _schedule(self, rng: np.random.Generator) -> None:
        """Health timelines and removals, fixed before the first frame (they go into birds.json)."""
        c = self.config
        dur = c.duration_s if c.frames is not None else 3600.0
        n = len(self.birds)
        order = rng.permutation(n)
        dead_idx = order[: c.dead_birds]
        sick_idx = order[c.dead_birds : c.dead_birds + c.sick_birds]
        sw = c.sick_window_s or (0.05 * dur, 0.5 * dur)
        dw = c.dead_window_s or (0.1 * dur, 0.6 * dur)
        for i in sick_idx:
            self.birds[int(i)].health.append((float(rng.uniform(*sw)), "sick"))
        for i in dead_idx:
            t_dead = float(rng.uniform(*dw))
            b = self.birds[int(i)]
            if t_dead > 0:
                b.health.append((t_dead * float(rng.uniform(0.2, 0.7)), "sick"))
            b.health.append((t_dead, "dead"))
        for ev in c.health_events:
            self.birds[ev.bird].health.append((ev.at_s, ev.state))
        for b in self.birds:
            b.health.sort(key=lambda x: x[0])
            # Nothing recovers from death.
            seen_dead = False
            cleaned = []
            for at, st in b.health:
                if seen_dead:
                    continue
                cleaned.append((at, st))
                seen_dead = st == "dead"
            b.health = cleaned
        for rem in sorted(c.removals, key=lambda r: r.at_s):
            alive = [b for b in self.birds if b.removed_at_s is None]
            k = round(rem.fraction * len(alive))
            for j in rng.permutation(len(alive))[:k]:
                alive[int(j)].removed_at_s = rem.at_s

    def _clock(self) -> None:
        """Choose the wall-clock start so that about night_fraction of the frames are at night."""
        c = self.config
        nf = c.night_fraction
        self.night_len_s = nf * DAY_S
        dusk = DAY_S - self.night_len_s / 2  # nights are centred on midnight
        dur = c.duration_s if c.frames is not None else 0.0
        if nf <= 0:
            start = 8 * 3600.0
        elif nf >= 1:
            start = 0.0
        elif dur < DAY_S:
            # Short sequences: day first, then dusk at (1 - nf) of the sequence.
            start = dusk - (1 - nf) * dur - 0.5 * c.step_s
        else:
            start = 8 * 3600.0
        self.start_clock_s = start % DAY_S
        self.start_epoch = c.start_epoch + self.start_clock_s

    def overlay_masks_xyxyn(self, camera_index: int) -> list[tuple[float, float, float, float]]:
        """The regions of camera `camera_index`'s burnt-in clock and camera name, in fractions of the frame
        (what an installer would mask: vision.masks); empty without an overlay."""
        rend = self.renderers[camera_index]
        w, h = rend.size_wh
        boxes = rend.overlay_xyxy() / np.array([w, h, w, h], np.float32)
        return [tuple(round(float(v), 4) for v in b) for b in boxes]  # type: ignore[misc]

    def floor_marks(self, camera_index: int) -> list[dict[str, tuple[float, float]]]:
        """Four floor marks an installer would measure for camera `camera_index` (`vision.floor`): whole
        pixels in its frame, spread over the lower part of the view, and where they lie on the farm's
        plan in whole centimetres (the world's ground frame, shared by all its cameras)."""
        cam = self.cameras[camera_index]
        w, h = cam.size_wh
        px = np.array([[0.2 * w, 0.55 * h], [0.8 * w, 0.55 * h], [0.8 * w, 0.92 * h], [0.2 * w, 0.92 * h]]).round()
        floor_cm = (cam.ground_of(px) * 100.0).round()
        if not np.all(np.isfinite(floor_cm)):
            raise ValueError(f"camera {cam.camera_id}: a floor mark falls above the horizon")
        return [{"image_xy": (float(u), float(v)), "floor_cm": (float(x), float(y))}
                for (u, v), (x, y) in zip(px, floor_cm, strict=True)]

    def is_night(self, t_s: float) -> bool:
        if self.config.night_fraction <= 0:
            return False
        if self.config.night_fraction >= 1:
            return True
        clock = (self.start_clock_s + t_s) % DAY_S
        half = self.night_len_s / 2
        return clock >= DAY_S - half or clock < half

    def age_days(self, t_s: float) -> float:
        return self.config.start_day + t_s / DAY_S

    def tamper_at(self, t_s: float, cam: int) -> str | None:
        for tp in self.config.tamper:
            if (tp.camera is None or tp.camera == cam) and tp.start_s <= t_s < tp.end_s:
                return tp.kind
        return None

    # ------------------------------------------------------------------ frames

    def frames(self, limit: int | None = None, *, times_s: Iterable[float] | None = None) -> Iterator[Frame]:
        """Frames in time order; with several cameras, every camera's frame of an instant in turn.

        Without times_s: instants `config.time_step_s` apart from t=0; limit caps the number of instants
        (config.frames None = endless). Each such call starts again at t=0 and index 0.
        With times_s (non-decreasing simulated seconds, e.g. short bursts hours apart): the world is
        filmed at exactly those instants; behaviour jumps over long gaps, growth, health events, removals
        and tampering follow simulated time. config.frames does not cap these; limit does. The world
        keeps its clock between such calls: a later call continues the same farm (day 1, then day 2),
        must start at or after the last instant filmed, and yields what one call would have (`index`
        counts instants since the world was first filmed).
        """
        if limit is not None and limit < 0:
            raise ValueError(f"frames: limit must be >= 0, got {limit}")
        n_cam = len(self.cameras)
        if times_s is None:
            if self._film is not None:
                raise ValueError("frames: this world was filmed at times_s; film a fresh FlockWorld at a fixed step")
            self._fixed_step_filmed = True
            return self._run(self._fixed_instants(limit), _FilmState.fresh(len(self.birds), n_cam))
        if self._fixed_step_filmed:
            raise ValueError("frames: this world was filmed at a fixed step; film a fresh FlockWorld at times_s")
        times = [float(t) for t in times_s]
        for k, t in enumerate(times):
            if not math.isfinite(t) or t < 0:
                raise ValueError(f"frames: times_s[{k}]={t} must be a finite number >= 0")
            if k and t < times[k - 1]:
                raise ValueError(f"frames: times_s must be non-decreasing, times_s[{k}]={t} < {times[k - 1]}")
        if limit is not None:
            times = times[:limit]
        if self._film is None:
            self._film = _FilmState.fresh(len(self.birds), n_cam)
        film = self._film
        if times and film.t is not None and times[0] < film.t:
            raise ValueError(f"frames: this world was already filmed up to t={film.t}, times_s starts at {times[0]}")
        return self._run(self._given_instants(times, film), film)

    def _fixed_instants(self, limit: int | None) -> Iterator[tuple[float, float]]:
        """(t, dt) every time_step_s; dt is the step itself (not a difference of t's) so the simulation
        is fed exactly what it always was."""
        c = self.config
        n_inst = c.frames if limit is None else (limit if c.frames is None else min(limit, c.frames))
        step = c.step_s
        idx = 0
        while n_inst is None or idx < n_inst:
            yield idx * step, (step if idx > 0 else 0.0)
            idx += 1

    @staticmethod
    def _given_instants(times: list[float], film: _FilmState) -> Iterator[tuple[float, float]]:
        for t in times:
            prev = 0.0 if film.t is None else film.t
            if t < prev:
                # Two iterators of one world consumed out of order.
                raise ValueError(f"frames: this world was already filmed up to t={prev}, got t={t}")
            yield t, t - prev

    def _run(self, instants: Iterator[tuple[float, float]], film: _FilmState) -> Iterator[Frame]:
        c = self.config
        sim = self.sim
        n_cam = len(self.cameras)
        amp = self.scene.shake_px if c.shake else 0.0
        for t, dt in instants:
            idx = film.instants
            film.instants += 1
            night = self.is_night(t)
            self._advance(dt, night, film)
            film.t = t
            self._apply_events(t, film)
            age = self.age_days(t)
            if film.weights is None or abs(age - film.last_age) > 0.01:
                sim.length_m = np.array([b.length_m(age) for b in self.birds])
                film.weights = np.array([b.weight_g(age) for b in self.birds], np.float32)
                film.last_age = age
            weights = film.weights
            brightness = 1.0 + 0.06 * math.sin(t / 37.0) * c.randomize
            film.shake = film.shake * 0.7 + self._fx_rng.normal(0, amp * 0.6, (n_cam, 2))
            present = sim.present.copy()
            vis = sim.visible_mask()
            poses = sim.poses()
            view = BirdView(
                index=np.nonzero(vis)[0],
                bird_id=np.nonzero(vis)[0] + 1,
                pos=sim.pos[vis],
                heading=sim.heading[vis],
                length_m=sim.length_m[vis],
                pose=poses[vis],
            )
            for ci, rend in enumerate(self.renderers):
                tamper = self.tamper_at(t, ci)
                prev = film.frozen[ci]
                if tamper == "frozen" and prev is not None:
                    yield Frame(prev.image.copy(), idx, t, self.start_epoch + t, prev.is_night, prev.camera_id,
                                prev.gt, "frozen", age)
                    continue
                sh = np.clip(np.round(film.shake[ci]), -6, 6).astype(int)
                out = rend.render(view, night, (int(sh[0]), int(sh[1])), brightness, self.start_epoch + t, idx)
                gt = self._gt(present, view, out, poses, weights)
                image = out.image
                if tamper is not None and tamper != "frozen":
                    image, gt = self._tamper(tamper, image, gt, idx, ci)
                fr = Frame(image, idx, t, self.start_epoch + t, night, self.cameras[ci].camera_id, gt, tamper, age)
                film.frozen[ci] = fr
                yield fr

    def _advance(self, dt: float, night: bool, film: _FilmState) -> None:
        """Move the behaviour on by dt (dt 0: only day/night), keeping sick birds put across long gaps."""
        sim = self.sim
        sick = (sim.health == "sick") & sim.present
        keep = sim.pos[sick].copy()
        sim.advance(dt, night)
        if self.config.sick_stay_put and dt > SICK_STAY_GAP_S and sick.any():
            # A sick broiler sits most of the day: across a gap it is found near the spot where it sat
            # down, shuffled a little (around that spot, so it does not drift off over many gaps), not
            # wherever the behaviour's jump over the gap put it (or away).
            shuffle = self._fx_rng.normal(0.0, 1.0, keep.shape) * 0.3 * sim.length_m[sick][:, None]
            for k, kept, dxy in zip(np.nonzero(sick)[0].tolist(), keep, shuffle, strict=True):
                spot = film.sick_spots.setdefault(k, kept)
                self._sit(k, spot + dxy)
        for k in [k for k in film.sick_spots if sim.health[k] != "sick"]:
            del film.sick_spots[k]  # recovered or dead: a later sickness sits down somewhere new

    def _sit(self, i: int, spot: np.ndarray) -> None:
        """Bird i sits down at spot (a point in the arena) and stays there for a rest bout."""
        sim = self.sim
        sim.pos[i] = spot
        sim.vel[i] = 0
        sim.target[i] = spot
        sim.face[i] = np.nan
        if sim.state[i] != REST:
            sim.state[i] = REST
            sim.until[i] = sim.t + REST_BOUT_S

    def _apply_events(self, t: float, film: _FilmState) -> None:
        """Scripted health changes and removals due by t."""
        sim = self.sim
        cam = self.config.incident_camera
        for i, b in enumerate(self.birds):
            while film.applied_health[i] < len(b.health) and b.health[film.applied_health[i]][0] <= t:
                state = b.health[film.applied_health[i]][1]
                sim.set_health(i, state)
                if cam is not None and state in ("sick", "dead"):
                    # Where a camera sees it: a death out of every view is only "unseen" mortality.
                    film.incidents += 1
                    spot = self._spot_in_view(cam, film.incidents)
                    if state == "dead":
                        sim.pos[i] = spot  # dead birds never move again
                    else:
                        self._sit(i, spot)  # also brings back a bird that was away when it fell sick
                        film.sick_spots[i] = spot
                film.applied_health[i] += 1
            if not film.removed[i] and b.removed_at_s is not None and b.removed_at_s <= t:
                sim.remove(i)
                film.removed[i] = True

    def _spot_in_view(self, cam: int, k: int) -> np.ndarray:
        """A floor point well inside camera cam's view; the k-th incident gets its own spot."""
        w, h = self.config.size_wh
        rng = np.random.default_rng([self.config.seed, 0xDEAD, k])
        uv = np.array([[rng.uniform(0.3, 0.7) * w, rng.uniform(0.5, 0.8) * h]], np.float64)
        return np.asarray(self.cameras[cam].ground_of(uv), np.float64).reshape(-1)[:2]

    def _gt(self, present: np.ndarray, view: BirdView, out: RenderOut, poses: np.ndarray,
            weights: np.ndarray) -> FrameGT:
        ids = np.nonzero(present)[0]
        n = len(ids)
        pos_of = {int(b): j for j, b in enumerate(view.index)}
        xyxy = np.zeros((n, 4), np.float32)
        vxyxy = np.zeros((n, 4), np.float32)
        visibility = np.zeros(n, np.float32)
        in_view = np.zeros(n, bool)
        pose = np.full(n, "", dtype=object)
        for r, i in enumerate(ids):
            j = pos_of.get(int(i))
            if j is None or not out.drawn[j]:
                continue
            xyxy[r] = out.xyxy[j]
            vxyxy[r] = out.visible_xyxy[j]
            visibility[r] = out.visibility[j]
            in_view[r] = True
            pose[r] = poses[i]
        state = self.sim.health[ids].astype(object)
        return FrameGT(
            bird_id=(ids + 1).astype(np.int64),
            xyxy=xyxy,
            visible_xyxy=vxyxy,
            visibility=visibility,
            state=state,
            lying=np.asarray(state == "dead", bool),
            in_view=in_view,
            pose=pose,
            weight_g=weights[ids],
        )

    def _tamper(self, kind: str, image: np.ndarray, gt: FrameGT, idx: int, ci: int) -> tuple[np.ndarray, FrameGT]:
        import cv2

        h, w = image.shape[:2]
        rng = np.random.default_rng([self.config.seed, 0x7A, idx, ci])
        if kind == "covered":
            # Something right on the lens: near black with a blurry, slightly lit blob.
            blob: np.ndarray = np.zeros((h, w), np.float32)
            cv2.circle(blob, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(w * 0.3), 1.0, -1)
            blob = cv2.GaussianBlur(blob, (0, 0), w / 12)
            base = 6 + 20 * blob + rng.normal(0, 2.5, (h, w))
            img: np.ndarray = cv2.cvtColor(np.clip(base, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            gone = gt.select(np.ones(len(gt), bool))
            gone.visibility = np.zeros_like(gt.visibility)
            gone.in_view = np.zeros_like(gt.in_view)
            gone.xyxy = np.zeros_like(gt.xyxy)
            gone.visible_xyxy = np.zeros_like(gt.visible_xyxy)
            return img, gone
        if kind == "dark":
            dim = cv2.convertScaleAbs(image, alpha=0.08, beta=0)
            noise = rng.normal(0, 2.0, dim.shape)
            return np.clip(dim + noise, 0, 255).astype(np.uint8), gt
        if kind == "moved":
            # The camera was turned: a fixed shift and rotation for the whole interval.
            mrng = np.random.default_rng([self.config.seed, 0x30E, ci])
            ang = float(mrng.uniform(6, 15) * mrng.choice([-1, 1]))
            tx, ty = float(mrng.uniform(0.15, 0.3) * w * mrng.choice([-1, 1])), float(mrng.uniform(-0.15, 0.15) * h)
            mat = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0), np.float64)
            mat[:, 2] += np.array([tx, ty])
            img = cv2.warpAffine(image, mat, (w, h), borderMode=cv2.BORDER_REFLECT)
            moved = gt.select(np.ones(len(gt), bool))
            moved.xyxy = _warp_boxes(gt.xyxy, mat, (w, h))
            moved.visible_xyxy = _warp_boxes(gt.visible_xyxy, mat, (w, h))
            inside = (moved.xyxy[:, 2] - moved.xyxy[:, 0] > 1) & (moved.xyxy[:, 3] - moved.xyxy[:, 1] > 1)
            moved.in_view = gt.in_view & inside
            moved.visibility = np.where(moved.in_view, gt.visibility, 0).astype(np.float32)
            return img, moved
        raise ValueError(f"tamper kind {kind!r}")

    # ------------------------------------------------------------------ metadata

    def birds_json(self) -> dict[str, Any]:
        c = self.config
        end_day = self.age_days(c.duration_s)
        return {
            "seed": c.seed,
            "appearance_seed": c.bird_seed,
            "flock": c.flock,
            "scene": self.scene_kind,
            "camera": self.camera_kind,
            "start_day": c.start_day,
            "start_epoch": self.start_epoch,
            "birds": [b.to_json(c.start_day, end_day) for b in self.birds],
        }


def _warp_boxes(xyxy: np.ndarray, mat: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    if len(xyxy) == 0:
        return xyxy.copy()
    x0, y0, x1, y1 = xyxy.T
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)
    pts = corners @ mat[:, :2].T + mat[:, 2]
    lo = pts.min(axis=1)
    hi = pts.max(axis=1)
    w, h = size_wh
    out = np.concatenate([np.clip(lo, 0, [w, h]), np.clip(hi, 0, [w, h])], axis=1).astype(np.float32)
    empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
    out[empty] = 0
    return out
