"""Pinhole cameras over the ground plane (z = 0, metres): top-down or oblique, one or several per farm."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    """A fixed camera. World: x, y on the ground (metres), z up. Image: u right, v down (pixels)."""

    camera_id: str
    kind: str
    size_wh: tuple[int, int]
    focal_px: float
    position: np.ndarray  # (3,) metres
    yaw: float  # azimuth of the optical axis (radians)
    pitch: float  # down-tilt from horizontal (radians); pi/2 = straight down

    def __post_init__(self) -> None:
        fh = np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
        d = math.cos(self.pitch) * fh + math.sin(self.pitch) * np.array([0.0, 0.0, -1.0])
        r = np.array([math.sin(self.yaw), -math.cos(self.yaw), 0.0])
        dn = np.cross(d, r)
        self.rot = np.stack([r, dn, d])  # world -> camera rows
        w, h = self.size_wh
        self.k = np.array([[self.focal_px, 0, w / 2.0], [0, self.focal_px, h / 2.0], [0, 0, 1.0]])
        t = -self.rot @ self.position
        self.h_ground = self.k @ np.column_stack([self.rot[:, 0], self.rot[:, 1], t])
        self.h_inv = np.linalg.inv(self.h_ground)

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> (uv (N, 2), depth along the optical axis (N,))."""
        pc = (np.asarray(xyz, np.float64) - self.position) @ self.rot.T
        z = pc[:, 2]
        zs = np.where(z > 1e-6, z, 1e-6)
        uv = np.stack([self.focal_px * pc[:, 0] / zs + self.size_wh[0] / 2.0,
                       self.focal_px * pc[:, 1] / zs + self.size_wh[1] / 2.0], axis=1)
        return uv, z

    def project_ground(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return self.project(np.column_stack([xy, np.zeros(len(xy))]))

    def ground_of(self, uv: np.ndarray) -> np.ndarray:
        """Image points (N, 2) -> ground points (N, 2); rows whose ray misses the ground are NaN."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        p = np.column_stack([uv, np.ones(len(uv))]) @ self.h_inv.T
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = p[:, :2] / p[:, 2:3]
        # A ray pointing above the horizon "hits" the ground behind the camera.
        ray = np.column_stack([(uv[:, 0] - self.size_wh[0] / 2) / self.focal_px,
                               (uv[:, 1] - self.size_wh[1] / 2) / self.focal_px, np.ones(len(uv))]) @ self.rot
        xy[ray[:, 2] >= -1e-6] = np.nan
        return xy

    def view_geometry(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For ground points: (uv, pixels per metre, ray elevation, ray azimuth)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        uv, z = self.project_ground(xy)
        ppm = self.focal_px / np.maximum(z, 1e-3)
        dx = xy[:, 0] - self.position[0]
        dy = xy[:, 1] - self.position[1]
        horiz = np.hypot(dx, dy)
        elev = np.arctan2(self.position[2], horiz)
        azim = np.arctan2(dy, dx)
        return uv, ppm, elev, azim

    def footprint(self, far_limit_m: float) -> np.ndarray:
        """Ground polygon (4, 2) seen by the image, cut at far_limit_m horizontal distance."""
        w, h = self.size_wh
        corners = np.array([[0, h], [w, h], [w, 0], [0, 0]], np.float64)
        out = []
        for u, v in corners:
            g = self.ground_of(np.array([[u, v]]))[0]
            cam = self.position[:2]
            if not np.all(np.isfinite(g)) or np.hypot(*(g - cam)) > far_limit_m:
                # Clip along the image column towards the bottom until within range.
                for vv in np.linspace(v, h, 60):
                    g = self.ground_of(np.array([[u, vv]]))[0]
                    if np.all(np.isfinite(g)) and np.hypot(*(g - cam)) <= far_limit_m:
                        break
            out.append(g)
        return np.asarray(out)


def make_cameras(
    rng: np.random.Generator, kind: str, n: int, size_wh: tuple[int, int], bird_px: float, bird_len_m: float
) -> tuple[list[Camera], tuple[float, float, float, float]]:
    """Cameras looking at one arena, with partly overlapping views when n > 1. Returns (cameras, arena
    (x0, y0, x1, y1)). Focal length is set so a bird of bird_len_m is bird_px long mid-view."""
    w, h = size_wh
    cams: list[Camera] = []
    if kind == "topdown":
        height = float(rng.uniform(2.6, 4.0))
        f = bird_px * height / bird_len_m
        view_w = w * height / f
        view_h = h * height / f
        spacing = view_w * 0.65
        yaw0 = math.pi / 2 + float(rng.normal(0, 0.05))
        for i in range(n):
            x = (i - (n - 1) / 2) * spacing
            pos = np.array([x, 0.0, height])
            # yaw rotates the image about the vertical; image up then points along -yaw... keep near aligned.
            cams.append(Camera(f"cam{i}", kind, size_wh, f, pos, yaw0, math.pi / 2))
        half_w = (n - 1) * spacing / 2 + view_w * 0.5
        mx, my = view_w * 0.35, view_h * 0.35
        arena = (-half_w - mx, -view_h / 2 - my, half_w + mx, view_h / 2 + my)
        return cams, arena
    if kind != "oblique":
        raise ValueError(f"camera={kind!r}: valid kinds are 'oblique', 'topdown'")
    height = float(rng.uniform(2.4, 3.6))
    pitch = math.radians(float(rng.uniform(24, 40)))
    depth_c = height / math.sin(pitch)
    f = bird_px * depth_c / bird_len_m
    dist_c = height / math.tan(pitch)
    view_w_c = w * depth_c / f
    spacing = view_w_c * 0.6
    for i in range(n):
        x = (i - (n - 1) / 2) * spacing
        yaw = math.pi / 2 + float(rng.normal(0, 0.06)) + (i - (n - 1) / 2) * 0.05
        cams.append(Camera(f"cam{i}", kind, size_wh, f, np.array([x, -dist_c, height]), yaw, pitch))
    far = dist_c * float(rng.uniform(1.9, 2.4))
    pts = np.concatenate([c.footprint(far) for c in cams])
    x0, x1 = float(pts[:, 0].min()), float(pts[:, 0].max())
    y_near = float(pts[:, 1].min())
    # The far wall stands at `far` from the camera line; the near edge is just behind the image bottom.
    arena = (x0 - 0.5, y_near - 0.8, x1 + 0.5, far - dist_c)
    return cams, arena
