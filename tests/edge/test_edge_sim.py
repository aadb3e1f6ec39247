"""Source-clock mode: a simulated stretch of camera footage processed as fast as possible, report
windows following the source's own timestamps, uploaded to a (fake) API, chain verified."""

from __future__ import annotations

import base64
import itertools
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from edge_testkit import API_KEY, FakeApi, base_config, scene, write_config

from edge.app import EdgeApp
from edge.config import load_config
from edge.outbox import Outbox
from vision.wire import FlockReport, RegistrySnapshot, load_public_key, verify_chain


def _clip(path: Path, n: int, *, seed: int, frozen: range | None = None) -> tuple[Path, Path]:
    first = scene(0, seed=seed)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (first.shape[1], first.shape[0]))
    still = scene(0, seed=seed)
    for i in range(n):
        if frozen is not None and i in frozen:
            if i == frozen.start:
                still = scene(i, seed=seed)
            w.write(still)
        else:
            w.write(scene(i, seed=seed))
    w.release()
    csv = path.with_suffix(".csv")
    csv.write_text("frame,time_s\n" + "".join(f"{i},{i * 1.0:.3f}\n" for i in range(n)))
    return path, csv


def test_simulated_clock_reports_follow_source_time(tmp_path: Path, device: dict[str, Any], fake_api: FakeApi) -> None:
    fake_api.start()
    a, a_csv = _clip(tmp_path / "a.avi", 300, seed=0, frozen=range(200, 260))
    b, b_csv = _clip(tmp_path / "b.avi", 300, seed=1)
    cfg = base_config(
        tmp_path,
        device,
        clock="source",
        sim_start="2026-01-01T00:00:00Z",
        cameras=[
            {"camera_id": "cam-a", "source": a.name, "timestamps_csv": a_csv.name, "fps": 0.5},
            {"camera_id": "cam-b", "source": b.name, "timestamps_csv": b_csv.name, "fps": 0.5},
        ],
        report={"interval_s": 60, "snapshot_every_reports": 2, "registry_interval_s": 120},
        tamper={"frozen_s": 20},
        api={"url": fake_api.url, "api_key": API_KEY},
    )
    app = EdgeApp(load_config(write_config(tmp_path, cfg)))
    stats = app.run_until_exhausted()
    app.close()
    assert stats.frames == 600 and 290 <= stats.processed <= 310
    assert stats.reports == 5 and stats.backlog == 0
    assert stats.registry_snapshots >= 2  # the first once birds exist, then the daily cadence (120 s here)

    envs = Outbox(cfg["outbox"]["path"]).envelopes()
    assert verify_chain(envs, load_public_key(Path(device["pub_path"]).read_bytes())) == []
    stored = fake_api.reports()
    assert [e["payload"] for e in stored] == [e.payload for e in envs]

    reports = [FlockReport.model_validate(e.payload) for e in envs if e.payload["kind"] == "flock_report"]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert [(r.window_start - t0).total_seconds() for r in reports] == [0, 60, 120, 180, 240]
    assert (reports[-1].window_end - t0).total_seconds() == 299
    for r in reports:
        assert r.camera_ids == ["cam-a", "cam-b"]
        assert r.frames_seen == 120 or r is reports[-1]
        assert {c.camera_id for c in r.cameras} == {"cam-a", "cam-b"}
        assert len(r.fingerprints) == 6  # 3 per camera per window
        assert r.headcount.value == 4 and r.models == {"detector": "d" * 64, "reid": "e" * 64}
    assert [len(r.snapshots) for r in reports] == [2, 0, 2, 0, 2]
    jpeg = base64.b64decode(reports[0].snapshots[0].jpeg_b64)
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] <= 320
    frozen = [(r.window_start, a) for r in reports for a in r.alerts if a.kind == "scene_frozen"]
    assert len(frozen) == 1 and frozen[0][1].camera_id == "cam-a"
    assert 215 <= (frozen[0][1].at - t0).total_seconds() <= 235
    assert [c.status for c in reports[3].cameras] == ["frozen", "ok"]
    snaps = [RegistrySnapshot.model_validate(e.payload) for e in envs if e.payload["kind"] == "registry_snapshot"]
    assert snaps and {b.bird_id for b in snaps[0].birds} == {f"bird-{i:06d}" for i in range(4)}


