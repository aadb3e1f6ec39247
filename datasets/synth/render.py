"""Per-frame compositing: background crop, birds and props in depth order, lighting, infra-red,
noise, blur, overlay, compression. Vectorised and cache-driven so 640x360 runs well above 50 fps."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from datasets.synth.scene import SHAKE_MARGIN, CameraScene, Scene
from datasets.synth.sprites import SpriteBank

_LEVEL = {"dead": 0, "sit": 1, "sick": 1, "stand": 2, "peck": 2}


@dataclass
class BirdView:
    """What the renderer needs to know about the birds right now (world state)."""

    index: np.ndarray  # (K,) indices into the flock of birds physically present in the arena
    bird_id: np.ndarray  # (K,)
    pos: np.ndarray  # (K, 2) metres
    heading: np.ndarray  # (K,) radians
    length_m: np.ndarray  # (K,)
    pose: np.ndarray  # (K,) object


@dataclass
class RenderOut:
    image: np.ndarray
    drawn: np.ndarray  # (K,) bool: sprite overlaps the frame
    xyxy: np.ndarray  # (K, 4) float32 amodal, clipped
    visible_xyxy: np.ndarray  # (K, 4)
    visibility: np.ndarray  # (K,)


class NoiseBank:
    """A few pre-drawn sensor-noise frames, applied with saturating adds (no per-pixel Python)."""

    def __init__(self, rng: np.random.Generator, size_wh: tuple[int, int], sigma: float, channels: int,
                 count: int = 6) -> None:
        w, h = size_wh
        shape = (h, w, channels) if channels > 1 else (h, w)
        self.pos: list[np.ndarray] = []
        self.neg: list[np.ndarray] = []
        for _ in range(count):
            n = rng.normal(0, sigma, shape).astype(np.float32)
            self.pos.append(np.clip(n, 0, 255).astype(np.uint8))
            self.neg.append(np.clip(-n, 0, 255).astype(np.uint8))

    def apply(self, img: np.ndarray, k: int) -> np.ndarray:
        import cv2

        k %= len(self.pos)
        cv2.add(img, self.pos[k], dst=img)
        cv2.subtract(img, self.neg[k], dst=img)
        return img


def _composite(frame: np.ndarray, label: np.ndarray, premul: np.ndarray, keep: np.ndarray, mask: np.ndarray,
               x0: int, y0: int, lab: int) -> tuple[int, int, int, int] | None:
    h, w = mask.shape
    fh, fw = label.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, fw), min(y0 + h, fh)
    if xa >= xb or ya >= yb:
        return None
    sx, sy = xa - x0, ya - y0
    sl = (slice(sy, sy + yb - ya), slice(sx, sx + xb - xa))
    roi = frame[ya:yb, xa:xb]
    out = roi.astype(np.uint16)
    out *= keep[sl]
    out >>= 8
    out += premul[sl]
    np.minimum(out, 255, out=out)
    roi[...] = out
    if lab >= 0:
        label[ya:yb, xa:xb][mask[sl]] = lab
    return xa, ya, xb, yb


TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m-%d-%Y %a %H:%M:%S")


def timestamp_text(epoch: float, fmt: str = TIME_FORMATS[0]) -> str:
    return time.strftime(fmt, time.gmtime(epoch))


class BarrelLens:
    """Wide-angle barrel distortion, normalised so the image corners stay put (centre magnified).

    With r the distance from the centre over the half-diagonal: r_pinhole = r_lens * (1 + k r_lens^2) / (1 + k).
    """

    def __init__(self, size_wh: tuple[int, int], k: float) -> None:
        import cv2

        w, h = size_wh
        self.k = k
        self.c = np.array([w / 2.0, h / 2.0])
        self.norm = float(np.hypot(w / 2.0, h / 2.0))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xx - self.c[0], yy - self.c[1]
        r2 = (dx * dx + dy * dy) / self.norm**2
        s = (1 + k * r2) / (1 + k)
        self.map1, self.map2 = cv2.convertMaps(
            (self.c[0] + dx * s).astype(np.float32), (self.c[1] + dy * s).astype(np.float32), cv2.CV_16SC2
        )
        self.r_lens = np.linspace(0, 1.6, 2048)
        self.r_pin = self.r_lens * (1 + k * self.r_lens**2) / (1 + k)
        # Pinhole pixels the lens pushes out of the frame.
        q = self.points(np.stack([xx + 0.5, yy + 0.5], axis=-1).astype(np.float64))
        self.cropped = (q[..., 0] < 0) | (q[..., 0] >= w) | (q[..., 1] < 0) | (q[..., 1] >= h)

    def apply(self, img: np.ndarray) -> np.ndarray:
        import cv2

        return np.asarray(cv2.remap(img, self.map1, self.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Pinhole image points (..., 2) -> where the lens puts them."""
        d = (pts - self.c) / self.norm
        r = np.hypot(d[..., 0], d[..., 1])
        rl = np.interp(r, self.r_pin, self.r_lens)
        scale = np.where(r > 1e-9, rl / np.maximum(r, 1e-9), 1 + self.k)
        return self.c + d * scale[..., None] * self.norm

    def boxes(self, xyxy: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        """Boxes through the lens: the bounding box of their distorted outline, clipped to the frame."""
        if len(xyxy) == 0:
            return xyxy
        t = np.linspace(0, 1, 9)
        x0, y0, x1, y1 = (xyxy[:, i : i + 1] for i in range(4))
        xs = np.concatenate([x0 + (x1 - x0) * t, np.broadcast_to(x1, (len(xyxy), 9)), x1 - (x1 - x0) * t,
                             np.broadcast_to(x0, (len(xyxy), 9))], axis=1)
        ys = np.concatenate([np.broadcast_to(y0, (len(xyxy), 9)), y0 + (y1 - y0) * t,
                             np.broadcast_to(y1, (len(xyxy), 9)), y1 - (y1 - y0) * t], axis=1)
        p = self.points(np.stack([xs, ys], axis=-1))
        w, h = size_wh
        out = np.stack([p[..., 0].min(1), p[..., 1].min(1), p[..., 0].max(1), p[..., 1].max(1)], axis=1)
        out = np.clip(out, 0, [w, h, w, h]).astype(np.float32)
        empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
        out[empty] = 0
        return out


class Renderer:
    """Renders frames of one camera of a scene."""

    def __init__(self, scene: Scene, cam_index: int, bank: SpriteBank, rng: np.random.Generator,
                 noise: bool, blur: bool, compression: bool, overlay: bool, lens_k: float | None = None) -> None:
        self.scene = scene
        self.cs: CameraScene = scene.cams[cam_index]
        self.cam = self.cs.camera
        self.bank = bank
        self.rng = rng
        w, h = self.cam.size_wh
        self.size_wh = (w, h)
        self.noise_day = NoiseBank(rng, (w, h), scene.noise_sigma, 3) if noise and scene.noise_sigma > 0.5 else None
        self.noise_night = NoiseBank(rng, (w, h), scene.night_noise_sigma, 1) if noise else None
        self.blur = blur
        self.compression = compression
        self.overlay = overlay
        k = float(rng.uniform(0.0, 0.3)) if lens_k is None else lens_k
        self.lens = BarrelLens((w, h), k) if k > 0.005 else None
        # DVR overlays differ between brands: date format, corner, camera name.
        style = int(rng.integers(3))
        self.time_format = TIME_FORMATS[style]
        self.cam_label = (f"CAM {cam_index + 1:02d}", f"CH{cam_index + 1}", f"Coop-{cam_index + 1}")[style]
        self.time_bottom = bool(rng.random() < 0.3)
        self.font_scale = max(0.35, w / 1400)

    def render(self, birds: BirdView, night: bool, shake: tuple[int, int], brightness: float, epoch: float,
               frame_k: int) -> RenderOut:
        import cv2

        cam = self.cam
        w, h = self.size_wh
        m = SHAKE_MARGIN
        dx, dy = shake
        bg = self.cs.bg_night if night else self.cs.bg_day
        frame8 = bg[m + dy : m + dy + h, m + dx : m + dx + w].copy()
        label = np.zeros((h, w), np.uint16)
        k = len(birds.index)
        xyxy = np.zeros((k, 4), np.float32)
        vis_xyxy = np.zeros((k, 4), np.float32)
        visibility = np.zeros(k, np.float32)
        drawn = np.zeros(k, bool)
        areas = np.ones(k, np.float64)
        rects: list[tuple[int, int, int, int] | None] = [None] * k
        items: list[tuple[float, int, int]] = []
        j: int  # (sort key, kind 0=bird 1=prop, index)
        if k:
            uv, ppm, elev, azim = cam.view_geometry(birds.pos)
            length_px = ppm * birds.length_m
            if cam.kind == "topdown":
                fwd = birds.pos + 0.05 * np.column_stack([np.cos(birds.heading), np.sin(birds.heading)])
                uv2, _ = cam.project_ground(fwd)
                alpha = np.arctan2(uv2[:, 1] - uv[:, 1], uv2[:, 0] - uv[:, 0])
                phi = alpha + math.pi / 2
                elev = np.full(k, math.pi / 2)
            else:
                phi = azim - birds.heading
            _, depth = cam.project_ground(birds.pos)
            margin = length_px * 1.2
            near = (uv[:, 0] > -margin) & (uv[:, 0] < w + margin) & (uv[:, 1] > -margin) & (
                uv[:, 1] < h + margin * 1.5) & (depth > 0.2)
            for j in np.nonzero(near)[0].tolist():
                key = -float(depth[j]) if cam.kind == "oblique" else _LEVEL[birds.pose[j]] - 10.0 + j * 1e-4
                items.append((key, 0, j))
        for li, layer in enumerate(self.cs.layers):
            key = -layer.depth if cam.kind == "oblique" and layer.depth > 0 else 1e9 - layer.depth
            items.append((key, 1, li))
        items.sort()
        shadow_k = 0.0 if night else self.scene.shadow_k
        for _, kind, j in items:
            if kind == 1:
                ly = self.cs.layers[j]
                _composite(frame8, label, ly.premul, ly.keep, ly.mask, ly.x0 + dx, ly.y0 + dy, 0 if ly.occludes else -1)
                continue
            sp = self.bank.get(int(birds.bird_id[j]), str(birds.pose[j]), float(phi[j]), float(elev[j]),
                               float(length_px[j]), shadow_k)
            x0 = round(uv[j, 0]) + dx - sp.anchor_xy[0]
            y0 = round(uv[j, 1]) + dy - sp.anchor_xy[1]
            bx0, by0, bx1, by1 = x0 + sp.box[0], y0 + sp.box[1], x0 + sp.box[2], y0 + sp.box[3]
            if bx1 <= 0 or by1 <= 0 or bx0 >= w or by0 >= h:
                continue
            rects[j] = _composite(frame8, label, sp.premul, sp.keep, sp.mask, x0, y0, j + 1)
            drawn[j] = True
            areas[j] = sp.area
            xyxy[j] = (max(bx0, 0), max(by0, 0), min(bx1, w), min(by1, h))
        img: np.ndarray = frame8
        if self.lens is not None:
            # What the lens crops away (beyond the frame after distortion) is not visible.
            label[self.lens.cropped] = 0
        counts = np.bincount(label.ravel(), minlength=k + 1)
        if k:
            visibility = np.where(drawn, np.clip(counts[1 : k + 1] / areas, 0, 1), 0).astype(np.float32)
            for j in np.nonzero(drawn & (counts[1 : k + 1] > 0))[0].tolist():
                r = rects[j]
                if r is None:
                    continue
                xa, ya, xb, yb = r
                sub = label[ya:yb, xa:xb] == j + 1
                cols = np.flatnonzero(sub.any(axis=0))
                rows = np.flatnonzero(sub.any(axis=1))
                vis_xyxy[j] = (xa + cols[0], ya + rows[0], xa + cols[-1] + 1, ya + rows[-1] + 1)
        if self.lens is not None:
            img = self.lens.apply(img)
            xyxy = self.lens.boxes(xyxy, (w, h))
            vis_xyxy = self.lens.boxes(vis_xyxy, (w, h))
            gone = (xyxy[:, 2] - xyxy[:, 0] < 1) | (xyxy[:, 3] - xyxy[:, 1] < 1) | (visibility <= 0)
            drawn &= ~gone
            xyxy[gone] = 0
            vis_xyxy[gone] = 0
            visibility[gone] = 0
        if night:
            gray: np.ndarray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            # Plumage reflects near infra-red strongly: bright, low-contrast birds.
            gray = cv2.convertScaleAbs(gray, alpha=0.75, beta=45)
            gray = cv2.multiply(gray, self.cs.gain_night, scale=brightness / 128.0)
            if self.noise_night is not None:
                self.noise_night.apply(gray, frame_k)
            img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        else:
            img = cv2.multiply(img, self.cs.gain_day, scale=brightness / 128.0)
            if self.noise_day is not None:
                self.noise_day.apply(img, frame_k)
        sigma = self.scene.blur_sigma + (0.5 if night else 0.0)
        if self.blur and sigma > 0.35:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        if self.overlay:
            self._overlay(img, epoch)
        if self.compression:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.scene.jpeg_quality])
            dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
            if dec is not None:
                img = dec
        return RenderOut(img, drawn, xyxy, vis_xyxy, visibility)

    def _overlay_origins(self, h: int) -> tuple[tuple[int, int], tuple[int, int]]:
        fs = self.font_scale
        org = (int(8 * fs / 0.45), int(20 * fs / 0.45) if not self.time_bottom else h - int(10 * fs / 0.45))
        org2 = (self.size_wh[0] - int(80 * fs / 0.45),
                h - int(10 * fs / 0.45) if not self.time_bottom else int(20 * fs / 0.45))
        return org, org2

    def overlay_xyxy(self) -> np.ndarray:
        """(K, 4) pixel boxes around the burnt-in clock and camera name, K = 0 without an overlay: what an
        installer masks when setting up the camera (vision.masks)."""
        import cv2

        if not self.overlay:
            return np.zeros((0, 4), np.float32)
        fs = self.font_scale
        th = max(1, round(fs * 2)) + 2
        org, org2 = self._overlay_origins(self.size_wh[1])
        # The widest clock text of a week (weekday names differ in width).
        clock = max((timestamp_text(d * 86400.0 + 86399.0, self.time_format) for d in range(7)),
                    key=lambda t: cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, fs, th)[0][0])
        boxes = []
        for text, (x, y) in ((clock, org), (self.cam_label, org2)):
            (tw, tht), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, th)
            pad = 2 + 0.15 * tht
            boxes.append([x - pad, y - tht - pad, x + tw + pad, y + base + pad])
        w, h = self.size_wh
        return np.clip(np.asarray(boxes, np.float32), 0, [w, h, w, h]).astype(np.float32)

    def _overlay(self, img: np.ndarray, epoch: float) -> None:
        import cv2

        fs = self.font_scale
        th = max(1, round(fs * 2))
        org, org2 = self._overlay_origins(img.shape[0])
        text = timestamp_text(epoch, self.time_format)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), th, cv2.LINE_AA)
        cv2.putText(img, self.cam_label, org2, cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(img, self.cam_label, org2, cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), th, cv2.LINE_AA)
