"""SIGTERM/SIGINT handling of the edge app: a signal must always stop it, whatever the main thread holds."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from edge_testkit import base_config, write_clip, write_config

from edge.app import EdgeApp
from edge.config import load_config
from edge.outbox import Outbox


def _wall_config(tmp_path: Path, device: dict[str, Any], **over: Any) -> dict[str, Any]:
    """One looping clip camera on the wall clock, a report every 0.2 s."""
    clip = write_clip(tmp_path / "cam.avi", 30, fps=10.0)
    return base_config(
        tmp_path,
        device,
        clock="wall",
        cameras=[{"camera_id": "cam1", "source": str(clip), "loop": True, "fps": 5}],
        report={"interval_s": 0.2, "snapshot_every_reports": 0},
        **over,
    )


def _wall_app(tmp_path: Path, device: dict[str, Any], **over: Any) -> EdgeApp:
    return EdgeApp(load_config(write_config(tmp_path, _wall_config(tmp_path, device, **over))))


def test_signal_handler_returns_while_the_main_thread_holds_the_stop_events_lock(
    tmp_path: Path, device: dict[str, Any]
) -> None:
    """Python runs a handler between two bytecodes of the main thread, possibly inside `Event.wait()`
    with the event's internal lock held. A handler that calls `stop_event.set()` then blocks forever
    on that lock (the CI hang: SIGTERM ignored for 30 s). Here the lock is held on purpose by the
    thread that runs the handler."""
    app = _wall_app(tmp_path, device)
    try:
        returned = threading.Event()

        def handler_inside_wait() -> None:
            with app.stop_event._cond:  # what Event.wait() holds between its bytecodes
                app.on_signal(signal.SIGTERM, None)
            returned.set()

        t = threading.Thread(target=handler_inside_wait, daemon=True)
        t.start()
        assert returned.wait(5.0), "the signal handler blocked on the stop event's lock"
        assert not app.stop_event.is_set()  # recorded only; the main loop acts on it
        assert app.stopping() and app.stop_event.is_set()
    finally:
        app.close()


def test_sigterm_stops_the_wall_clock_run_promptly_and_restores_the_handlers(
    tmp_path: Path, device: dict[str, Any]
) -> None:
    app = _wall_app(tmp_path, device)
    caught: list[int] = []

    def ours(signum: int, _frame: Any) -> None:  # catches SIGTERM if run() failed to install its handler
        caught.append(signum)

    previous = signal.signal(signal.SIGTERM, ours)
    outbox = Outbox(Path(app.config.outbox.path))
    sent_at: list[float] = []
    try:

        def send_when_running() -> None:
            deadline = time.monotonic() + 30
            while outbox.head()[0] < 1 and time.monotonic() < deadline:  # two reports: the loop runs
                time.sleep(0.05)
            sent_at.append(time.monotonic())
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

        sender = threading.Thread(target=send_when_running, daemon=True)
        sender.start()
        app.run(max_seconds=60.0)
        returned_at = time.monotonic()
        sender.join(5)
        assert caught == []  # the app's handler took it
        assert sent_at and outbox.head()[0] >= 1
        # Acted on within the loop's longest wait (1 s) plus the ordered stop; not at max_seconds.
        assert returned_at - sent_at[0] < 15.0, returned_at - sent_at[0]
        assert signal.getsignal(signal.SIGTERM) is ours  # restored after run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        outbox.close()


def test_sigusr1_dumps_every_threads_stack_and_the_edge_keeps_running(
    tmp_path: Path, device: dict[str, Any]
) -> None:
    """`kill -USR1` is how an operator sees where a box that stopped reporting is stuck."""
    import subprocess
    import sys

    from edge_testkit import subprocess_env, wait_for

    cfg = _wall_config(tmp_path, device)
    config = write_config(tmp_path, cfg)
    log = tmp_path / "edge.log"
    outbox = Outbox(Path(cfg["outbox"]["path"]))
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)], env=subprocess_env(), stdout=fh, stderr=fh
        )
    try:
        assert wait_for(lambda: outbox.head()[0] >= 0 or proc.poll() is not None, 60)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "_worker" in log.read_text(errors="replace"), 10), log.read_text()[-3000:]
        text = log.read_text(errors="replace")
        # Every thread, not only the main one: main ("Current thread 0x..."), capture, processing.
        assert text.count("hread 0x") >= 3 and "Current thread 0x" in text
        assert proc.poll() is None  # a dump, not a crash
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        outbox.close()


def test_stop_is_bounded_when_the_api_accepts_and_never_answers(tmp_path: Path, device: dict[str, Any]) -> None:
    """A hung API (or proxy) must not hold up a stop past stop_flush_s plus the worker budgets: systemd
    kills the box at TimeoutStopSec, and the api's own request timeout here (60 s) is far beyond it."""
    import socket

    from edge.app import STOP_CAMERAS_S, STOP_WORKERS_S

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # accepts (the kernel completes the handshake), never reads, never answers
    port = server.getsockname()[1]
    app = _wall_app(
        tmp_path,
        device,
        api={"url": f"http://127.0.0.1:{port}", "api_key": "k" * 24, "timeout_s": 60},
        stop_flush_s=2.0,
    )
    try:
        t0 = time.monotonic()
        app.run(max_seconds=2.0, install_signals=False)  # reports pile up behind the hung API, then stop()
        took = time.monotonic() - t0 - 2.0
    finally:
        server.close()
    assert took < STOP_CAMERAS_S + STOP_WORKERS_S + 2.0 + 1.5, took
    rows = Outbox(Path(app.config.outbox.path))
    try:
        assert rows.backlog() >= 2  # nothing was lost: it waits for the next start
    finally:
        rows.close()
