"""The farm around the birds: ground texture, far wall, props that occlude, lighting, noise.

Everything here is computed once per world and camera; per frame the renderer only copies and blends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from datasets.synth.camera import Camera

SHAKE_MARGIN = 8  # pixels of background kept around the frame so camera shake is a crop


@dataclass
class Prop:
    """A fixed object: pieces drawn as layers; `obstacle` circles (x, y, r) birds walk around."""

    kind: str
    centre: tuple[float, float]
    prims: list[tuple] = field(default_factory=list)
    obstacle: list[tuple[float, float, float]] = field(default_factory=list)
    attract_r: float = 0.0  # feeders/drinkers: birds stand at this radius


@dataclass
class PropLayer:
    """A prop piece rendered for one camera: BGR premultiplied, keep factor, mask, placement, depth."""

    premul: np.ndarray
    keep: np.ndarray
    mask: np.ndarray
    x0: int
    y0: int
    depth: float
    occludes: bool = True  # False: changes the look only (wire mesh: annotators still count the bird seen)


@dataclass
class CameraScene:
    camera: Camera
    bg_day: np.ndarray  # (H + 2M, W + 2M, 3) uint8
    bg_night: np.ndarray
    layers: list[PropLayer]
    gain_day: np.ndarray  # (H, W, 3) uint8, 128 = 1.0
    gain_night: np.ndarray  # (H, W) uint8
    view_poly: np.ndarray  # ground polygon seen by this camera


@dataclass
class Scene:
    kind: str
    ground: str
    arena: tuple[float, float, float, float]
    props: list[Prop]
    feeders: list[Prop]
    drinkers: list[Prop]
    rest_spots: np.ndarray  # (K, 2)
    cams: list[CameraScene]
    shadow_k: float
    noise_sigma: float
    night_noise_sigma: float
    blur_sigma: float
    jpeg_quality: int
    shake_px: float
    tint: tuple[float, float, float]


# ----------------------------------------------------------------------------- textures

_GROUNDS = {
    # base BGR, second BGR (patches), streak BGR, streak count per m^2, streak length m
    "grass": ((55, 125, 85), (60, 95, 110), (40, 150, 95), 1400, 0.05),
    "straw": ((110, 170, 200), (80, 130, 160), (140, 200, 225), 1800, 0.06),
    "dirt": ((70, 95, 120), (55, 75, 95), (110, 130, 150), 300, 0.02),
    "litter": ((150, 180, 200), (95, 120, 140), (185, 210, 225), 1200, 0.025),
}


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    import cv2

    small = rng.random((max(2, h * cells // max(w, 1)), max(2, cells)), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def ground_texture(rng: np.random.Generator, kind: str, w_px: int, h_px: int, ppm: float) -> np.ndarray:
    """A ground texture image (BGR uint8) at ppm pixels per metre."""
    import cv2

    base, patch, streak, density, length = _GROUNDS[kind]
    jit = rng.normal(0, 12, 3)
    base_a = np.clip(np.asarray(base, np.float32) + jit, 0, 255)
    patch_a = np.clip(np.asarray(patch, np.float32) + jit, 0, 255)
    m = _value_noise(rng, h_px, w_px, max(2, int(w_px / ppm / 1.5)))
    m2 = _value_noise(rng, h_px, w_px, max(4, int(w_px / ppm * 3)))
    mix = np.clip((m * 0.7 + m2 * 0.3 - 0.45) * 3.0, 0, 1)[:, :, None]
    img = base_a * (1 - mix) + patch_a * mix
    fine = rng.normal(1.0, 0.07, (h_px, w_px, 1)).astype(np.float32)
    img = img * fine * (0.85 + 0.3 * m2[:, :, None])
    img = np.clip(img, 0, 255).astype(np.uint8)
    n = int(density * (w_px / ppm) * (h_px / ppm) * 0.25)
    pts = rng.uniform(0, 1, (n, 2)) * (w_px, h_px)
    angs = rng.uniform(0, math.pi, n)
    lens = rng.uniform(0.4, 1.0, n) * length * ppm
    ends = pts + np.column_stack([np.cos(angs), np.sin(angs)]) * lens[:, None]
    segs = np.stack([pts, ends], axis=1).astype(np.int32)
    sc = np.asarray(streak, np.float32)
    # Streaks (blades, stalks, shavings) in a few shades, one polylines call per shade.
    groups = rng.integers(0, 4, n)
    for g, shade in enumerate((0.65, 0.85, 1.05, 1.25)):
        col = tuple(float(min(255.0, c * shade)) for c in sc)
        cv2.polylines(img, list(segs[groups == g]), False, col, 1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (3, 3), 0)


# ----------------------------------------------------------------------------- props


def _feeder(x: float, y: float, rng: np.random.Generator) -> Prop:
    pan = (40, 60, 175) if rng.random() < 0.5 else (150, 150, 155)
    tube = (200, 205, 205)
    p = Prop("feeder", (x, y), attract_r=0.24)
    p.prims = [
        ("cyl", (x, y), 0.21, 0.0, 0.12, pan, tuple(int(c * 0.7) for c in (80, 140, 180))),
        ("cyl", (x, y), 0.07, 0.12, 0.55, tube, tube),
        ("cyl", (x, y), 0.17, 0.52, 0.60, pan, tuple(int(min(255, c * 1.15)) for c in pan)),
        ("line", (x, y, 0.6), (x, y, 2.4), 0.012, (60, 60, 60)),
    ]
    p.obstacle = [(x, y, 0.2)]
    return p


def _bell_drinker(x: float, y: float) -> Prop:
    p = Prop("drinker", (x, y), attract_r=0.22)
    p.prims = [
        ("cyl", (x, y), 0.19, 0.06, 0.14, (40, 40, 190), (170, 130, 110)),
        ("cyl", (x, y), 0.12, 0.14, 0.34, (45, 45, 200), (60, 60, 215)),
        ("line", (x, y, 0.34), (x, y, 2.4), 0.012, (60, 60, 60)),
    ]
    p.obstacle = [(x, y, 0.18)]
    return p


def _coop(x: float, y: float, rng: np.random.Generator) -> Prop:
    wood = tuple(int(c) for c in np.clip(np.array([60, 95, 135]) + rng.normal(0, 15, 3), 0, 255))
    roof = (70, 70, 80) if rng.random() < 0.5 else (40, 50, 110)
    w, d = 1.3, 0.9
    p = Prop("coop", (x, y))
    p.prims = [("box", (x - w / 2, y - d / 2, x + w / 2, y + d / 2), 0.45, 1.3, wood)]
    p.prims.append(("box", (x - w / 2 - 0.1, y - d / 2 - 0.1, x + w / 2 + 0.1, y + d / 2 + 0.1), 1.3, 1.38, roof))
    for lx in (x - w / 2 + 0.05, x + w / 2 - 0.05):
        for ly in (y - d / 2 + 0.05, y + d / 2 - 0.05):
            p.prims.append(("box", (lx - 0.04, ly - 0.04, lx + 0.04, ly + 0.04), 0.0, 0.45, wood))
            p.obstacle.append((lx, ly, 0.07))
    return p


def _post(x: float, y: float, height: float, colour: tuple[int, int, int]) -> Prop:
    p = Prop("post", (x, y))
    p.prims = [("box", (x - 0.05, y - 0.05, x + 0.05, y + 0.05), 0.0, height, colour)]
    p.obstacle = [(x, y, 0.08)]
    return p


def _nipple_line(x0: float, x1: float, y: float) -> list[Prop]:
    out = []
    step = 0.6
    xs = np.arange(x0, x1, step)
    for xa in xs:
        xb = min(xa + step, x1)
        p = Prop("drinker-line", ((xa + xb) / 2, y))
        p.prims = [("line", (xa, y, 0.33), (xb, y, 0.33), 0.035, (185, 185, 190))]
        p.prims.append(("cyl", ((xa + xb) / 2, y), 0.03, 0.26, 0.33, (30, 40, 200), (30, 40, 200)))
        out.append(p)
    return out


def make_props(
    rng: np.random.Generator, kind: str, arena: tuple[float, float, float, float], view_polys: list[np.ndarray]
) -> tuple[list[Prop], list[Prop], list[Prop], np.ndarray]:
    """Props, feeders, drinkers and rest spots for a run or a barn. Feeders sit inside camera views, so
    feeding crowds are seen (and occlude each other)."""
    x0, _, x1, _ = arena
    pts = np.concatenate(view_polys)
    vx0, vx1 = float(pts[:, 0].min()), float(pts[:, 0].max())
    vy0, vy1 = float(pts[:, 1].min()), float(pts[:, 1].max())

    def inside_view(n: int, shrink: float = 0.2) -> np.ndarray:
        out: list[np.ndarray] = []
        tries = 0
        while len(out) < n and tries < 5000:
            tries += 1
            p = rng.uniform((vx0, vy0), (vx1, vy1))
            if not any(_in_poly(p, _shrink(poly, shrink)) for poly in view_polys):
                continue
            if all(np.hypot(*(p - q)) > 1.2 for q in out):
                out.append(p)
        return np.asarray(out).reshape(-1, 2)

    props: list[Prop] = []
    n_cams = len(view_polys)
    feeders = [_feeder(float(x), float(y), rng) for x, y in inside_view(int(rng.integers(1, 3)) * n_cams)]
    props += feeders
    drinkers: list[Prop] = []
    if kind == "barn" and rng.random() < 0.6:
        y = float(rng.uniform(vy0 + 0.3 * (vy1 - vy0), vy0 + 0.7 * (vy1 - vy0)))
        line = _nipple_line(x0, x1, y)
        props += line
        drinkers = line[:: max(1, len(line) // 6)]
        for d in drinkers:
            d.attract_r = 0.12
    else:
        drinkers = [_bell_drinker(float(x), float(y)) for x, y in inside_view(n_cams, 0.1)]
        props += drinkers
    if kind == "run":
        # The coop stands at a side or the back of the view, partly in it: birds rest under it.
        side = int(rng.integers(3))
        if side == 0:
            cx, cy = vx0 + 0.25, float(rng.uniform(vy0 + 0.4 * (vy1 - vy0), vy1 - 0.5))
        elif side == 1:
            cx, cy = vx1 - 0.25, float(rng.uniform(vy0 + 0.4 * (vy1 - vy0), vy1 - 0.5))
        else:
            cx, cy = float(rng.uniform(vx0 + 0.3 * (vx1 - vx0), vx1 - 0.3 * (vx1 - vx0))), vy1 - 0.6
        props.append(_coop(cx, cy, rng))
        # A fence line across the run with posts every ~1.2 m.
        fy = float(rng.uniform(vy0 + 0.15 * (vy1 - vy0), vy0 + 0.8 * (vy1 - vy0)))
        colour = (70, 100, 130) if rng.random() < 0.6 else (150, 150, 150)
        for fx in np.arange(x0 + rng.uniform(0, 1.2), x1, 1.2):
            props.append(_post(float(fx), fy, float(rng.uniform(0.9, 1.3)), colour))
    else:
        colour = (150, 155, 160)
        for fx in np.arange(x0 + 1.0, x1, float(rng.uniform(2.5, 4.0))):
            props.append(_post(float(fx), float(rng.uniform(vy0, vy1)), 2.6, colour))
    rest = inside_view(int(rng.integers(2, 4)), 0.05)
    if kind == "run":
        # Birds like to rest in the shade under the raised coop.
        rest = np.concatenate([rest, np.asarray([(cx, cy)])])
    return props, feeders, drinkers, rest


def _shrink(poly: np.ndarray, frac: float) -> np.ndarray:
    c = poly.mean(axis=0)
    return c + (poly - c) * (1 - frac)


def _in_poly(p: np.ndarray, poly: np.ndarray) -> bool:
    import cv2

    return bool(cv2.pointPolygonTest(poly.astype(np.float32), (float(p[0]), float(p[1])), False) >= 0)


# ----------------------------------------------------------------------------- rendering of props


def _draw_prim(cam: Camera, canvas: np.ndarray, alpha: np.ndarray, prim: tuple, light: float) -> None:
    import cv2

    kind = prim[0]
    if kind == "cyl":
        _, (x, y), r, z0, z1, side, top = prim
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        ring = np.column_stack([x + r * np.cos(t), y + r * np.sin(t)])
        lo, _ = cam.project(np.column_stack([ring, np.full(len(t), z0)]))
        hi, _ = cam.project(np.column_stack([ring, np.full(len(t), z1)]))
        hull = cv2.convexHull(np.concatenate([lo, hi]).astype(np.float32)).astype(np.int32)
        col = tuple(float(c) * 0.8 * light for c in side)
        cv2.fillPoly(canvas, [hull], col, cv2.LINE_AA)
        cv2.fillPoly(alpha, [hull], 1.0, cv2.LINE_AA)
        cv2.fillPoly(canvas, [hi.astype(np.int32)], tuple(float(c) * light for c in top), cv2.LINE_AA)
    elif kind == "box":
        _, (bx0, by0, bx1, by1), z0, z1, colour = prim
        corners = np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]])
        faces = []
        for i in range(4):
            a, b = corners[i], corners[(i + 1) % 4]
            quad = np.array([[*a, z0], [*b, z0], [*b, z1], [*a, z1]])
            normal = np.array([b[1] - a[1], -(b[0] - a[0]), 0.0])
            faces.append((quad, normal, 0.75 if i % 2 else 0.9))
        faces.append((np.column_stack([corners, np.full(4, z1)]), np.array([0, 0, 1.0]), 1.1))
        for quad, normal, shade in faces:
            centre = quad.mean(axis=0)
            if np.dot(normal, centre - cam.position) >= 0:
                continue
            uv, z = cam.project(quad)
            if np.any(z <= 0.05):
                continue
            col = tuple(float(c) * shade * light for c in colour)
            cv2.fillPoly(canvas, [uv.astype(np.int32)], col, cv2.LINE_AA)
            cv2.fillPoly(alpha, [uv.astype(np.int32)], 1.0, cv2.LINE_AA)
    elif kind == "line":
        _, p0, p1, width, colour = prim
        uv, z = cam.project(np.array([p0, p1], np.float64))
        if np.any(z <= 0.05):
            return
        ppm = cam.focal_px / float(z.mean())
        th = max(1, round(width * ppm))
        a, b = tuple(int(v) for v in uv[0]), tuple(int(v) for v in uv[1])
        cv2.line(canvas, a, b, tuple(float(c) * light for c in colour), th, cv2.LINE_AA)
        cv2.line(alpha, a, b, 1.0, th, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown prop primitive {kind!r}")


def _clamp_z(prim: tuple, z_max: float) -> tuple:
    """Cut props that would reach up to a top-down camera (a pillar top next to the lens)."""
    if prim[0] == "cyl":
        return (*prim[:3], min(prim[3], z_max - 0.05), min(prim[4], z_max), *prim[5:])
    if prim[0] == "box":
        return (*prim[:2], min(prim[2], z_max - 0.05), min(prim[3], z_max), *prim[4:])
    p0, p1 = prim[1], prim[2]
    return (prim[0], (p0[0], p0[1], min(p0[2], z_max)), (p1[0], p1[1], min(p1[2], z_max)), *prim[3:])


def _prop_layer(cam: Camera, prop: Prop, prims: list[tuple], rng: np.random.Generator) -> PropLayer | None:

    if cam.kind == "topdown":
        prims = [_clamp_z(q, float(cam.position[2]) * 0.55) for q in prims]
    w, h = cam.size_wh
    canvas = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    for prim in prims:
        _draw_prim(cam, canvas, alpha, prim, 1.0)
    ys, xs = np.nonzero(alpha > 0.01)
    if ys.size == 0:
        return None
    ya, yb, xa, xb = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    c = canvas[ya:yb, xa:xb]
    a = np.clip(alpha[ya:yb, xa:xb], 0, 1)
    grain = rng.normal(1.0, 0.06, a.shape).astype(np.float32)
    c = c * grain[:, :, None]
    a3 = a[:, :, None]
    premul = np.clip(c * a3 + 0.5, 0, 255).astype(np.uint16)
    keep = np.repeat(np.clip(256 * (1 - a3) + 0.5, 0, 256).astype(np.uint16), 3, axis=2)
    _, depth = cam.project(np.array([[prop.centre[0], prop.centre[1], 0.0]]))
    return PropLayer(premul, keep, a >= 0.5, xa, ya, float(depth[0]))


# ----------------------------------------------------------------------------- assembling


def _render_ground(
    cam: Camera, tex: np.ndarray, tex_origin: tuple[float, float], ppm: float, arena: tuple[float, ...],
    rng: np.random.Generator, kind: str,
) -> np.ndarray:
    """Background image for a camera whose image has SHAKE_MARGIN extra pixels on each side."""
    import cv2

    w, h = cam.size_wh
    m = SHAKE_MARGIN
    big = Camera(cam.camera_id, cam.kind, (w + 2 * m, h + 2 * m), cam.focal_px, cam.position, cam.yaw, cam.pitch)
    # texture pixel -> world -> image
    t = np.array([[1 / ppm, 0, tex_origin[0]], [0, 1 / ppm, tex_origin[1]], [0, 0, 1]])
    hmat = big.h_ground @ t
    img = cv2.warpPerspective(tex, hmat, (w + 2 * m, h + 2 * m), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    if cam.kind == "oblique":
        x0, _, x1, y1 = arena
        yy, xx = np.mgrid[0 : h + 2 * m, 0 : w + 2 * m]
        g = big.ground_of(np.column_stack([xx.ravel(), yy.ravel()]))
        beyond = ~np.isfinite(g[:, 1]) | (g[:, 1] > y1)
        beyond = beyond.reshape(h + 2 * m, w + 2 * m)
        if kind == "barn":
            back = np.full_like(img, (45, 50, 55))
        else:
            grad = np.linspace(1.0, 0.75, h + 2 * m, dtype=np.float32)[:, None, None]
            back = np.clip(np.array([150, 120, 80], np.float32) * grad + rng.normal(0, 6, img.shape), 0, 255)
            back = back.astype(np.uint8)
        img[beyond] = back[beyond]
        # The far wall: planks (barn) or a board fence with a hedge above (run).
        wall_h = 2.4 if kind == "barn" else 1.1
        quad = np.array([[x0 - 5, y1, 0], [x1 + 5, y1, 0], [x1 + 5, y1, wall_h], [x0 - 5, y1, wall_h]])
        uv, z = big.project(quad)
        if np.all(z > 0.1):
            wall_col = np.array((120, 135, 150) if kind == "barn" else (70, 100, 130), np.float32)
            wall = np.zeros((h + 2 * m, w + 2 * m), np.uint8)
            cv2.fillPoly(wall, [uv.astype(np.int32)], 1)
            planks = (np.sin(xx / max(3.0, big.focal_px / 60)) * 0.08 + 1.0)[:, :, None]
            wall_img = np.clip(wall_col * planks * rng.normal(1.0, 0.04, (h + 2 * m, w + 2 * m, 1)), 0, 255)
            img[wall > 0] = wall_img.astype(np.uint8)[wall > 0]
            if kind == "run":
                hedge = np.zeros_like(wall)
                top = uv[2:4].copy()
                up = np.array([[0, -big.focal_px * 0.6 / float(z.mean())]])
                cv2.fillPoly(hedge, [np.concatenate([top, top[::-1] + up]).astype(np.int32)], 1)
                hedge_img = np.clip(np.array([40, 90, 50], np.float32) * rng.normal(1, 0.15, img.shape), 0, 255)
                sel = (hedge > 0) & (wall == 0) & beyond
                img[sel] = hedge_img.astype(np.uint8)[sel]
    return img


def _lighting(
    rng: np.random.Generator, size_wh: tuple[int, int], kind: str, tint: tuple[float, float, float], strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """(day gain BGR, night gain) maps, 128 = unchanged."""
    import cv2

    w, h = size_wh
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
    a = rng.uniform(0, 2 * math.pi)
    grad = 1.0 + strength * rng.uniform(0.1, 0.35) * (nx * math.cos(a) + ny * math.sin(a))
    gain = grad * float(rng.uniform(0.8, 1.15) if strength > 0 else 1.0)
    if kind == "run" and rng.random() < 0.7 * strength:
        # The shadow of a building or tree over part of the run, with a soft edge.
        sh: np.ndarray = np.zeros((h, w), np.float32)
        pts = np.array([[rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h] for _ in range(5)], np.float32)
        cv2.fillPoly(sh, [cv2.convexHull(pts).astype(np.int32)], 1.0)
        sh = cv2.GaussianBlur(sh, (0, 0), max(2.0, w / 60))
        gain = gain * (1 - sh * rng.uniform(0.3, 0.5))
    if kind == "barn":
        # Pools of lamp light.
        lamps = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.25, 0.5) * w
            lamps += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        gain = gain * (0.75 + 0.35 * np.clip(lamps, 0, 1.2))
    vignette = 1.0 - 0.25 * strength * (nx**2 + ny**2) / 2
    gain = gain * vignette
    day = np.stack([gain * tint[0], gain * tint[1], gain * tint[2]], axis=2)
    day_u8 = np.clip(day * 128, 0, 255).astype(np.uint8)
    # Infra-red illuminator on the camera: bright centre, fast fall-off.
    ir = 1.25 * np.exp(-(nx**2 * 0.6 + ny**2 * 0.9) * rng.uniform(0.8, 1.6)) + 0.12
    night_u8 = np.clip(ir * 128, 0, 255).astype(np.uint8)
    return day_u8, night_u8


def _mesh_layer(cam: Camera, arena: tuple[float, float, float, float], rng: np.random.Generator) -> PropLayer | None:
    """Chicken wire between the camera and the run: a diamond mesh over the lower part of the view."""
    import cv2

    w, h = cam.size_wh
    x0, y0, x1, _ = arena
    top = float(rng.uniform(0.9, 1.6))
    yf = y0 + 0.05
    quad = np.array([[x0 - 5, yf, 0], [x1 + 5, yf, 0], [x1 + 5, yf, top], [x0 - 5, yf, top]])
    uv, z = cam.project(quad)
    if np.any(z <= 0.1):
        return None
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [uv.astype(np.int32)], 1)
    if region.sum() < 0.05 * w * h:
        return None
    alpha = np.zeros((h, w), np.float32)
    step = float(rng.uniform(0.05, 0.09)) * cam.focal_px / max(float(z.mean()), 0.5)
    step = max(step, 6.0)
    for sign in (-1, 1):
        for c in np.arange(-h * 2, w + h * 2, step):
            p0 = (int(c), 0)
            p1 = (int(c + sign * h * 0.75), h)
            cv2.line(alpha, p0, p1, 1.0, 1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.4, 1.0))) * float(rng.uniform(0.5, 0.85))
    alpha *= region
    ys, xs = np.nonzero(alpha > 0.004)
    ya, yb, xa, xb = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    a3 = alpha[ya:yb, xa:xb, None]
    premul = np.clip(float(rng.uniform(140, 200)) * a3 + 0.5, 0, 255).astype(np.uint16)
    keep = np.clip(256 * (1 - a3) + 0.5, 0, 256).astype(np.uint16)
    return PropLayer(premul, keep, np.zeros(a3.shape[:2], bool), xa, ya, -2.0, occludes=False)


def build_scene(
    rng: np.random.Generator, cams: list[Camera], arena: tuple[float, float, float, float], kind: str, strength: float,
    jpeg_quality: int | None, mesh_rng: np.random.Generator | None = None,
) -> Scene:
    """Everything static about the farm, rendered for each camera."""
    if kind not in ("run", "barn"):
        raise ValueError(f"scene={kind!r}: valid kinds are 'run', 'barn'")
    grounds = ("grass", "dirt", "straw") if kind == "run" else ("litter", "straw", "dirt")
    ground = grounds[int(rng.choice(len(grounds), p=(0.55, 0.3, 0.15)))]
    far_lim = 40.0
    polys = []
    for c in cams:
        poly = c.footprint(far_lim)
        x0, y0, x1, y1 = arena
        poly[:, 0] = np.clip(poly[:, 0], x0, x1)
        poly[:, 1] = np.clip(poly[:, 1], y0, y1)
        polys.append(poly)
    props, feeders, drinkers, rest = make_props(rng, kind, arena, polys)
    # Texture covering the arena plus a border (the oblique view sees ground beyond the sides).
    x0, y0, x1, y1 = arena
    pad = 4.0
    ww, hh = (x1 - x0) + 2 * pad, (y1 - y0) + 2 * pad
    ppm = min(120.0, 1600.0 / max(ww, hh))
    tex = ground_texture(rng, ground, int(ww * ppm), int(hh * ppm), ppm)
    tint = (float(rng.normal(1, 0.05 * strength)), float(rng.normal(1, 0.03 * strength)),
            float(rng.normal(1, 0.05 * strength)))
    shadow_k = float(rng.uniform(0.35, 0.7)) if kind == "run" else float(rng.uniform(0.2, 0.4))
    cam_scenes = []
    for cam, poly in zip(cams, polys, strict=True):
        bg = _render_ground(cam, tex, (x0 - pad, y0 - pad), ppm, arena, rng, kind)
        layers: list[PropLayer] = []
        for p in props:
            if cam.kind == "topdown":
                # From above, low parts (pans, trays) are floor; high parts cover the birds below them.
                low = [q for q in p.prims if _prim_top(q) <= 0.15]
                high = [q for q in p.prims if _prim_top(q) > 0.15]
                if low:
                    ly = _prop_layer(cam, p, low, rng)
                    if ly is not None:
                        _stamp(bg, ly, SHAKE_MARGIN)
                if high:
                    ly = _prop_layer(cam, p, high, rng)
                    if ly is not None:
                        ly.depth = -1.0  # drawn over every bird
                        layers.append(ly)
            else:
                ly = _prop_layer(cam, p, p.prims, rng)
                if ly is not None:
                    layers.append(ly)
        if mesh_rng is not None and kind == "run" and cam.kind == "oblique" and mesh_rng.random() < 0.3 * strength:
            mesh = _mesh_layer(cam, arena, mesh_rng)
            if mesh is not None:
                layers.append(mesh)
        bg_night = bg.copy()
        gain_day, gain_night = _lighting(rng, cam.size_wh, kind, tint, strength)
        cam_scenes.append(CameraScene(cam, bg, bg_night, layers, gain_day, gain_night, poly))
    q = jpeg_quality if jpeg_quality is not None else int(rng.integers(35, 86))
    return Scene(
        kind=kind,
        ground=ground,
        arena=arena,
        props=props,
        feeders=feeders,
        drinkers=drinkers,
        rest_spots=rest,
        cams=cam_scenes,
        shadow_k=shadow_k,
        noise_sigma=float(rng.uniform(2.0, 6.0) * strength),
        night_noise_sigma=float(rng.uniform(6.0, 12.0)),
        blur_sigma=float(rng.uniform(0.0, 1.1) * strength),
        jpeg_quality=q,
        shake_px=float(rng.uniform(0.0, 2.5) * strength),
        tint=tint,
    )


def _prim_top(prim: tuple) -> float:
    if prim[0] == "cyl":
        return float(prim[4])
    if prim[0] == "box":
        return float(prim[3])
    return float(max(prim[1][2], prim[2][2]))


def _stamp(bg: np.ndarray, layer: PropLayer, margin: int) -> None:
    h, w = layer.mask.shape
    y0, x0 = layer.y0 + margin, layer.x0 + margin
    roi = bg[y0 : y0 + h, x0 : x0 + w]
    roi[:] = ((roi.astype(np.uint16) * layer.keep >> 8) + layer.premul).clip(0, 255).astype(np.uint8)