def test_real_flock_pipeline_through_the_edge(tmp_path: Path, device: dict[str, Any]) -> None:
    """Integration: vision.pipeline.FlockPipeline (real tracker, registry, counting, health) inside
    the edge runtime, two cameras sharing one registry, on a small synthetic clip."""
    from edge_real_pipeline import coloured_scene

    paths = []
    for cam in ("a", "b"):
        p = tmp_path / f"{cam}.avi"
        w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
        for i in range(120):
            w.write(coloured_scene(i))
        w.release()
        p.with_suffix(".csv").write_text("frame,time_s\n" + "".join(f"{i},{i * 0.5}\n" for i in range(120)))
        paths.append(p)
    cfg = base_config(
        tmp_path,
        device,
        clock="source",
        sim_start="2026-02-01T00:00:00Z",
        cameras=[
            {"camera_id": f"cam-{c}", "source": str(p), "timestamps_csv": str(p.with_suffix(".csv")), "fps": 2}
            for c, p in zip("ab", paths, strict=True)
        ],
        pipeline={"factory": "edge_real_pipeline:make", "registry_path": str(tmp_path / "registry")},
        report={"interval_s": 20, "snapshot_every_reports": 1},
    )
    app = EdgeApp(load_config(write_config(tmp_path, cfg)))
    stats = app.run_until_exhausted(upload=False)
    app.close()
    assert stats.reports == 3 and stats.registry_snapshots >= 1
    envs = Outbox(cfg["outbox"]["path"]).envelopes()
    assert verify_chain(envs, load_public_key(Path(device["pub_path"]).read_bytes())) == []
    reports = [FlockReport.model_validate(e.payload) for e in envs if e.payload["kind"] == "flock_report"]
    for r in reports:
        assert r.headcount.low <= 5 <= r.headcount.high and r.headcount.value == 5
        assert len({b.bird_id for b in r.birds}) == 5
        assert {c for b in r.birds for c in b.cameras} == {"cam-a", "cam-b"}  # one registry, both cameras
        assert r.models == {"detector": "blob-test", "reid": "c" * 64}
        assert len(r.snapshots) == 2
    snap = next(RegistrySnapshot.model_validate(e.payload) for e in envs if e.payload["kind"] == "registry_snapshot")
    assert len(snap.birds) == 5 and snap.birds[0].dim == 3
    assert (tmp_path / "registry").is_dir()  # the farm registry persists between runs


def test_disk_pressure_drops_snapshots_never_reports(tmp_path: Path, device: dict[str, Any]) -> None:
    a, a_csv = _clip(tmp_path / "a.avi", 120, seed=0)
    cfg = base_config(
        tmp_path,
        device,
        clock="source",
        sim_start="2026-01-01T00:00:00Z",
        cameras=[{"camera_id": "cam-a", "source": str(a), "timestamps_csv": str(a_csv), "fps": 1}],
        report={
            "interval_s": 30,
            "snapshot_every_reports": 1,
            "registry_change_min": 1,
            "registry_change_fraction": 0.01,
        },
    )
    cfg["outbox"]["min_free_bytes"] = 1 << 60  # "the disk is nearly full"
    app = EdgeApp(load_config(write_config(tmp_path, cfg)))
    stats = app.run_until_exhausted(upload=False)
    app.close()
    envs = Outbox(cfg["outbox"]["path"]).envelopes()
    reports = [FlockReport.model_validate(e.payload) for e in envs if e.payload["kind"] == "flock_report"]
    assert stats.reports == len(reports) == 4 and stats.backlog == len(envs)
    assert all(r.snapshots == [] for r in reports)  # JPEG snapshots go first
    assert stats.registry_snapshots == 1  # the daily one; change-triggered ones wait for disk space


