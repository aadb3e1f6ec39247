"""The edge application: cameras -> pipelines -> report windows -> signed outbox -> uploader.

Two ways to run it:

Wall clock (`flockid edge run --config edge.yaml`, or `EdgeApp(cfg).run(max_seconds=None)`):
an ordered start of workers (outbox, metrics server, uploader thread, one capture thread and one
processing thread per camera) sharing a stop event; SIGTERM/SIGINT ask for it (see `on_signal`). Stop runs in reverse
order: cameras, processing, a final partial report, then the outbox is flushed to the API for up
to `stop_flush_s` seconds.

Simulated clock (`clock: source` in the config), for tests and the demo::

    from edge.app import EdgeApp
    from edge.config import load_config
    app = EdgeApp(load_config("edge.yaml"))
    stats = app.run_until_exhausted()      # reads every camera source as fast as possible
    print(stats.reports, stats.uploaded, stats.backlog)
    app.close()

Cameras are video files (optionally with `timestamps_csv`, the frames.csv of a synthetic sequence)
or `datasets.synth` worlds; frames of all cameras are merged by source time, report windows follow
source time, and documents are uploaded after every window when `api.url` is set (whatever is left
is retried for up to `stop_flush_s` at the end). Relative source times (< 1e9 s) are shifted by
`sim_start` (default: midnight UTC today) so reports carry plausible dates.
"""

from __future__ import annotations

import heapq
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from edge.capture import Frame, OpenCVCamera, source_frames
from edge.config import EdgeConfig
from edge.logs import setup_logging
from edge.outbox import Outbox, OutboxRow
from edge.reports import (
    CameraWindow,
    flock_report_payload,
    header,
    registry_snapshot_payload,
    sign,
)
from edge.windows import MAX_ALERTS_PER_CAMERA, CameraRuntime, RunStats, WindowCounters

log = logging.getLogger("edge.app")

_TAMPER_ALERT = {
    "dark": "camera_dark",
    "covered": "camera_covered",
    "moved": "camera_moved",
    "frozen": "scene_frozen",
}
_STATUS_RANK = {"offline": 0, "covered": 1, "dark": 2, "moved": 3, "frozen": 4, "corrupt": 5, "ok": 6}
_SNAPSHOT_BUDGET_B64 = 1_500_000  # all snapshots of one report, base64 characters
STOP_CAMERAS_S = 2.0  # stop(): all capture threads together
STOP_WORKERS_S = 5.0  # stop(): processing threads and the uploader together


