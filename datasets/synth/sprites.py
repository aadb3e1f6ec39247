"""Bird sprites: a bird built from ellipsoids, projected for a view direction, cached per bird and pose.

A canonical sprite (bird, pose, yaw bin, elevation bin) is drawn once at CANON_PX body length; the
renderer asks for it at a quantised pixel size, which is a cached resize. Sprites of the mirrored yaw are
flipped, not redrawn (birds are left-right symmetric).
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from datasets.synth.birds import BirdTraits

POSES = ("stand", "peck", "sit", "sick", "dead")
YAW_BINS = 16
CANON_PX = 96.0
SIZE_STEP = 1.05  # geometric size bins: 5 % steps


@dataclass(frozen=True)
class Sprite:
    """Ready-to-composite sprite. out = (frame * keep >> 8) + premul over the sprite rectangle.

    anchor_xy: pixel of the sprite where the bird's ground point lies.
    box: tight (x0, y0, x1, y1) of the bird body (alpha >= 0.5) in sprite pixels.
    """

    premul: np.ndarray  # (h, w, 3) uint8
    keep: np.ndarray  # (h, w, 1) uint16, 0..256 (broadcast over the channels)
    mask: np.ndarray  # (h, w) bool, body pixels (alpha >= 0.5)
    area: int
    anchor_xy: tuple[int, int]
    box: tuple[int, int, int, int]


# part: (centre xyz, semi-axes abc, pitch deg (about y, nose down positive), colour role, patterned)
_Part = tuple[str, tuple[float, float, float], tuple[float, float, float], float, str, bool]


def _parts(pose: str, comb: float) -> list[_Part]:
    c = 0.5 + 0.7 * comb
    if pose == "dead":
        # Lying on its side: body flattened, neck stretched on the ground, legs out, a wing spread.
        return [
            ("body", (0.0, 0.0, 0.11), (0.31, 0.21, 0.11), 0, "primary", True),
            ("wing", (-0.02, 0.17, 0.08), (0.24, 0.14, 0.03), 0, "wing", True),
            ("tail", (-0.30, 0.03, 0.08), (0.12, 0.12, 0.05), 0, "tail", True),
            ("neck", (0.28, -0.02, 0.07), (0.13, 0.07, 0.06), 0, "neck", True),
            ("head", (0.43, -0.05, 0.06), (0.08, 0.07, 0.06), 0, "neck", False),
            ("comb", (0.44, -0.11, 0.06), (0.06 * c, 0.03 * c, 0.03), 0, "comb", False),
            ("beak", (0.51, -0.05, 0.06), (0.04, 0.02, 0.02), 0, "beak", False),
            ("leg", (0.06, -0.24, 0.09), (0.03, 0.12, 0.025), 0, "leg", False),
            ("leg", (-0.04, -0.24, 0.10), (0.03, 0.12, 0.025), 0, "leg", False),
        ]
    if pose in ("sit", "sick"):
        sick = pose == "sick"
        fluff = 1.12 if sick else 1.0
        head = (0.17, 0.0, 0.30) if sick else (0.25, 0.0, 0.45)
        return [
            ("body", (0.0, 0.0, 0.17), (0.30 * fluff, 0.20 * fluff, 0.16 * fluff), -5, "primary", True),
            ("wing", (-0.03, 0.14, 0.21), (0.22, 0.07, 0.09), -5, "wing", True),
            ("wing", (-0.03, -0.14, 0.21), (0.22, 0.07, 0.09), -5, "wing", True),
            ("tail", (-0.27, 0.0, 0.30 if not sick else 0.20), (0.11, 0.08, 0.12), -35, "tail", True),
            ("neck", (0.19, 0.0, 0.33 if not sick else 0.25), (0.09, 0.08, 0.11), 0, "neck", True),
            ("head", head, (0.08, 0.07, 0.075), 0, "neck", False),
            ("comb", (head[0], 0.0, head[2] + 0.08), (0.07 * c, 0.02, 0.035 * c), 0, "comb", False),
            ("beak", (head[0] + 0.09, 0.0, head[2] - 0.01), (0.04, 0.02, 0.02), 0, "beak", False),
        ]
    peck = pose == "peck"
    head = (0.38, 0.0, 0.10) if peck else (0.27, 0.0, 0.70)
    neck = (0.30, 0.0, 0.28) if peck else (0.21, 0.0, 0.55)
    tilt = 18 if peck else -8
    parts: list[_Part] = [
        ("leg", (0.03, 0.06, 0.11), (0.025, 0.025, 0.12), 0, "leg", False),
        ("leg", (0.03, -0.06, 0.11), (0.025, 0.025, 0.12), 0, "leg", False),
        ("body", (0.0, 0.0, 0.37), (0.30, 0.19, 0.16), tilt, "primary", True),
        ("wing", (-0.03, 0.14, 0.40), (0.22, 0.06, 0.09), tilt, "wing", True),
        ("wing", (-0.03, -0.14, 0.40), (0.22, 0.06, 0.09), tilt, "wing", True),
        ("tail", (-0.27, 0.0, 0.52 if not peck else 0.58), (0.11, 0.08, 0.14), -40, "tail", True),
        ("neck", neck, (0.09, 0.08, 0.15), 30 if peck else -10, "neck", True),
        ("head", head, (0.08, 0.07, 0.08), 0, "neck", False),
        ("comb", (head[0] - 0.01, 0.0, head[2] + 0.085), (0.07 * c, 0.02, 0.04 * c), 0, "comb", False),
        ("wattle", (head[0] + 0.04, 0.0, head[2] - 0.07), (0.025, 0.02, 0.035 * c), 0, "comb", False),
        ("beak", (head[0] + 0.09, 0.0, head[2] - 0.01), (0.045, 0.02, 0.02), 0, "beak", False),
    ]
    return parts


def _rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def _role_colours(t: BirdTraits) -> dict[str, np.ndarray]:
    p = np.asarray(t.primary_bgr, np.float32)
    s = np.asarray(t.secondary_bgr, np.float32)
    if t.pattern == "two-tone":
        neck, tail, wing = s, s, p * 0.92
    else:
        neck, tail, wing = p, p * 0.85 + s * 0.15, p * 0.9
    return {
        "primary": p,
        "wing": wing,
        "tail": tail,
        "neck": neck,
        "comb": np.asarray(t.comb_bgr, np.float32),
        "beak": np.asarray((70, 175, 210), np.float32),
        "leg": np.asarray(t.leg_bgr, np.float32),
    }


_GRID: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_GRAIN: dict[int, np.ndarray] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size not in _GRID:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        _GRID[size] = (yy, xx)
    return _GRID[size]


def _grain(size: int) -> np.ndarray:
    """Four fixed feather-grain fields (deterministic, shared by all sprites of this size)."""
    if size not in _GRAIN:
        _GRAIN[size] = (1.0 + np.random.default_rng(size).normal(0, 0.05, (4, size, size))).astype(np.float32)
    return _GRAIN[size]


def render_canonical(
    traits: BirdTraits, pose: str, phi: float, elev: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Draw a bird of body length CANON_PX seen along a view direction.

    phi: azimuth of the view ray relative to the bird's heading (radians); elev: ray elevation above
    the ground (radians, pi/2 = straight down). Returns (bgr float32, alpha float32 0..1,
    shadow float32 0..1, anchor xy) where anchor is the ground point under the bird.
    """
    import cv2

    if pose not in POSES:
        raise ValueError(f"pose={pose!r}: valid poses are {', '.join(POSES)}")
    ce, se = math.cos(elev), math.sin(elev)
    vd = np.array([ce * math.cos(phi), ce * math.sin(phi), -se])
    ir = np.array([math.sin(phi), -math.cos(phi), 0.0])
    idn = np.cross(vd, ir)
    proj = np.stack([ir, idn]) * CANON_PX  # (2, 3): bird frame (units of body length) -> pixels
    size = int(CANON_PX * 1.5)
    # Place the ground point so the bird's projected extent fits: up is -v in the image.
    anchor = (size / 2.0, size / 2.0 + 0.3 * CANON_PX * ce)
    parts = _parts(pose, traits.comb_size)
    colours = _role_colours(traits)
    order = sorted(range(len(parts)), key=lambda k: -float(np.dot(parts[k][1], vd)))
    label = np.zeros((size, size), np.uint8)
    role_names = ["none"]
    pat_roles: set[int] = set()
    shift = 4
    sc = 1 << shift
    for k in order:
        _, centre, axes, pitch, role, patterned = parts[k]
        rot = _rot_y(pitch)
        a_mat = rot @ np.diag(np.square(axes)) @ rot.T
        cov = proj @ a_mat @ proj.T
        evals, evecs = np.linalg.eigh(cov)
        ax = np.sqrt(np.maximum(evals, 1e-6))
        ang = math.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
        cx, cy = proj @ np.asarray(centre)
        role_names.append(role)
        idx = len(role_names) - 1
        if patterned:
            pat_roles.add(idx)
        cv2.ellipse(
            label,
            (round((anchor[0] + cx) * sc), round((anchor[1] + cy) * sc)),
            (max(1, round(ax[1] * sc)), max(1, round(ax[0] * sc))),
            ang,
            0,
            360,
            idx,
            -1,
            cv2.LINE_8,
            shift,
        )
    lut = np.zeros((len(role_names), 3), np.float32)
    for i, r in enumerate(role_names[1:], 1):
        lut[i] = colours[r]
    bgr = lut[label]
    body = label > 0
    # Patterns in image space, laid along the projected body axis so stripes cross the body.
    pat_mask = np.isin(label, list(pat_roles)) if pat_roles else np.zeros_like(body)
    rng = np.random.default_rng(seed)
    sec = np.asarray(traits.secondary_bgr, np.float32)
    if traits.pattern == "barred":
        axis = proj @ np.array([1.0, 0.0, 0.3])
        axis = axis / (np.linalg.norm(axis) + 1e-6)
        yy, xx = _grid(size)
        period = traits.pattern_period * CANON_PX * 0.6
        stripes = np.sin((xx * axis[0] + yy * axis[1]) * (2 * math.pi / period)) > 0.25
        m = pat_mask & stripes
        bgr[m] = bgr[m] * 0.35 + sec * 0.65
    elif traits.pattern == "speckled":
        # Thresholded smooth noise: blotchy spots about pattern_period apart.
        cells = max(4, int(size / (traits.pattern_period * CANON_PX * 0.45)))
        field = cv2.resize(rng.random((cells, cells), dtype=np.float32), (size, size),
                           interpolation=cv2.INTER_CUBIC)
        m = pat_mask & (field > 0.68)
        bgr[m] = bgr[m] * 0.25 + sec * 0.75
    # Feather texture and rounded shading: brighter away from part boundaries, darker underneath.
    edges = np.zeros((size, size), np.uint8)
    edges[:, 1:] |= label[:, 1:] != label[:, :-1]
    edges[1:, :] |= label[1:, :] != label[:-1, :]
    dist = cv2.distanceTransform((1 - edges).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.72 + 0.38 * np.clip(dist / (0.09 * CANON_PX), 0, 1)
    shade *= _grain(size)[int(rng.integers(4))]
    bgr *= shade[:, :, None]
    np.clip(bgr, 0, 255, out=bgr)
    alpha: np.ndarray = cv2.GaussianBlur(body.astype(np.float32), (3, 3), 0)
    bgr = np.asarray(cv2.GaussianBlur(bgr, (3, 3), 0))
    # Soft contact shadow: a blurred ground ellipse under the bird, offset towards the lower right.
    # Drawn at quarter resolution: it is blurred anyway.
    q = 4
    shadow: np.ndarray = np.zeros((size // q, size // q), np.float32)
    g_axes = np.diag([0.36**2, 0.26**2, 1e-6])
    cov = proj @ g_axes @ proj.T
    evals, evecs = np.linalg.eigh(cov)
    ax = np.sqrt(np.maximum(evals, 1e-6)) / q
    ang = math.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
    off = 0.08 * CANON_PX
    cv2.ellipse(
        shadow,
        (int((anchor[0] + off) / q), int((anchor[1] + off * se) / q)),
        (max(1, int(ax[1])), max(1, int(ax[0]))),
        ang,
        0,
        360,
        1.0,
        -1,
    )
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.06 * CANON_PX / q) * 0.8
    shadow = cv2.resize(shadow, (size, size), interpolation=cv2.INTER_LINEAR)
    return bgr, alpha, shadow, anchor


def _finish(
    bgr: np.ndarray, alpha: np.ndarray, shadow: np.ndarray, anchor: tuple[float, float], shadow_k: float
) -> Sprite:
    a = alpha[:, :, None]
    premul = np.clip(bgr * a + 0.5, 0, 255).astype(np.uint8)
    keep = np.clip(256.0 * (1.0 - a) * (1.0 - shadow_k * shadow[:, :, None]) + 0.5, 0, 256).astype(np.uint16)
    mask = alpha >= 0.5
    # Crop to what changes the frame (bird or shadow).
    touched = (alpha > 0.004) | (shadow * shadow_k > 0.004)
    ys, xs = np.nonzero(touched)
    if ys.size == 0:
        ys, xs = np.array([0]), np.array([0])
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    mask = mask[y0:y1, x0:x1]
    my, mx = np.nonzero(mask)
    box = (int(mx.min()), int(my.min()), int(mx.max()) + 1, int(my.max()) + 1) if my.size else (0, 0, 1, 1)
    return Sprite(
        premul=np.ascontiguousarray(premul[y0:y1, x0:x1]),
        keep=np.ascontiguousarray(keep[y0:y1, x0:x1]),
        mask=np.ascontiguousarray(mask),
        area=int(max(my.size, 1)),
        anchor_xy=(round(anchor[0] - x0), round(anchor[1] - y0)),
        box=box,
    )


_Canon = tuple[np.ndarray, np.ndarray, tuple[float, float]]  # BGRA uint8, shadow uint8, anchor


def _pack(bgr: np.ndarray, alpha: np.ndarray, shadow: np.ndarray, anchor: tuple[float, float]) -> _Canon:
    """Compact canonical drawing: 8-bit, cropped to the pixels the bird or its shadow touch."""
    touched = (alpha > 0.004) | (shadow > 0.004)
    ys, xs = np.nonzero(touched)
    if ys.size == 0:
        ys, xs = np.array([0]), np.array([0])
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    bgra = np.concatenate([bgr[y0:y1, x0:x1], alpha[y0:y1, x0:x1, None] * 255.0], axis=2)
    return (
        np.ascontiguousarray(np.clip(bgra + 0.5, 0, 255).astype(np.uint8)),
        np.ascontiguousarray(np.clip(shadow[y0:y1, x0:x1] * 255.0 + 0.5, 0, 255).astype(np.uint8)),
        (anchor[0] - x0, anchor[1] - y0),
    )


class SpriteBank:
    """Per-world cache of canonical drawings and of their resized, composite-ready sprites.

    Both caches are LRU-bounded (about 50 KB a sized sprite, 30 KB a canonical one), so an endless
    fake camera does not grow without limit.
    """

    def __init__(self, traits: dict[int, BirdTraits], seed: int, max_sprites: int = 4000,
                 max_canonical: int = 3000) -> None:
        self.traits = traits
        self.seed = seed
        self._canon: OrderedDict[tuple[int, str, int, int], _Canon] = OrderedDict()
        self._sized: OrderedDict[tuple[int, str, int, int, int, int], Sprite] = OrderedDict()
        self.max_sprites = max_sprites
        self.max_canonical = max_canonical

    @staticmethod
    def yaw_bin(phi: float) -> int:
        return round(phi / (2 * math.pi) * YAW_BINS) % YAW_BINS

    @staticmethod
    def elev_bin(elev: float) -> int:
        return int(np.clip(round(math.degrees(elev) / 15.0), 1, 6))

    @staticmethod
    def size_bin(length_px: float) -> int:
        return round(math.log(max(length_px, 4.0)) / math.log(SIZE_STEP))

    def _canonical(self, bird_id: int, pose: str, yb: int, eb: int) -> _Canon:
        key = (bird_id, pose, yb, eb)
        got = self._canon.get(key)
        if got is not None:
            self._canon.move_to_end(key)
            return got
        half = YAW_BINS // 2
        if yb > half:
            # Mirror image of the bin reflected about the view axis.
            bgra, shadow, anchor = self._canonical(bird_id, pose, YAW_BINS - yb, eb)
            w = bgra.shape[1]
            flipped = (np.ascontiguousarray(bgra[:, ::-1]), np.ascontiguousarray(shadow[:, ::-1]))
            got = (*flipped, (w - anchor[0], anchor[1]))
        else:
            phi = yb * 2 * math.pi / YAW_BINS
            elev = math.radians(eb * 15.0)
            seed = zlib.crc32(f"{self.seed}:{bird_id}:{pose}".encode())
            got = _pack(*render_canonical(self.traits[bird_id], pose, phi, elev, seed=seed))
        self._canon[key] = got
        if len(self._canon) > self.max_canonical:
            self._canon.popitem(last=False)
        return got

    def get(self, bird_id: int, pose: str, phi: float, elev: float, length_px: float, shadow_k: float) -> Sprite:
        yb, eb, sb = self.yaw_bin(phi), self.elev_bin(elev), self.size_bin(length_px)
        kq = round(shadow_k * 10)
        key = (bird_id, pose, yb, eb, sb, kq)
        sp = self._sized.get(key)
        if sp is not None:
            self._sized.move_to_end(key)
            return sp
        import cv2

        bgra, shadow, anchor = self._canonical(bird_id, pose, yb, eb)
        scale = (SIZE_STEP**sb) / CANON_PX
        h, w = shadow.shape
        nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(bgra, (nw, nh), interpolation=interp).astype(np.float32)
        sp = _finish(
            small[:, :, :3],
            small[:, :, 3] / 255.0,
            cv2.resize(shadow, (nw, nh), interpolation=interp).astype(np.float32) / 255.0,
            (anchor[0] * nw / w, anchor[1] * nh / h),
            kq / 10.0,
        )
        self._sized[key] = sp
        if len(self._sized) > self.max_sprites:
            self._sized.popitem(last=False)
        return sp
