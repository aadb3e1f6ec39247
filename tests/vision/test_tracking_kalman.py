import numpy as np
import pytest

from vision.tracking.kalman import CHI2_95_4DOF, KalmanBoxFilter

BOX = [100.0, 50.0, 20.0, 10.0]  # cx, cy, w, h


def make_kf():
    return KalmanBoxFilter(meas_std=0.05, accel_std=2.0, size_accel_std=0.5, init_pos_std=0.05, init_vel_std=1.0)


def test_initiate_by_hand():
    mean, cov = make_kf().initiate([BOX])
    np.testing.assert_allclose(mean[0], [*BOX, 0, 0, 0, 0])
    # pos var = (0.05 * size)^2, vel var = (1.0 * size)^2 with size = (w, h, w, h)
    np.testing.assert_allclose(np.diag(cov[0]), [1.0, 0.25, 1.0, 0.25, 400, 100, 400, 100])
    assert np.count_nonzero(cov[0] - np.diag(np.diag(cov[0]))) == 0


def test_predict_and_update_by_hand():
    kf = make_kf()
    mean, cov = kf.initiate([BOX])
    mean[0, 4] = 10.0  # vcx = 10 px/s
    dt = 0.5
    mean, cov = kf.predict(mean, cov, dt)
    assert mean[0, 0] == pytest.approx(105.0)
    np.testing.assert_allclose(mean[0, 1:4], BOX[1:4])
    q = (2.0 * 20) ** 2  # accel_std * w, squared
    p_xx = 1.0 + dt**2 * 400 + q * dt**3 / 3
    p_xv = dt * 400 + q * dt**2 / 2
    p_vv = 400 + q * dt
    assert cov[0, 0, 0] == pytest.approx(p_xx)
    assert cov[0, 0, 4] == pytest.approx(p_xv)
    assert cov[0, 4, 0] == pytest.approx(p_xv)
    assert cov[0, 4, 4] == pytest.approx(p_vv)
    q_w = (0.5 * 20) ** 2  # size_accel_std for the width
    assert cov[0, 2, 2] == pytest.approx(1.0 + dt**2 * 400 + q_w * dt**3 / 3)

    # Coordinates are independent (diagonal blocks), so the update is four scalar Kalman updates.
    z = np.array([[110.0, 50.0, 20.0, 10.0]])
    s_xx = p_xx + (0.05 * 20) ** 2
    gate = kf.gating_distance(mean, cov, z)
    assert gate.shape == (1, 1)
    assert gate[0, 0] == pytest.approx(5.0**2 / s_xx)
    new_mean, new_cov = kf.update(mean, cov, z)
    assert new_mean[0, 0] == pytest.approx(105.0 + p_xx / s_xx * 5.0)
    assert new_mean[0, 4] == pytest.approx(10.0 + p_xv / s_xx * 5.0)
    assert new_cov[0, 0, 0] == pytest.approx(p_xx - p_xx**2 / s_xx)
    np.testing.assert_allclose(new_mean[0, 1:4], BOX[1:4])


def test_vectorised_equals_one_by_one():
    kf = make_kf()
    rng = np.random.default_rng(3)
    z0 = np.column_stack([rng.uniform(0, 500, (6, 2)), rng.uniform(5, 40, (6, 2))])
    mean, cov = kf.initiate(z0)
    dts = rng.uniform(0.05, 1.0, 6)
    pm, pc = kf.predict(mean, cov, dts)
    z1 = z0 + rng.normal(0, 2, z0.shape)
    um, uc = kf.update(pm, pc, z1)
    for i in range(6):
        m1, c1 = kf.predict(mean[i : i + 1], cov[i : i + 1], dts[i])
        m2, c2 = kf.update(m1, c1, z1[i : i + 1])
        np.testing.assert_allclose(um[i], m2[0], rtol=1e-9)
        np.testing.assert_allclose(uc[i], c2[0], rtol=1e-9, atol=1e-9)
    # Gating over all pairs equals the explicit quadratic form.
    d = kf.gating_distance(pm, pc, z1)
    zp, s = kf.project(pm, pc)
    for i in range(6):
        for j in range(6):
            diff = z1[j] - zp[i]
            assert d[i, j] == pytest.approx(diff @ np.linalg.inv(s[i]) @ diff, rel=1e-6, abs=1e-9)
    # A measurement exactly at the prediction is at distance 0, well inside the gate.
    assert kf.gating_distance(pm, pc, zp)[np.arange(6), np.arange(6)] == pytest.approx(np.zeros(6), abs=1e-6)
    assert (kf.gating_distance(pm, pc, zp).diagonal() < CHI2_95_4DOF).all()


def test_covariance_stays_symmetric_positive_definite():
    kf = make_kf()
    mean, cov = kf.initiate([BOX, [300, 300, 50, 40]])
    for _ in range(200):
        mean, cov = kf.predict(mean, cov, 0.1)
        mean, cov = kf.update(mean, cov, mean[:, :4] + 0.5)
    np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-9)
    assert (np.linalg.eigvalsh(cov) > 0).all()


def test_empty_and_zero_dt():
    kf = make_kf()
    mean, cov = kf.initiate(np.zeros((0, 4)))
    assert mean.shape == (0, 8) and cov.shape == (0, 8, 8)
    assert kf.gating_distance(mean, cov, [BOX]).shape == (0, 1)
    m, c = kf.initiate([BOX])
    m2, c2 = kf.predict(m, c, 0.0)
    np.testing.assert_allclose(m2, m)
    np.testing.assert_allclose(c2, c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"meas_std": 0.0}, "meas_std"),
        ({"accel_std": -1}, "accel_std"),
        ({"init_vel_std": float("inf")}, "init_vel_std"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KalmanBoxFilter(**kwargs)


def test_bad_shapes_and_dt():
    kf = make_kf()
    m, c = kf.initiate([BOX])
    with pytest.raises(ValueError, match="dt"):
        kf.predict(m, c, -1.0)
    with pytest.raises(ValueError, match="cxcywh"):
        kf.update(m, c, [[1, 2, 3]])
    with pytest.raises(ValueError, match="rows"):
        kf.update(m, c, [BOX, BOX])
    with pytest.raises(ValueError, match="mean"):
        kf.predict(m[:, :4], c, 0.1)