class EdgeApp:
    def __init__(self, config: EdgeConfig, *, pipelines: dict[str, Any] | None = None, key: Any = None) -> None:
        from edge.keys import load_device_key
        from edge.metrics import EdgeMetrics
        from edge.pipelines import build_pipelines, model_versions

        self.config = config
        self.stop_event = threading.Event()
        self._signal_received: int | None = None
        self.key = key if key is not None else load_device_key(config.key_path)
        self.outbox = Outbox(
            config.outbox.path,
            keep_sent=config.outbox.keep_sent,
            max_bytes=config.outbox.max_bytes,
            min_free_bytes=config.outbox.min_free_bytes,
        )
        self.pipelines = pipelines if pipelines is not None else build_pipelines(config)
        missing = [c.camera_id for c in config.cameras if c.camera_id not in self.pipelines]
        if missing:
            raise ValueError(f"no pipeline for cameras {missing}")
        self.cams = {c.camera_id: CameraRuntime(c, self.pipelines[c.camera_id], config.tamper) for c in config.cameras}
        self.models = model_versions(list(self.pipelines.values()), config)
        self.metrics = EdgeMetrics()
        self.uploader: Any = None
        if config.api.url:
            from edge.uploader import Uploader

            self.uploader = Uploader(
                self.outbox,
                config.api.url,
                config.api.api_key,
                timeout_s=config.api.timeout_s,
                backoff_base_s=config.api.backoff_base_s,
                backoff_max_s=config.api.backoff_max_s,
            )
        self.window_start: float | None = None
        self.window_end: float | None = None
        self.report_count = 0
        self.metrics_port: int | None = None
        self._upload_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._metrics_server: Any = None
        self._started = False
        self._stopped = False
        self._exported: dict[str, dict[str, int]] = {}
        # Set by a processing thread when its pipeline newly suspects a bird dead (report_on_death).
        self._death_seen = threading.Event()
        self._after_early = False  # the current window began at an early report

    # -- shared processing -----------------------------------------------------------------------
    @property
    def registry(self) -> Any:
        for p in self.pipelines.values():
            reg = getattr(p, "registry", None)
            if reg is not None:
                return reg
        return None

    def _align(self, ts: float) -> tuple[float, float]:
        interval = self.config.report.interval_s
        start = math.floor(ts / interval) * interval
        return start, start + interval

    def _first_window(self, ts: float) -> tuple[float, float]:
        """The window a run starts in: aligned to the interval, but never reaching back before the end
        of the last report this box wrote (a restarted box must not report overlapping windows)."""
        start, end = self._align(ts)
        last = self.outbox.get_meta("last_window_end")
        if last is not None and start < float(last) <= ts:
            start = float(last)
        return start, end

    def process_frame(self, rt: CameraRuntime, frame: Frame, ts: float) -> None:
        """Tamper check, pipeline, fingerprint sampling and window counters for one frame."""
        event = rt.tamper.update(frame.image, ts)
        t0 = time.perf_counter()
        dets = rt.pipeline.process(frame.image, timestamp=ts, frame_index=frame.index)
        ms = (time.perf_counter() - t0) * 1000.0
        k = self.config.report.fingerprints_per_camera
        with rt.lock:
            w = rt.window
            w.frames_processed += 1
            w.statuses.add(rt.tamper.state)
            if event is not None and event.state != "ok":
                rt.add_alert(_TAMPER_ALERT[event.state], ts, f"camera {event.state} (was {event.previous})", "critical")
            fp = rt.fingerprinter
            if k:
                fp.update(frame.image, ts)
            if k and self.window_start is not None:
                slot = int((ts - self.window_start) / self.config.report.interval_s * k)
                slot = min(max(slot, 0), k - 1)
                # The liveliest frame of the slot, not its first: a replay that is not aligned to
                # the report windows still samples the same frames wherever the slots overlap.
                if fp.energy > w.fingerprint_energy.get(slot, -1.0):
                    h = fp.fingerprint()
                    if h is not None:
                        w.fingerprints[slot] = (ts, h)
                        w.fingerprint_energy[slot] = fp.energy
            rt.last_image, rt.last_dets, rt.last_ts = frame.image, dets, ts
        if self.config.report.report_on_death and _suspects_death(dets):
            self._death_seen.set()
        now = time.monotonic()
        rt.infer_ms = ms if rt.infer_ms == 0.0 else 0.9 * rt.infer_ms + 0.1 * ms
        if rt._last_proc_mono is not None:
            dt = max(now - rt._last_proc_mono, 1e-6)
            rt.fps = 1.0 / dt if rt.fps == 0.0 else 0.9 * rt.fps + 0.1 / dt
        rt._last_proc_mono = now
        cid = rt.camera_id
        self.metrics.frames_processed.labels(cid).inc()
        self.metrics.inference_ms.labels(cid).set(rt.infer_ms)
        self.metrics.fps.labels(cid).set(rt.fps)

    def _snapshot_jpeg(self, rt: CameraRuntime) -> bytes | None:
        import cv2

        if rt.last_image is None:
            return None
        img = rt.last_image
        try:
            from vision.annotate import Annotator
            from vision.detections import Detections

            if isinstance(rt.last_dets, Detections):
                img = Annotator().annotate(img, rt.last_dets)
        except Exception:  # an annotation bug must not cost the report
            log.exception("annotating snapshot of %s failed", rt.camera_id)
        width = self.config.report.snapshot_width
        h, w = img.shape[:2]
        if w > width:
            img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
        quality = self.config.report.snapshot_quality
        while True:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                return None
            data = buf.tobytes()
            if len(data) * 4 // 3 < 390_000 or quality <= 20:
                return data if len(data) * 4 // 3 < 390_000 else None
            quality -= 20

    def _take_windows(self, end_ts: float, *, wall: bool) -> list[CameraWindow]:
        out = []
        snap_every = self.config.report.snapshot_every_reports
        want_snap = snap_every > 0 and self.report_count % snap_every == 0 and not self.outbox.pressure()
        snap_budget = _SNAPSHOT_BUDGET_B64
        for rt in self.cams.values():
            with rt.lock:
                w, rt.window = rt.window, WindowCounters()
                rt.window.statuses.add(rt.tamper.state)
                cam = rt.camera
                if cam is not None:
                    w.frames_seen += cam.frames_seen - rt._seen_mark
                    w.corrupt += cam.corrupt_frames - rt._corrupt_mark
                    w.reconnects += cam.reconnects - rt._reconnect_mark
                    rt._seen_mark, rt._corrupt_mark, rt._reconnect_mark = (
                        cam.frames_seen,
                        cam.corrupt_frames,
                        cam.reconnects,
                    )
                    for ev in cam.drain_events():
                        sev = (
                            "info"
                            if ev.kind == "camera_reconnected"
                            else "critical"
                            if ev.kind == "camera_offline"
                            else "warning"
                        )
                        if len(w.alerts) < MAX_ALERTS_PER_CAMERA:
                            w.alerts.append(
                                {"kind": ev.kind, "at": ev.at, "severity": sev, "message": ev.message[:300]}
                            )
                snap = self._snapshot_jpeg(rt) if want_snap and snap_budget > 0 else None
                if snap is not None:
                    if len(snap) * 4 // 3 > snap_budget:
                        snap = None  # the report must stay well under the API's body limit
                    else:
                        snap_budget -= len(snap) * 4 // 3
                snap_ts = rt.last_ts
            statuses = set(w.statuses)
            if wall and cam is not None and (not cam.connected or cam.stalled()):
                status = "offline"
            elif w.corrupt >= 3 and w.corrupt * 10 >= w.frames_seen + w.corrupt:
                status = "corrupt"
            else:
                status = min(statuses or {"ok"}, key=lambda s: _STATUS_RANK.get(s, 6))
            if not wall and w.frames_seen == 0:
                status = "offline"
            duration = max(end_ts - (self.window_start or end_ts), 1e-6)
            out.append(
                CameraWindow(
                    camera_id=rt.camera_id,
                    status=status,
                    frames_seen=w.frames_seen,
                    frames_processed=w.frames_processed,
                    reconnects=w.reconnects,
                    fps=w.frames_processed / duration,
                    alerts=w.alerts,
                    fingerprints=[w.fingerprints[k] for k in sorted(w.fingerprints)],
                    snapshot_jpeg=snap,
                    snapshot_ts=snap_ts,
                )
            )
        return out

    def early_report_due(self, now_ts: float) -> bool:
        """A bird was newly suspected dead since the last report, and the window is old enough."""
        return (
            self._death_seen.is_set()
            and self.window_start is not None
            and now_ts - self.window_start >= self.config.report.early_min_s
        )

    def _summary_fields(self, start: float, end: float, *, cut_short: bool) -> dict[str, Any] | None:
        from edge.pipelines import combine, window_summary

        # A window cut short by an early report, and the rest of it after, count birds over one full
        # interval back: a few minutes' look at the flock would show a false headcount drop.
        count_from = min(start, end - self.config.report.interval_s) if cut_short else start
        pipes, sums = [], []
        for rt in self.cams.values():
            try:
                sums.append(window_summary(rt.pipeline, start, end, count_from))
                pipes.append(rt.pipeline)
            except Exception:
                log.exception("window_summary of camera %s failed", rt.camera_id)
        if not sums:
            return None
        try:
            fields: dict[str, Any] = combine(pipes, sums).report_fields()
            return fields
        except Exception:
            log.exception("combining window summaries failed")
            return None

    def close_window(self, end_ts: float, *, wall: bool, early: bool = False) -> list[OutboxRow]:
        """Write the flock report for [window_start, end_ts] (and a registry snapshot when due).

        early: a report before the window's end (a bird suspected dead); the window boundaries that
        follow stay where they were."""
        # Cleared first: a death judged while this report is built gets a report of its own.
        self._death_seen.clear()
        start = self.window_start if self.window_start is not None else end_ts
        fields = self._summary_fields(start, end_ts, cut_short=early or self._after_early)
        cams = self._take_windows(end_ts, wall=wall)
        pressure = self.outbox.pressure()
        if pressure:
            try:
                self.outbox.prune()  # uploaded rows go before anything new is written
            except Exception:
                log.exception("pruning the outbox under disk pressure failed")
        cfg = self.config

        def build(seq: int, prev: str | None, use_fields: dict[str, Any] | None) -> Any:
            payload = flock_report_payload(
                header(cfg.device_id, cfg.farm_id, seq, prev),
                window_start=start,
                window_end=end_ts,
                summary_fields=use_fields,
                cameras=cams,
                models=self.models,
                include_snapshots=not pressure,
            )
            return sign(payload, self.key)

        meta = {"last_window_end": end_ts}
        try:
            row = self.outbox.append(lambda s, p: build(s, p, fields), meta=meta)
        except ValueError:
            # A malformed pipeline summary must not cost the report: send what the runtime itself saw.
            log.exception("flock report with pipeline summary failed validation; writing it without")
            row = self.outbox.append(lambda s, p: build(s, p, None), meta=meta)
        rows = [row]
        self.report_count += 1
        self.metrics.reports.labels("flock_report").inc()
        snap_row = self._maybe_registry_snapshot(end_ts, pressure=pressure)
        if snap_row is not None:
            rows.append(snap_row)
        reg = self.registry
        if reg is not None and hasattr(reg, "save"):
            try:
                reg.save()
            except Exception:
                log.exception("saving the identity registry failed")
        try:
            self.outbox.prune()
        except Exception:
            log.exception("pruning the outbox failed")
        self.window_start = end_ts
        self._after_early = early
        if not early or self.window_end is None or self.window_end <= end_ts:
            self.window_end = end_ts + cfg.report.interval_s
        self.metrics.outbox_backlog.set(self.outbox.backlog())
        self._upload_wake.set()
        log.info("wrote %s%s", ", ".join(f"{r.kind} seq={r.seq}" for r in rows),
                 " (early: a bird suspected dead)" if early else "")
        return rows

    def _maybe_registry_snapshot(self, now_ts: float, *, pressure: bool, force: bool = False) -> OutboxRow | None:
        reg = self.registry
        if reg is None or not hasattr(reg, "snapshot"):
            return None
        snap = reg.snapshot()
        birds = snap.get("birds", []) if isinstance(snap, dict) else getattr(snap, "birds", snap)
        ids = sorted(str(b["bird_id"] if isinstance(b, dict) else b.bird_id) for b in birds)
        state = self.outbox.get_meta("registry_state")
        rcfg = self.config.report
        if state is None:
            due = bool(ids)
            changed = False
        else:
            due = now_ts - float(state["ts"]) >= rcfg.registry_interval_s
            old = set(state["ids"])
            diff = len(old.symmetric_difference(ids))
            changed = diff >= max(rcfg.registry_change_min, rcfg.registry_change_fraction * len(old))
        # Under disk pressure only the daily snapshot is written; change-triggered ones wait.
        if not (force or due or (changed and not pressure)):
            return None
        cfg = self.config
        row = self.outbox.append(
            # taken_at is the footage time the snapshot describes (source clock when replaying).
            lambda s, p: sign(registry_snapshot_payload(header(cfg.device_id, cfg.farm_id, s, p), snap,
                                                        taken_at=now_ts), self.key),
            meta={"registry_state": {"ts": now_ts, "ids": ids}},
        )
        self.metrics.reports.labels("registry_snapshot").inc()
        return row

    # -- simulated clock ---------------------------------------------------------------------------
    def _time_offset(self, first_ts: float) -> float:
        if first_ts >= 1e9:
            return 0.0
        if self.config.sim_start is not None:
            start = self.config.sim_start
            if start.tzinfo is None:
                start = start.replace(tzinfo=timezone.utc)
            return start.timestamp()
        now = datetime.now(timezone.utc)
        return datetime(now.year, now.month, now.day, tzinfo=timezone.utc).timestamp()

    def _merged_frames(self) -> Iterator[Frame]:
        iters = [source_frames(rt.cfg) for rt in self.cams.values()]
        return heapq.merge(*iters, key=lambda f: f.timestamp)

    def run_until_exhausted(self, *, upload: bool = True, max_frames: int | None = None) -> RunStats:
        """Source-clock mode: process every frame of every camera source, writing reports as
        source time crosses window boundaries; upload after each window when an API is set."""
        if self.config.clock != "source":
            raise ValueError("run_until_exhausted needs `clock: source` in the config")
        stats = RunStats()
        interval = self.config.report.interval_s
        offset: float | None = None
        last_ts: float | None = None
        processed_since_close = 0
        for frame in self._merged_frames():
            if self.stopping() or (max_frames is not None and stats.frames >= max_frames):
                break
            if offset is None:
                offset = self._time_offset(frame.timestamp)
            ts = frame.timestamp + offset
            if self.window_start is None:
                self.window_start, self.window_end = self._first_window(ts)
            assert self.window_end is not None
            if ts >= self.window_end:
                rows = self.close_window(self.window_end, wall=False)
                self._count(stats, rows)
                processed_since_close = 0
                if ts >= self.window_end + interval:
                    # A gap in the source: one report covers the silent stretch instead of many empty ones.
                    gap_end = math.floor(ts / interval) * interval
                    self._count(stats, self.close_window(gap_end, wall=False))
                if upload:
                    stats.uploaded += self._drain_once()
            rt = self.cams[frame.camera_id]
            stats.frames += 1
            with rt.lock:
                rt.window.frames_seen += 1
            if rt.scheduler.due(ts):
                self.process_frame(rt, frame, ts)
                stats.processed += 1
                processed_since_close += 1
            last_ts = ts
            if self.early_report_due(ts):
                self._count(stats, self.close_window(ts, wall=False, early=True))
                processed_since_close = 0
                if upload:
                    stats.uploaded += self._drain_once()
        if last_ts is not None and self.window_start is not None and processed_since_close:
            self._count(stats, self.close_window(max(last_ts, self.window_start), wall=False))
        if upload and self.uploader is not None:
            stats.uploaded += self.flush(self.config.stop_flush_s)
        stats.backlog = self.outbox.backlog()
        return stats

    @staticmethod
    def _count(stats: RunStats, rows: list[OutboxRow]) -> None:
        for r in rows:
            stats.seqs.append(r.seq)
            if r.kind == "flock_report":
                stats.reports += 1
            else:
                stats.registry_snapshots += 1

    def _drain_once(self) -> int:
        if self.uploader is None:
            return 0
        n: int = self.uploader.drain(_StopRequested(self))
        self._update_upload_metrics()
        return n

    def flush(self, seconds: float) -> int:
        """Upload pending documents, retrying with back-off, for at most `seconds`."""
        if self.uploader is None:
            return 0
        deadline = time.monotonic() + seconds
        done = 0
        while time.monotonic() < deadline:
            done += self.uploader.drain(deadline=deadline)
            self._update_upload_metrics()
            if self.outbox.backlog() == 0 or self.uploader.blocked is not None:
                break
            time.sleep(min(max(self.uploader.next_wait, 0.05), max(0.0, deadline - time.monotonic())))
        return done

    def _update_upload_metrics(self) -> None:
        self.metrics.outbox_backlog.set(self.outbox.backlog())
        last = self.outbox.last_sent_at()
        if last is not None:
            self.metrics.last_upload.set(last)
        if self.uploader is not None:
            self.metrics.upload_blocked.set(1 if self.uploader.blocked else 0)

    # -- wall clock --------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        cams = {}
        for rt in self.cams.values():
            cam = rt.camera
            age = None if cam is None or cam.last_frame_mono is None else round(now - cam.last_frame_mono, 3)
            cams[rt.camera_id] = {
                "connected": bool(cam and cam.connected),
                "tamper": rt.tamper.state,
                "fps": round(rt.fps, 3),
                "inference_ms": round(rt.infer_ms, 2),
                "last_frame_age_s": age,
                "reconnects": cam.reconnects if cam else 0,
            }
        alive = all(t.is_alive() for t in self._threads)
        return {
            "ok": self._started and alive and not self.stop_event.is_set(),
            "device_id": self.config.device_id,
            "cameras": cams,
            "outbox_backlog": self.outbox.backlog(),
            "last_upload": self.outbox.last_sent_at(),
            "upload_blocked": bool(self.uploader and self.uploader.blocked),
            "window_start": self.window_start,
            "head_seq": self.outbox.head()[0],
        }

    def _worker(self, rt: CameraRuntime) -> None:
        cam = rt.camera
        assert cam is not None
        max_age = max(2.0 * rt.scheduler.period, 1.0)
        reconnects = cam.reconnects
        while not self.stop_event.is_set():
            frame = cam.slot.take(timeout=0.5)
            self.metrics.queue_depth.labels(rt.camera_id).set(cam.slot.depth())
            if frame is None:
                continue
            if cam.reconnects != reconnects:
                reconnects = cam.reconnects
                if hasattr(rt.pipeline, "reset"):
                    try:
                        rt.pipeline.reset()
                    except Exception:
                        log.exception("pipeline reset of %s failed", rt.camera_id)
            if time.monotonic() - frame.received_mono > max_age:
                rt.dropped_stale += 1
                self.metrics.frames_dropped.labels(rt.camera_id).inc()
                continue
            if not rt.scheduler.due(frame.timestamp):
                continue
            try:
                self.process_frame(rt, frame, frame.timestamp)
            except Exception:  # one bad frame must not stop the camera
                rt.errors += 1
                log.exception("processing a frame of %s failed", rt.camera_id)

    def start(self) -> None:
        """Ordered start: metrics server, uploader, cameras, processing workers."""
        if self.config.clock != "wall":
            raise ValueError("start()/run() need `clock: wall`; use run_until_exhausted() for `clock: source`")
        from edge.metrics import MetricsServer

        cfg = self.config
        if cfg.metrics_port is not None:
            self._metrics_server = MetricsServer(self.metrics, self.health, cfg.metrics_host, cfg.metrics_port)
            self._metrics_server.start()
            self.metrics_port = self._metrics_server.port
            log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, self.metrics_port)
        if self.uploader is not None:
            t = threading.Thread(
                target=self.uploader.run,
                args=(self.stop_event, self._upload_wake),
                name="uploader",
                daemon=True,
            )
            t.start()
            self._threads.append(t)
        now = time.time()
        last = self.outbox.get_meta("last_window_end")
        self.window_start = max(now, float(last)) if last is not None and float(last) <= now + 1 else now
        self.window_end = self._align(self.window_start)[1]
        for rt in self.cams.values():
            rt.camera = OpenCVCamera(rt.cfg, backoff_max_s=rt.cfg.reconnect_max_s)
            rt.camera.start()
            t = threading.Thread(target=self._worker, args=(rt,), name=f"process-{rt.camera_id}", daemon=True)
            t.start()
            self._threads.append(t)
        self._started = True

    def request_stop(self, *_: Any) -> None:
        """Ask every worker to stop. Not for signal handlers: see `on_signal`."""
        self.stop_event.set()
        self._upload_wake.set()

    def on_signal(self, signum: int, _frame: Any = None) -> None:
        """SIGTERM/SIGINT handler: only records the signal; the main loops turn it into `request_stop()`.

        Python runs a handler on the main thread between two bytecodes, which can be while that thread
        is inside `stop_event.wait()` holding the event's internal, non-reentrant lock. `Event.set()`
        from the handler then waits for that lock forever: the process ignores SIGTERM until systemd
        kills it and the final report and flush are lost (seen once in CI; CPython gh-126434 is the
        same trap with multiprocessing.Event). A plain attribute store takes no lock.
        """
        self._signal_received = signum

    def install_signal_handlers(self) -> Callable[[], None]:
        """Route SIGTERM and SIGINT to `on_signal`; returns a function that restores the old handlers.
        Only the main thread may install handlers (a no-op elsewhere)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore

    def stopping(self) -> bool:
        """Whether stop was requested, by `request_stop()` or by a signal seen since the last call."""
        if self._signal_received is not None and not self.stop_event.is_set():
            log.info("signal %d received: stopping", self._signal_received)
            self.request_stop()
        return self.stop_event.is_set()

    def run(self, max_seconds: float | None = None, *, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or max_seconds), then stop in order and flush the outbox.
        A signal is acted on within a second (the longest wait of the loop below)."""
        restore = self.install_signal_handlers() if install_signals else (lambda: None)
        try:
            self._run_wall(max_seconds)
        finally:
            restore()

    def _run_wall(self, max_seconds: float | None) -> None:
        self.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while not self.stopping():
                now = time.time()
                assert self.window_end is not None
                if now >= self.window_end:
                    try:
                        self.close_window(self.window_end, wall=True)
                    except Exception:
                        # e.g. the disk is full: keep the window open, the next report covers it too.
                        log.exception("writing the flock report failed; retrying at the next boundary")
                        self.window_end = self.window_end + self.config.report.interval_s
                elif self.early_report_due(now):
                    try:
                        self.close_window(now, wall=True, early=True)
                    except Exception:
                        log.exception("writing the early report failed; the death goes in the next report")
                        self._death_seen.clear()
                self._refresh_gauges()
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.stop_event.wait(max(0.05, min(1.0, self.window_end - time.time())))
        finally:
            self.stop()

    def _refresh_gauges(self) -> None:
        for rt in self.cams.values():
            cam = rt.camera
            if cam is None:
                continue
            self.metrics.connected.labels(rt.camera_id).set(1 if cam.connected and not cam.stalled() else 0)
            # Counters only go up: export the camera's totals as increments since the last refresh.
            last = self._exported.setdefault(rt.camera_id, {"seen": 0, "reconnects": 0, "corrupt": 0})
            for name, counter, value in (
                ("seen", self.metrics.frames_seen, cam.frames_seen),
                ("reconnects", self.metrics.reconnects, cam.reconnects),
                ("corrupt", self.metrics.corrupt, cam.corrupt_frames),
            ):
                if value > last[name]:
                    counter.labels(rt.camera_id).inc(value - last[name])
                    last[name] = value
        try:
            self._update_upload_metrics()
        except Exception:
            log.exception("reading outbox metrics failed")

    def stop(self) -> None:
        """Reverse order: cameras, workers, final partial report, outbox flush, uploader, metrics.

        Bounded whatever hangs (an RTSP read, an inference, an API that accepts and never answers): at
        most STOP_CAMERAS_S + STOP_WORKERS_S, the final report, then `stop_flush_s`, so systemd's
        TimeoutStopSec (30 s in the shipped unit) is not reached with the default `stop_flush_s`. A thread
        still stuck is a daemon and dies with the process; the outbox makes that safe."""
        if self._stopped:
            return
        self._stopped = True
        self.request_stop()
        cameras = [rt.camera for rt in self.cams.values() if rt.camera is not None]
        for cam in cameras:
            cam.request_stop()
        until = time.monotonic() + STOP_CAMERAS_S
        for cam in cameras:
            cam.stop(timeout=max(0.0, until - time.monotonic()))
        until = time.monotonic() + STOP_WORKERS_S
        for t in self._threads:
            t.join(timeout=max(0.0, until - time.monotonic()))
        busy = any(rt.window.frames_processed or rt.window.alerts for rt in self.cams.values())
        if self._started and self.window_start is not None and busy:
            try:
                self.close_window(max(time.time(), self.window_start), wall=True)
            except Exception:
                log.exception("writing the final report failed")
        if self.uploader is not None:
            n = self.flush(self.config.stop_flush_s)
            log.info("stop: flushed %d documents, backlog %d", n, self.outbox.backlog())
        if self._metrics_server is not None:
            self._metrics_server.stop()
        self.close()

    def close(self) -> None:
        if self.uploader is not None:
            self.uploader.close()
        self.outbox.close()


__all__ = ["CameraRuntime", "EdgeApp", "RunStats", "setup_logging"]


class _StopRequested:
    """`is_set()` view of `EdgeApp.stopping()`, for loops that poll a stop event (the uploader's drain)."""

    def __init__(self, app: EdgeApp) -> None:
        self._app = app

    def is_set(self) -> bool:
        return self._app.stopping()


def _suspects_death(dets: Any) -> bool:
    """Whether a processed frame raised a suspected-dead alert (`extra["alerts"]` of FlockPipeline)."""
    extra = getattr(dets, "extra", None)
    alerts = extra.get("alerts") if isinstance(extra, dict) else None
    if not alerts:
        return False
    return any(isinstance(a, dict) and a.get("kind") == "suspected_dead" for a in alerts)