def test_cli_init_status_and_config_errors(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "edge", "init", "--out", str(tmp_path / "k"), "--device-id", "box-7"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert json.loads((tmp_path / "k" / "device.json").read_text())["device_id"] == "box-7"
    r = subprocess.run(
        [sys.executable, "-m", "edge", "init", "--out", str(tmp_path / "k"), "--device-id", "box-7"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    dev = {"device_id": "box-7", "key_path": tmp_path / "k" / "device.key"}
    cfg = base_config(tmp_path, dev, cameras=[{"camera_id": "c", "source": "x.avi", "fsp": 3}])
    r = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(write_config(tmp_path, cfg))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "cameras.0.fsp" in r.stderr
    cfg = base_config(tmp_path, dev, cameras=[{"camera_id": "c", "source": "x.avi"}])
    path = write_config(tmp_path, cfg)
    ob = Outbox(cfg["outbox"]["path"])
    from edge.keys import load_device_key
    from edge.reports import CameraWindow, flock_report_payload, header, sign

    key = load_device_key(dev["key_path"])
    for _ in range(3):
        ob.append(
            lambda s, p: sign(
                flock_report_payload(
                    header("box-7", "farm-1", s, p),
                    window_start=0.0,
                    window_end=1.0,
                    summary_fields=None,
                    cameras=[CameraWindow("c")],
                    models={},
                ),
                key,
            )
        )
    ob.mark_sent(0)
    r = subprocess.run(
        [sys.executable, "-m", "edge", "status", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["head_seq"] == 2 and st["backlog"] == 2 and st["sent_kept"] == 1 and st["last_upload"] > 0


def test_second_run_continues_chain_without_overlapping_windows(tmp_path: Path, device: dict[str, Any]) -> None:
    a, a_csv = _clip(tmp_path / "a.avi", 100, seed=0)
    b, b_csv = _clip(tmp_path / "b.avi", 100, seed=0)
    b_csv.write_text("frame,time_s\n" + "".join(f"{i},{100.0 + i:.3f}\n" for i in range(100)))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    spans = []
    for clip, csv in ((a, a_csv), (b, b_csv)):
        cfg = base_config(
            tmp_path,
            device,
            clock="source",
            sim_start="2026-01-01T00:00:00Z",
            cameras=[{"camera_id": "cam-a", "source": str(clip), "timestamps_csv": str(csv), "fps": 1}],
            report={"interval_s": 60, "snapshot_every_reports": 0},
        )
        app = EdgeApp(load_config(write_config(tmp_path, cfg)))
        app.run_until_exhausted(upload=False)
        app.close()
    envs = Outbox(tmp_path / "outbox.sqlite").envelopes()
    assert verify_chain(envs, load_public_key(Path(device["pub_path"]).read_bytes())) == []
    for e in envs:
        if e.payload["kind"] == "flock_report":
            r = FlockReport.model_validate(e.payload)
            spans.append(((r.window_start - t0).total_seconds(), (r.window_end - t0).total_seconds()))
    assert spans == [(0, 60), (60, 99), (99, 120), (120, 180), (180, 199)]


def test_synthetic_world_camera_uses_world_time(tmp_path: Path, device: dict[str, Any]) -> None:
    from datasets.synth import FlockWorld, WorldConfig

    world = {"seed": 3, "birds": 6, "frames": 12, "fps": 1.0, "size_wh": [160, 96], "cameras": 2}
    first = next(iter(FlockWorld(WorldConfig(**world)).frames()))
    cfg = base_config(
        tmp_path,
        device,
        clock="source",
        cameras=[{"camera_id": "north", "source": "synth", "synth": world, "synth_camera": "cam1", "fps": 1}],
        report={"interval_s": 5, "snapshot_every_reports": 0},
    )
    app = EdgeApp(load_config(write_config(tmp_path, cfg)))
    stats = app.run_until_exhausted(upload=False)
    app.close()
    assert stats.frames == 12 and stats.processed == 12  # only the world's second camera
    reports = [
        FlockReport.model_validate(e.payload)
        for e in Outbox(tmp_path / "outbox.sqlite").envelopes()
        if e.payload["kind"] == "flock_report"
    ]
    assert reports[0].window_start.timestamp() <= first.timestamp < reports[0].window_end.timestamp()
    assert sum(r.frames_seen for r in reports) == 12 and reports[0].camera_ids == ["north"]


@pytest.mark.parametrize("report_on_death", [True, False])
def test_a_bird_suspected_dead_is_reported_at_once(
    tmp_path: Path, device: dict[str, Any], report_on_death: bool
) -> None:
    a, a_csv = _clip(tmp_path / "a.avi", 300, seed=0)
    cfg = base_config(
        tmp_path,
        device,
        clock="source",
        sim_start="2026-01-01T00:00:00Z",
        cameras=[{"camera_id": "cam-a", "source": a.name, "timestamps_csv": a_csv.name, "fps": 0.5}],
        # cam-a's pipeline judges a bird dead on frame 130 (10 s into the window [120, 180)).
        pipeline={"factory": "edge_fake_pipeline:make", "options": {"dead_at_frame": {"cam-a": 130}}},
        report={"interval_s": 60, "report_on_death": report_on_death, "early_min_s": 20},
    )
    app = EdgeApp(load_config(write_config(tmp_path, cfg)))
    app.run_until_exhausted(upload=False)
    summaries = app.pipelines["cam-a"].summaries
    app.close()
    envs = Outbox(cfg["outbox"]["path"]).envelopes()
    reports = [FlockReport.model_validate(e.payload) for e in envs if e.payload["kind"] == "flock_report"]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    windows = [((r.window_start - t0).total_seconds(), (r.window_end - t0).total_seconds()) for r in reports]
    if not report_on_death:
        assert windows == [(0, 60), (60, 120), (120, 180), (180, 240), (240, 299)]
        assert all(h is None for _, _, h in summaries)
        return
    # Reported once the window is early_min_s old (140 s), not at its end (180 s); the boundaries
    # after it stay on the 60 s grid.
    assert windows == [(0, 60), (60, 120), (120, 140), (140, 180), (180, 240), (240, 299)]
    s0 = t0.timestamp()
    # The two windows cut short count birds over a full interval back; the others over themselves.
    assert [(s - s0, e - s0, None if h is None else h - s0) for s, e, h in summaries] == [
        (0, 60, None), (60, 120, None), (120, 140, 80), (140, 180, 120), (180, 240, None), (240, 299, None)]


def test_wall_clock_reports_a_suspected_death_without_waiting_for_the_window(
    tmp_path: Path, device: dict[str, Any]
) -> None:
    """Wall clock: a 60 s window, a death judged on the 4th processed frame: the early report goes out
    within a second or two, well before the window would end."""
    from edge_testkit import MjpegCamera

    # The wall clock's report windows end on the minute: a run that starts in the last seconds of one
    # sends the death in that boundary report, not in an early one, and this test would see no early
    # report (a flake in CI). Start clear of the boundary instead.
    to_boundary = 60.0 - time.time() % 60.0
    if to_boundary < 4.0:
        time.sleep(to_boundary + 0.2)
    cam = MjpegCamera(fps=10)
    try:
        cfg = base_config(
            tmp_path,
            device,
            clock="wall",
            cameras=[{"camera_id": "cam1", "source": cam.url, "fps": 5}],
            pipeline={"factory": "edge_fake_pipeline:make", "options": {"dead_at_frame": {"cam1": 3}}},
            report={"interval_s": 60, "early_min_s": 0.5, "snapshot_every_reports": 0},
        )
        app = EdgeApp(load_config(write_config(tmp_path, cfg)))
        app.run(max_seconds=6.0, install_signals=False)
    finally:
        cam.close()
    envs = Outbox(cfg["outbox"]["path"]).envelopes()
    reports = [FlockReport.model_validate(e.payload) for e in envs if e.payload["kind"] == "flock_report"]
    # The early report, and the partial report written at stop (plus one at a minute boundary, if the
    # run crossed one): the early one is the only report that ends off the 60 s grid before the stop.
    windows = [(r.window_start.timestamp(), r.window_end.timestamp()) for r in reports]
    early = [(s, e) for s, e in windows[:-1] if e % 60 != 0]
    assert len(early) == 1, windows
    assert early[0][1] - windows[0][0] < 5.0, windows  # told within seconds of the start, not at 60 s
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows)), windows  # contiguous
