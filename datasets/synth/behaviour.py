"""How the birds move: a vectorised state machine with momentum, crowding at feeders, resting
clusters, trips out of view, lethargy when sick and stillness when dead."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from datasets.synth.birds import Bird
from datasets.synth.scene import Scene

WANDER, FEED, DRINK, REST, LEAVING, AWAY = range(6)
STATE_NAMES = ("wander", "feed", "drink", "rest", "leaving", "away")
# Stationary share of time and mean bout length (s) of the active states, by day and by night.
_SHARE_DAY = np.array([0.25, 0.42, 0.10, 0.23])
_SHARE_NIGHT = np.array([0.10, 0.12, 0.05, 0.73])
_SHARE_SICK = np.array([0.12, 0.08, 0.05, 0.75])
_MEAN_S = np.array([30.0, 50.0, 15.0, 70.0])
SUBSTEP_S = 0.25
JUMP_S = 3.0


@dataclass
class Params:
    leave_rate_s: float
    absence_s: tuple[float, float]
    arena: tuple[float, float, float, float]


class FlockSim:
    """State of every bird in world coordinates (metres). Dead birds never move; removed birds vanish."""

    def __init__(self, birds: list[Bird], scene: Scene, params: Params, rng: np.random.Generator,
                 age_days: float) -> None:
        self.birds = birds
        self.scene = scene
        self.p = params
        self.rng = rng
        n = len(birds)
        self.n = n
        self.t = 0.0
        self.pos = np.zeros((n, 2))
        self.vel = np.zeros((n, 2))
        self.heading = rng.uniform(-math.pi, math.pi, n)
        self.state = np.zeros(n, np.int64)
        self.until = np.zeros(n)
        self.target = np.zeros((n, 2))
        self.face = np.full((n, 2), np.nan)  # point a feeding bird looks at
        self.speed = rng.uniform(0.18, 0.34, n)
        self.moving = np.ones(n, bool)
        self.peck = np.zeros(n, bool)
        self.present = np.ones(n, bool)
        self.health = np.array(["ok"] * n, dtype=object)
        self.length_m = np.array([b.length_m(age_days) for b in birds])
        ox = np.array(
            [(o[0], o[1], o[2]) for pr in scene.props for o in pr.obstacle], np.float64
        ).reshape(-1, 3)
        self.obstacles = ox
        self.night = False
        for i in range(n):
            self._init_bird(i)

    # ------------------------------------------------------------------ targets

    def _random_view_point(self) -> np.ndarray:
        x0, y0, x1, y1 = self.p.arena
        import cv2

        for _ in range(50):
            q = self.rng.uniform((x0, y0), (x1, y1))
            if self.rng.random() < 0.2:
                return q
            for cs in self.scene.cams:
                if cv2.pointPolygonTest(cs.view_poly.astype(np.float32), (float(q[0]), float(q[1])), False) >= 0:
                    return q
        return q

    def _target_for(self, i: int, state: int) -> None:
        self.face[i] = np.nan
        if state == WANDER:
            self.target[i] = self._random_view_point()
        elif state in (FEED, DRINK):
            pool = self.scene.feeders if state == FEED else self.scene.drinkers
            if not pool:
                self.target[i] = self._random_view_point()
                return
            pr = pool[int(self.rng.integers(len(pool)))]
            a = self.rng.uniform(-math.pi, math.pi)
            r = pr.attract_r + self.length_m[i] * self.rng.uniform(0.15, 0.4)
            c = np.asarray(pr.centre)
            self.target[i] = c + r * np.array([math.cos(a), math.sin(a)])
            self.face[i] = c
        elif state == REST and self.health[i] == "sick":
            # A sick bird does not walk to the flock's resting place: it sits down where it is.
            self.target[i] = self.pos[i] + self.rng.normal(0, 0.05, 2)
        elif state == REST:
            spots = self.scene.rest_spots
            c = spots[int(self.rng.integers(len(spots)))] if len(spots) else self._random_view_point()
            spread = 0.15 if self.night else 0.22
            self.target[i] = c + self.rng.normal(0, spread, 2)
        elif state == LEAVING:
            x0, y0, x1, y1 = self.p.arena
            px, py = self.pos[i]
            d = np.array([px - x0, x1 - px, py - y0, y1 - py])
            side = int(np.argmin(d + self.rng.uniform(0, 1.5, 4)))
            out = 0.8
            self.target[i] = [(x0 - out, py), (x1 + out, py), (px, y0 - out), (px, y1 + out)][side]

    def _shares(self, i: int) -> np.ndarray:
        if self.health[i] == "sick":
            return _SHARE_SICK
        return _SHARE_NIGHT if self.night else _SHARE_DAY

    def _pick_state(self, i: int) -> int:
        w = self._shares(i) / _MEAN_S
        w = w / w.sum()
        return int(self.rng.choice(4, p=w))

    def _enter_state(self, i: int, state: int) -> None:
        self.state[i] = state
        mean = _MEAN_S[state] if state < 4 else 1e9
        self.until[i] = self.t + self.rng.exponential(mean)
        self._target_for(i, state)

    def _init_bird(self, i: int) -> None:
        shares = self._shares(i)
        state = int(self.rng.choice(4, p=shares / shares.sum()))
        self._enter_state(i, state)
        self.pos[i] = self.target[i] + self.rng.normal(0, 0.05, 2)
        self.heading[i] = self.rng.uniform(-math.pi, math.pi)
        # Start some birds away, as in the long run.
        if self.rng.random() < self._p_away(False):
            self.state[i] = AWAY
            self.until[i] = self.t + self.rng.uniform(0, 1) * self._absence()

    def _absence(self) -> float:
        lo, hi = self.p.absence_s
        return float(math.exp(self.rng.uniform(math.log(lo), math.log(hi))))

    def _reenter(self, i: int) -> None:
        x0, y0, x1, y1 = self.p.arena
        side = int(self.rng.integers(4))
        u = self.rng.uniform(0.1, 0.9)
        out = 0.6
        self.pos[i] = [(x0 - out, y0 + u * (y1 - y0)), (x1 + out, y0 + u * (y1 - y0)),
                       (x0 + u * (x1 - x0), y0 - out), (x0 + u * (x1 - x0), y1 + out)][side]
        self.vel[i] = 0
        self._enter_state(i, WANDER)
        # Walk in towards the middle of the view.
        self.target[i] = self._random_view_point()

    # ------------------------------------------------------------------ public

    def set_health(self, i: int, state: str) -> None:
        if self.health[i] == state:
            return
        self.health[i] = state
        if state == "dead":
            self.vel[i] = 0
            if self.state[i] in (AWAY, LEAVING):
                # A bird dies where it is seen: bring it back inside the arena.
                self._reenter(i)
                self.pos[i] = self._random_view_point()
        elif state == "sick" and self.state[i] not in (AWAY, LEAVING):
            self._enter_state(i, REST)
        elif state == "ok" and self.state[i] not in (AWAY, LEAVING):
            self._enter_state(i, self._pick_state(i))

    def remove(self, i: int) -> None:
        self.present[i] = False

    def visible_mask(self) -> np.ndarray:
        """Birds physically in the arena (not away, not removed)."""
        return self.present & (self.state != AWAY)

    def advance(self, dt: float, night: bool) -> None:
        """Move the simulation forward by dt seconds (large dt: resample, then settle)."""
        if night != self.night:
            self.night = night
        if dt <= 0:
            return
        if dt > JUMP_S:
            self._jump(dt)
            for _ in range(4):
                self._step(SUBSTEP_S)
            return
        n_sub = max(1, math.ceil(dt / SUBSTEP_S))
        for _ in range(n_sub):
            self._step(dt / n_sub)

    def _p_away(self, sick: bool) -> float:
        """Long-run share of time a bird spends out of the arena (trips are rate * mean absence)."""
        lo, hi = self.p.absence_s
        mean_abs = (hi - lo) / math.log(hi / lo) if hi > lo else lo
        x = self.p.leave_rate_s * (0.2 if sick else 1.0) * mean_abs
        return x / (1 + x)

    def _jump(self, dt: float) -> None:
        """A step much longer than a behaviour bout: draw each bird from the long-run distribution."""
        alive = self.health != "dead"
        for i in range(self.n):
            if not self.present[i] or not alive[i]:
                continue
            sick = self.health[i] == "sick"
            if self.rng.random() < self._p_away(sick):
                self.state[i] = AWAY
                self.until[i] = self.t + dt + self.rng.random() * self._absence()
                continue
            if self.state[i] in (AWAY, LEAVING):
                self._reenter(i)
                self._enter_state(i, self._pick_state(i))
                self.pos[i] = self.target[i] + self.rng.normal(0, 0.05, 2)
                continue
            # Sick birds are lethargic: they rarely change what they are doing.
            if self.rng.random() < 1 - math.exp(-dt / (40.0 if not sick else 400.0)):
                self._enter_state(i, self._pick_state(i))
                self.pos[i] = self.target[i] + self.rng.normal(0, 0.05, 2)
                self.heading[i] = self.rng.uniform(-math.pi, math.pi)
        self.t += dt

    def _step(self, dt: float) -> None:
        rng = self.rng
        n = self.n
        self.t += dt
        alive = (self.health != "dead") & self.present
        sick = self.health == "sick"
        # Returns from away, state changes, departures.
        for i in np.nonzero(alive & (self.state == AWAY) & (self.until <= self.t))[0]:
            self._reenter(int(i))
        active = alive & (self.state < 4)
        for i in np.nonzero(active & (self.until <= self.t))[0]:
            self._enter_state(int(i), self._pick_state(int(i)))
        lr = self.p.leave_rate_s * np.where(sick, 0.2, 1.0)
        go = active & (rng.random(n) < lr * dt)
        for i in np.nonzero(go)[0]:
            self._enter_state(int(i), LEAVING)
        leaving = alive & (self.state == LEAVING)
        # Leaving birds that are out of the arena become away.
        x0, y0, x1, y1 = self.p.arena
        outside = (self.pos[:, 0] < x0 - 0.3) | (self.pos[:, 0] > x1 + 0.3) | (self.pos[:, 1] < y0 - 0.3) | (
            self.pos[:, 1] > y1 + 0.3
        )
        for i in np.nonzero(leaving & outside)[0]:
            self.state[i] = AWAY
            self.until[i] = self.t + self._absence()
        # Stop-and-go walking and pecking.
        self.moving ^= rng.random(n) < dt / np.where(self.moving, 6.0, 2.5)
        self.peck ^= rng.random(n) < dt / np.where(self.peck, 1.2, 1.8)
        # Desired velocity towards the target.
        moving_bird = alive & (self.state != AWAY)
        to = self.target - self.pos
        dist = np.hypot(to[:, 0], to[:, 1]) + 1e-9
        speed = self.speed * np.where(sick, 0.25, 1.0)
        speed = np.where(self.state == LEAVING, speed * 1.6, speed)
        speed = np.where((self.state == WANDER) & ~self.moving, 0.0, speed)
        arrive = np.clip(dist / 0.3, 0, 1)
        desired = to / dist[:, None] * (speed * arrive)[:, None]
        # Wandering birds pick a new waypoint when they arrive.
        for i in np.nonzero(moving_bird & (self.state == WANDER) & (dist < 0.15))[0]:
            self.target[i] = self._random_view_point()
        k = min(1.0, dt / 0.6)
        self.vel += (desired - self.vel) * k + rng.normal(0, 0.04, (n, 2)) * math.sqrt(dt) * moving_bird[:, None]
        self.vel[~moving_bird] = 0
        self.pos += self.vel * dt
        self._separate(moving_bird)
        # Keep non-leaving birds in the arena.
        inside = moving_bird & (self.state != LEAVING) & (self.state != AWAY)
        fresh = dist > 2.0  # birds walking in from an edge may still be outside
        clamp = inside & ~fresh
        self.pos[clamp, 0] = np.clip(self.pos[clamp, 0], x0, x1)
        self.pos[clamp, 1] = np.clip(self.pos[clamp, 1], y0, y1)
        # Heading follows motion; feeding birds face the feeder.
        sp = np.hypot(self.vel[:, 0], self.vel[:, 1])
        want = np.where(sp > 0.04, np.arctan2(self.vel[:, 1], self.vel[:, 0]), self.heading)
        has_face = np.isfinite(self.face[:, 0]) & (dist < 0.3)
        fx = np.where(has_face, self.face[:, 0] - self.pos[:, 0], 0.0)
        fy = np.where(has_face, self.face[:, 1] - self.pos[:, 1], 0.0)
        want = np.where(has_face, np.arctan2(fy, fx), want)
        diff = (want - self.heading + math.pi) % (2 * math.pi) - math.pi
        turn = min(1.0, dt / 0.4)
        jitter = rng.normal(0, 0.25, n) * math.sqrt(dt) * (sp < 0.04)
        self.heading = np.where(moving_bird, self.heading + diff * turn + jitter, self.heading)

    def _separate(self, movable: np.ndarray) -> None:
        """Push overlapping birds apart (position-based); birds may overlap a little, as they do."""
        idx = np.nonzero(self.present & (self.state != AWAY))[0]
        if idx.size < 2:
            return
        p = self.pos[idx]
        ln = self.length_m[idx]
        d = p[:, None, :] - p[None, :, :]
        dist = np.hypot(d[..., 0], d[..., 1]) + 1e-9
        # Resting and feeding birds pack closer than walking ones.
        st = self.state[idx]
        packed = (st == REST) | (st == FEED)
        factor = np.where(packed[:, None] & packed[None, :], 0.2, 0.34)
        huddle = st == REST
        factor = np.where(huddle[:, None] & huddle[None, :], 0.17, factor)
        dmin = factor * (ln[:, None] + ln[None, :])
        over = np.clip(dmin - dist, 0, None)
        np.fill_diagonal(over, 0)
        mov = movable[idx].astype(np.float64)
        # Dead birds are immovable: the other bird takes the whole push.
        share = np.where(mov[None, :] > 0, 0.5, 1.0)
        push = (d / dist[..., None]) * (over * share)[..., None]
        delta = push.sum(axis=1) * mov[:, None] * 0.8
        self.pos[idx] += delta
        if len(self.obstacles):
            o = self.obstacles
            dd = self.pos[:, None, :] - o[None, :, :2]
            dist_o = np.hypot(dd[..., 0], dd[..., 1]) + 1e-9
            need = o[None, :, 2] + 0.25 * self.length_m[:, None]
            over_o = np.clip(need - dist_o, 0, None) * movable[:, None]
            self.pos += ((dd / dist_o[..., None]) * over_o[..., None]).sum(axis=1)

    def poses(self) -> np.ndarray:
        """Pose name per bird for the sprite bank."""
        out = np.full(self.n, "stand", dtype=object)
        sp = np.hypot(self.vel[:, 0], self.vel[:, 1])
        feeding = ((self.state == FEED) | (self.state == DRINK)) & self.peck
        foraging = (self.state == WANDER) & (sp < 0.04) & self.peck
        out[feeding | foraging] = "peck"
        resting = (self.state == REST) & (sp < 0.05)
        out[resting] = "sit"
        # Sick birds stay hunched and fluffed up, even when they shuffle along.
        out[self.health == "sick"] = "sick"
        out[self.health == "dead"] = "dead"
        return out
