"""Constant-velocity Kalman filter for boxes, vectorised over many tracks.

State per track (8): ``cx, cy, w, h, vcx, vcy, vw, vh``; measurement (4): ``cx, cy, w, h``
(the ``cxcywh`` layout of ``vision.geometry``). Width and height are modelled separately (not aspect
and height) because a bird turning or flapping changes its aspect far more than a pedestrian does.

Time is continuous: ``predict`` takes ``dt`` in seconds (frames may be sampled unevenly), velocities
are in pixels per second and the process noise is the white-noise-acceleration model

    Q_i = q_i * [[dt^3 / 3, dt^2 / 2], [dt^2 / 2, dt]],   q_i = (accel_std * s_i)^2

for each coordinate i, with ``s = (w, h, w, h)`` the track's current size, so noise scales with the box.
Measurement noise is ``R = diag((meas_std * s)^2)``. All arrays are float64 inside (covariances of
hundreds of tracks stay positive definite); callers convert boxes with ``vision.geometry``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom: the usual gate for a
#: squared Mahalanobis distance over (cx, cy, w, h).
CHI2_95_4DOF = 9.4877
#: 0.99 quantile, 4 degrees of freedom.
CHI2_99_4DOF = 13.2767

_MIN_SIZE = 1.0  # pixels: keeps noise positive for degenerate boxes


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"KalmanBoxFilter: {name} must be a positive finite number, got {value!r}")
    return v


class KalmanBoxFilter:
    """Stateless filter maths: tracks own their ``mean (N, 8)`` and ``cov (N, 8, 8)`` arrays.

    meas_std: measurement noise std as a fraction of box size.
    accel_std: centre acceleration noise std, in box sizes per second squared.
    size_accel_std: the same for width and height (shape changes).
    init_pos_std / init_vel_std: initial std of position (fraction of size) and velocity (sizes per second).
    """

    def __init__(
        self,
        *,
        meas_std: float = 0.05,
        accel_std: float = 2.0,
        size_accel_std: float = 0.5,
        init_pos_std: float = 0.05,
        init_vel_std: float = 1.0,
    ) -> None:
        self.meas_std = _positive(meas_std, "meas_std")
        self.accel_std = _positive(accel_std, "accel_std")
        self.size_accel_std = _positive(size_accel_std, "size_accel_std")
        self.init_pos_std = _positive(init_pos_std, "init_pos_std")
        self.init_vel_std = _positive(init_vel_std, "init_vel_std")

    @staticmethod
    def _sizes(wh: F64) -> F64:
        """(N, 2) -> (N, 4) per-coordinate scale ``(w, h, w, h)``."""
        s = np.maximum(np.abs(wh), _MIN_SIZE)
        return np.concatenate([s, s], axis=1)

    @staticmethod
    def _measurements(z: Any, name: str) -> F64:
        arr = np.asarray(z, dtype=np.float64)
        if arr.size == 0:
            return arr.reshape(0, 4)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"{name} must have shape (N, 4) cxcywh, got {arr.shape}")
        return arr

    @staticmethod
    def _check_state(mean: F64, cov: F64) -> None:
        if mean.ndim != 2 or mean.shape[1] != 8:
            raise ValueError(f"mean must have shape (N, 8), got {mean.shape}")
        if cov.shape != (mean.shape[0], 8, 8):
            raise ValueError(f"cov must have shape ({mean.shape[0]}, 8, 8), got {cov.shape}")

    def initiate(self, cxcywh: Any) -> tuple[F64, F64]:
        """New tracks at rest at the measured boxes: ``(N, 4) -> mean (N, 8), cov (N, 8, 8)``."""
        z = self._measurements(cxcywh, "cxcywh")
        n = z.shape[0]
        mean = np.zeros((n, 8), np.float64)
        mean[:, :4] = z
        s = self._sizes(z[:, 2:4])
        var = np.concatenate([(self.init_pos_std * s) ** 2, (self.init_vel_std * s) ** 2], axis=1)
        cov = np.zeros((n, 8, 8), np.float64)
        idx = np.arange(8)
        cov[:, idx, idx] = var
        return mean, cov

    def predict(self, mean: F64, cov: F64, dt: float | F64) -> tuple[F64, F64]:
        """Advance every track by ``dt`` seconds (scalar or (N,)); returns new arrays."""
        self._check_state(mean, cov)
        n = mean.shape[0]
        dts = np.broadcast_to(np.asarray(dt, np.float64), (n,)).copy()
        if np.any(~np.isfinite(dts)) or np.any(dts < 0):
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        new_mean = mean.copy()
        new_mean[:, :4] += dts[:, None] * mean[:, 4:]
        # F P F^T written out blockwise: P = [[A, B], [B^T, C]] with F = [[I, dt I], [0, I]].
        a = cov[:, :4, :4]
        b = cov[:, :4, 4:]
        c = cov[:, 4:, 4:]
        d = dts[:, None, None]
        bt = np.swapaxes(b, 1, 2)
        new_cov = np.empty_like(cov)
        new_cov[:, :4, :4] = a + d * (b + bt) + d * d * c
        new_cov[:, :4, 4:] = b + d * c
        new_cov[:, 4:, :4] = np.swapaxes(new_cov[:, :4, 4:], 1, 2)
        new_cov[:, 4:, 4:] = c
        s = self._sizes(mean[:, 2:4])
        acc = np.array([self.accel_std, self.accel_std, self.size_accel_std, self.size_accel_std])
        q = (acc[None, :] * s) ** 2  # (N, 4)
        idx = np.arange(4)
        dcol = dts[:, None]
        new_cov[:, idx, idx] += q * dcol**3 / 3
        new_cov[:, idx, idx + 4] += q * dcol**2 / 2
        new_cov[:, idx + 4, idx] += q * dcol**2 / 2
        new_cov[:, idx + 4, idx + 4] += q * dcol
        return new_mean, new_cov

    def measurement_noise(self, mean: F64) -> F64:
        """(N, 8) -> (N, 4, 4) diagonal R scaled by each track's predicted size."""
        s = self._sizes(mean[:, 2:4])
        r = np.zeros((mean.shape[0], 4, 4), np.float64)
        idx = np.arange(4)
        r[:, idx, idx] = (self.meas_std * s) ** 2
        return r

    def project(self, mean: F64, cov: F64) -> tuple[F64, F64]:
        """Predicted measurement and innovation covariance: ``z (N, 4)``, ``S (N, 4, 4)``."""
        self._check_state(mean, cov)
        return mean[:, :4].copy(), cov[:, :4, :4] + self.measurement_noise(mean)

    def update(self, mean: F64, cov: F64, cxcywh: Any) -> tuple[F64, F64]:
        """Correct row i of the state with measurement row i: ``(N, 8), (N, 8, 8), (N, 4)``."""
        self._check_state(mean, cov)
        z = self._measurements(cxcywh, "cxcywh")
        if z.shape[0] != mean.shape[0]:
            raise ValueError(f"cxcywh has {z.shape[0]} rows but mean has {mean.shape[0]}")
        if z.shape[0] == 0:
            return mean.copy(), cov.copy()
        z_pred, s = self.project(mean, cov)
        ph = cov[:, :, :4]  # P H^T, (N, 8, 4)
        # K = P H^T S^-1, computed as (S^-1 H P)^T because S is symmetric.
        gain = np.swapaxes(np.linalg.solve(s, np.swapaxes(ph, 1, 2)), 1, 2)  # (N, 8, 4)
        innovation = z - z_pred
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ s @ np.swapaxes(gain, 1, 2)
        new_cov = (new_cov + np.swapaxes(new_cov, 1, 2)) / 2
        return new_mean, new_cov

    def gating_distance(self, mean: F64, cov: F64, cxcywh: Any) -> F64:
        """Squared Mahalanobis distance of every measurement to every track: ``(N, M)``.

        Compare with ``CHI2_95_4DOF`` (or any gate) to rule out impossible pairs.
        """
        self._check_state(mean, cov)
        z = self._measurements(cxcywh, "cxcywh")
        n, m = mean.shape[0], z.shape[0]
        if n == 0 or m == 0:
            return np.zeros((n, m), np.float64)
        z_pred, s = self.project(mean, cov)
        s_inv = np.linalg.inv(s)  # 4x4 per track: cheap and exact enough
        # (z - mu)^T A (z - mu) = z^T A z - 2 (A mu)^T z + mu^T A mu, each term one small matmul over
        # all pairs: ~10x faster than forming the (N, M, 4) differences. Centre coordinates relative
        # to the tracks' mean keep the cancellation harmless in float64.
        origin = z_pred.mean(axis=0)
        zc = z - origin
        mu = z_pred - origin
        a_mu = np.einsum("nij,nj->ni", s_inv, mu)
        quad_z = s_inv.reshape(n, 16) @ (zc[:, :, None] * zc[:, None, :]).reshape(m, 16).T
        d2 = quad_z - 2.0 * (a_mu @ zc.T) + (a_mu * mu).sum(axis=1)[:, None]
        return np.asarray(np.maximum(d2, 0.0))
