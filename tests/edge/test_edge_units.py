"""Unit tests of the edge building blocks: config, keys, fingerprint, tamper, scheduler, capture checks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from edge_testkit import base_config, scene, write_config

from edge.capture import Backoff, Frame, LatestSlot, frame_problem
from edge.config import ConfigError, load_config
from edge.fingerprint import hamming, phash
from edge.scheduler import FrameScheduler
from edge.tamper import TamperDetector


def test_import_edge_loads_no_torch_or_ultralytics() -> None:
    code = (
        "import sys, edge, edge.app, edge.cli, edge.capture, edge.outbox, edge.uploader, edge.reports, "
        "edge.metrics, edge.tamper, edge.fingerprint, edge.verify, edge.bench, edge.pipelines, "
        "edge.windows, edge.logs\n"
        "bad = [m for m in ('torch', 'ultralytics') if m in sys.modules]\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"edge imported {r.stdout.strip()} {r.stderr[-500:]}"


def test_import_edge_is_light() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, edge; print(sorted(m for m in ('cv2', 'onnxruntime', 'httpx') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == "[]"


# -- config ------------------------------------------------------------------------------------------
def _cam(**kw: Any) -> dict[str, Any]:
    return {"camera_id": "cam1", "source": "clip.avi", **kw}


def test_config_loads_and_resolves_relative_paths(tmp_path: Path, device: dict[str, Any]) -> None:
    cfg = base_config(tmp_path, device, cameras=[_cam(timestamps_csv="frames.csv")])
    cfg["outbox"]["path"] = "data/outbox.sqlite"
    loaded = load_config(write_config(tmp_path, cfg))
    assert loaded.outbox.path == tmp_path.resolve() / "data/outbox.sqlite"
    assert loaded.cameras[0].source == str(tmp_path.resolve() / "clip.avi")
    assert loaded.cameras[0].timestamps_csv == tmp_path.resolve() / "frames.csv"
    assert loaded.cameras[0].resolved_kind() == "file"


@pytest.mark.parametrize(
    ("source", "kind"),
    [("rtsp://u:p@10.0.0.2/stream", "stream"), ("0", "usb"), (2, "usb"), ("synth", "synth"), ("a.mp4", "file")],
)
def test_camera_kind_is_inferred(source: Any, kind: str) -> None:
    from edge.config import CameraConfig

    assert CameraConfig(camera_id="c", source=source).resolved_kind() == kind


def test_config_unknown_key_is_named_with_file(tmp_path: Path, device: dict[str, Any]) -> None:
    cfg = base_config(tmp_path, device, cameras=[_cam(fsp=5)])
    path = write_config(tmp_path, cfg)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "cameras.0.fsp" in str(exc.value) and str(path) in str(exc.value)


def test_config_bad_value_and_duplicate_cameras(tmp_path: Path, device: dict[str, Any]) -> None:
    cfg = base_config(tmp_path, device, cameras=[_cam(fps=0)])
    with pytest.raises(ConfigError, match=r"cameras\.0\.fps"):
        load_config(write_config(tmp_path, cfg))
    cfg = base_config(tmp_path, device, cameras=[_cam(masks_xyxyn=[[0.8, 0.9, 0.7, 1.0]])])
    with pytest.raises(ConfigError, match=r"cameras\.0\.masks_xyxyn\.0"):
        load_config(write_config(tmp_path, cfg))
    cfg = base_config(tmp_path, device, cameras=[_cam(), _cam()])
    with pytest.raises(ConfigError, match="duplicate camera_id"):
        load_config(write_config(tmp_path, cfg))
    cfg = base_config(tmp_path, device, cameras=[_cam()], api={"url": "ftp://x"})
    with pytest.raises(ConfigError, match=r"api\.url"):
        load_config(write_config(tmp_path, cfg))
    (tmp_path / "bad.yaml").write_text("device_id: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


# -- keys --------------------------------------------------------------------------------------------
def test_init_creates_0600_key_and_refuses_overwrite(tmp_path: Path) -> None:
    from edge.keys import init_device, load_device_key
    from vision.wire import key_id

    ident = init_device(tmp_path, "dev-1")
    assert stat.S_IMODE(ident.private_key_path.stat().st_mode) == 0o600
    assert ident.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert key_id(load_device_key(ident.private_key_path)) == ident.key_id
    with pytest.raises(FileExistsError):
        init_device(tmp_path, "dev-1")
    os.chmod(ident.private_key_path, 0o644)
    with pytest.raises(PermissionError, match="0600"):
        load_device_key(ident.private_key_path)
    with pytest.raises(FileNotFoundError, match="edge init"):
        load_device_key(tmp_path / "missing.key")


# -- fingerprint -------------------------------------------------------------------------------------
def test_phash_is_stable_under_reencoding_and_separates_scenes() -> None:
    import cv2

    a = scene(5, w=320, h=240)
    ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    a_jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    a_small = cv2.resize(a, (160, 120))
    b = scene(5, w=320, h=240, seed=7)
    ha = phash(a)
    assert len(ha) == 16 and int(ha, 16) >= 0
    assert hamming(ha, phash(a_jpeg)) <= 4
    assert hamming(ha, phash(a_small)) <= 4
    assert hamming(ha, phash(b)) >= 12
    with pytest.raises(ValueError):
        hamming("abc", ha)


# -- tamper ------------------------------------------------------------------------------------------
def _feed(det: TamperDetector, frames: list[np.ndarray], t0: float, dt: float = 0.2) -> list[str]:
    events = []
    for i, f in enumerate(frames):
        ev = det.update(f, t0 + i * dt)
        if ev is not None:
            events.append(ev.state)
    return events


def test_tamper_ok_scene_raises_nothing_then_dark_covered_recovered() -> None:
    det = TamperDetector()
    assert _feed(det, [scene(i) for i in range(30)], 0.0) == []
    dark = [np.full((120, 160, 3), 5, np.uint8) for _ in range(5)]
    assert _feed(det, dark, 10.0) == ["dark"]
    covered = [np.full((120, 160, 3), 120, np.uint8) + np.uint8(i % 2) for i in range(5)]
    assert _feed(det, covered, 20.0) == ["covered"]
    assert _feed(det, [scene(i) for i in range(40, 50)], 30.0) == ["ok"]


def test_tamper_detects_moved_camera() -> None:
    det = TamperDetector()
    _feed(det, [scene(i, w=320, h=240) for i in range(20)], 0.0)
    # The camera now looks at another part of the barn: a different floor texture.
    moved = [scene(i, w=320, h=240, seed=3) for i in range(20, 30)]
    assert _feed(det, moved, 10.0)[:1] == ["moved"]
    assert det.state == "ok"  # the new view becomes the reference; one move, one alert


def test_tamper_detects_frozen_scene() -> None:
    det = TamperDetector()
    still = scene(3)
    events = _feed(det, [scene(i) for i in range(10)] + [still] * 120, 0.0, dt=0.2)
    assert events == ["frozen"]
    assert _feed(det, [scene(i) for i in range(200, 205)], 100.0) == ["ok"]


# -- scheduler ---------------------------------------------------------------------------------------
def test_scheduler_keeps_target_rate_and_does_not_catch_up() -> None:
    s = FrameScheduler(5.0)
    ts = np.arange(0, 10, 1 / 25)  # a 25 fps camera for 10 s
    done = sum(s.due(float(t)) for t in ts)
    assert 49 <= done <= 51
    s2 = FrameScheduler(5.0)
    assert s2.due(0.0)
    # processing stalled for 3 s: only one frame is due, not a burst of 15
    assert s2.due(3.0)
    assert not s2.due(3.05)
    assert s2.behind == 1
    with pytest.raises(ValueError):
        FrameScheduler(0)


def test_latest_slot_drops_stale_frames() -> None:
    slot = LatestSlot()
    for i in range(5):
        slot.put(Frame("c", np.zeros((8, 8, 3), np.uint8), float(i), i))
    got = slot.take(0.1)
    assert got is not None and got.index == 4
    assert slot.dropped == 4
    assert slot.take(0.01) is None


def test_frame_problem_and_backoff() -> None:
    good = scene(1)
    assert frame_problem(good, None) is None
    assert frame_problem(None, None) == "no image"
    assert "dtype" in str(frame_problem(good.astype(np.float32), None))
    assert "size changed" in str(frame_problem(good[:60], good.shape))
    broken = good.copy()
    broken[60:] = 128
    assert "truncated" in str(frame_problem(broken, None))
    b = Backoff(0.5, 4.0)
    delays = [b.next() for _ in range(10)]
    assert all(0 < d <= 4.0 for d in delays)
    b.reset()
    assert b.next() <= 0.5


def test_shipped_example_config_and_unit_file_are_valid() -> None:
    from edge.config import load_config

    deploy = Path(__file__).resolve().parents[2] / "edge" / "deploy"
    cfg = load_config(deploy / "edge.example.yaml")
    assert [c.resolved_kind() for c in cfg.cameras] == ["stream", "usb"]
    assert cfg.cameras[0].calibration.pixels_per_cm == 4.2
    assert cfg.cameras[0].masks_xyxyn == [(0.0, 0.0, 0.45, 0.13), (0.8, 0.89, 1.0, 1.0)]
    unit = (deploy / "flockid-edge.service").read_text()
    assert "ExecStart=/opt/flockid/venv/bin/python -m edge run --config /etc/flockid/edge.yaml" in unit
    assert "KillSignal=SIGTERM" in unit and "[Install]" in unit
    # systemd must not SIGKILL a stop that runs its full course (final report, then the flush).
    from edge.app import STOP_CAMERAS_S, STOP_WORKERS_S
    from edge.config import EdgeConfig

    timeout_stop = float(next(ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("TimeoutStopSec=")))
    default_flush = EdgeConfig.model_fields["stop_flush_s"].default
    assert timeout_stop >= 1.0 + STOP_CAMERAS_S + STOP_WORKERS_S + default_flush + 5.0
    assert cfg.stop_flush_s + STOP_CAMERAS_S + STOP_WORKERS_S + 6.0 <= timeout_stop


def test_bench_edge_cli_reports_rows_and_missing_models(tmp_path: Path) -> None:
    """Shape of `flockid bench edge --json` on a tiny constant ONNX detector (no timing asserted)."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "onnx_fixtures_for_edge", Path(__file__).resolve().parents[1] / "vision" / "onnx_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    raw = np.zeros((1, 5, 10), np.float32)
    raw[0, :4, 0] = [32, 32, 10, 10]
    raw[0, 4, 0] = 0.9
    model = mod.make_constant_yolo(tmp_path / "det.onnx", raw, imgsz=64)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "flockid.cli",
            "bench",
            "edge",
            "--detector",
            str(model),
            "--sizes",
            "64,96",
            "--seconds",
            "0.2",
            "--camera-fps",
            "60",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    rows = {(row["imgsz"], row["prec"]): row for row in res["rows"]}
    assert rows[(64, "fp32")]["fps"] > 0 and rows[(64, "fp32")]["rss_mb"] > 0
    assert "no int8 model" in rows[(64, "int8")]["note"] and "no fp32 model for 96" in rows[(96, "fp32")]["note"]
    assert res["concurrent_check"]["cameras"] >= 1 and res["concurrent_check"]["min_camera_fps"] > 0
