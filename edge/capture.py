"""Camera capture.

Wall-clock mode (`OpenCVCamera`): one thread per camera reads RTSP/HTTP streams, USB devices or
video files through OpenCV and publishes into a `LatestSlot` that keeps only the newest frame, so a
slow pipeline drops stale frames instead of lagging behind. A camera that fails to open, stops,
stalls (read timeout) or sends corrupt frames is reopened with exponential back-off and full jitter;
every such event is recorded (with its time) so the next flock report can say what happened.

Source-clock mode (`source_frames`): a video file (with the `frames.csv` of a synthetic sequence for
per-frame times) or a `datasets.synth` FlockWorld is read as fast as possible and each frame carries
its source timestamp, so a simulated day runs in seconds and report windows follow simulated time.
"""

from __future__ import annotations

import csv
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import CameraConfig

log = logging.getLogger("edge.capture")


@dataclass
class Frame:
    camera_id: str
    image: np.ndarray
    timestamp: float  # seconds: wall clock, or source time in source-clock mode
    index: int  # frame number in the source (counts every frame read, processed or not)
    received_mono: float = field(default_factory=time.monotonic)


def frame_problem(image: Any, expected_shape: tuple[int, ...] | None) -> str | None:
    """Why a decoded frame is unusable, or None. Catches what broken streams deliver: no image,
    wrong dtype/shape, a size change mid-stream, and half-decoded frames whose lower part is one
    flat colour (the decoder filled in lost slices) while the upper part has texture."""
    if image is None or not isinstance(image, np.ndarray):
        return "no image"
    if image.dtype != np.uint8:
        return f"dtype {image.dtype}"
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 8 or image.shape[1] < 8:
        return f"shape {image.shape}"
    if expected_shape is not None and image.shape != expected_shape:
        return f"size changed {expected_shape} -> {image.shape}"
    h = image.shape[0]
    bottom = image[h - h // 4 :: 2, ::4]
    top = image[: h // 2 : 2, ::4]
    if float(bottom.std()) == 0.0 and float(top.std()) > 8.0:
        return "truncated (flat lower quarter)"
    return None


def stale_lower_part(prev: np.ndarray | None, image: np.ndarray) -> str | None:
    """A frame whose lower quarter is byte-identical to the previous frame's while the upper half
    changed: the decoder lost the end of the frame and concealed it with old pixels (FFmpeg's
    behaviour on truncated MJPEG/H.264 slices). Live sensors always carry some noise, so exact
    equality does not happen in real footage; only used for streams and USB cameras."""
    if prev is None or prev.shape != image.shape:
        return None
    h = image.shape[0]
    if not np.array_equal(prev[h - h // 4 :], image[h - h // 4 :]):
        return None
    top_diff = float(np.abs(prev[: h // 2 : 2, ::2].astype(np.int16) - image[: h // 2 : 2, ::2]).mean())
    return "partially decoded (lower part repeats the previous frame)" if top_diff > 1.0 else None


class LatestSlot:
    """A one-frame mailbox: put() replaces an unread frame (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def depth(self) -> int:
        return 0 if self._frame is None else 1


@dataclass
class CameraEvent:
    kind: str  # camera_offline | camera_reconnected | corrupt_frames
    at: float  # wall-clock seconds
    message: str


class Backoff:
    """Exponential back-off with full jitter: uniform(0, min(cap, base * 2**n))."""

    def __init__(self, base_s: float = 0.5, max_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.n = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        cap = min(self.max_s, self.base_s * (2 ** min(self.n, 30)))
        self.n += 1
        return self.rng.uniform(self.base_s / 4, cap)

    def reset(self) -> None:
        self.n = 0


def _open_capture(cfg: CameraConfig) -> Any:
    import cv2

    kind = cfg.resolved_kind()
    if kind == "usb":
        return cv2.VideoCapture(int(cfg.source))
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(cfg.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(cfg.read_timeout_s * 1000),
    ]
    if kind == "file" and not Path(str(cfg.source)).exists():
        raise FileNotFoundError(f"camera {cfg.camera_id}: video file {cfg.source} not found")
    return cv2.VideoCapture(str(cfg.source), cv2.CAP_FFMPEG, params)


class OpenCVCamera:
    """Capture thread for one camera (wall-clock mode)."""

    CORRUPT_RECONNECT = 25  # consecutive corrupt frames before the stream is reopened

    def __init__(self, cfg: CameraConfig, *, backoff_base_s: float = 0.5, backoff_max_s: float = 30.0) -> None:
        self.cfg = cfg
        self.camera_id = cfg.camera_id
        self.slot = LatestSlot()
        self.backoff = Backoff(backoff_base_s, backoff_max_s)
        self.frames_seen = 0
        self.corrupt_frames = 0
        self.reconnects = 0
        self.connected = False
        self.last_frame_mono: float | None = None
        self._events: list[CameraEvent] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._index = 0
        self._ever_connected = False

    # -- events for reports --------------------------------------------------------------------------
    def _event(self, kind: str, message: str) -> None:
        log.warning("camera %s: %s: %s", self.camera_id, kind, message)
        with self._lock:
            self._events.append(CameraEvent(kind, time.time(), message))

    def drain_events(self) -> list[CameraEvent]:
        with self._lock:
            out, self._events = self._events, []
        return out

    def stalled(self, now_mono: float | None = None) -> bool:
        now_mono = time.monotonic() if now_mono is None else now_mono
        if self.last_frame_mono is None:
            return True
        return now_mono - self.last_frame_mono > self.cfg.stall_s

    # -- thread ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.camera_id}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the capture thread to stop, without waiting (stop several cameras at once)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                cap = _open_capture(self.cfg)
            except Exception as exc:  # missing file, bad URL: keep retrying, the box must not die
                cap = None
                err = repr(exc)
            else:
                err = "open failed"
            if cap is None or not cap.isOpened():
                if cap is not None:
                    cap.release()
                delay = self.backoff.next()
                if self.connected or (not self._ever_connected and self.backoff.n == 1):
                    self._event("camera_offline", f"cannot open {self._safe_source()}: {err}")
                self.connected = False
                self._sleep(delay)
                continue
            if self._ever_connected:
                self.reconnects += 1
                self._event("camera_reconnected", f"reopened {self._safe_source()}")
            self._ever_connected = True
            self.connected = True
            reason = self._read_loop(cap)
            cap.release()
            if self._stop.is_set():
                break
            self.connected = False
            self._event("camera_offline", reason)
            self._sleep(0.0 if (reason == "end of file" and self.cfg.loop) else self.backoff.next())

    def _safe_source(self) -> str:
        src = str(self.cfg.source)
        # Never log stream credentials (rtsp://user:pass@host).
        if "@" in src and "://" in src:
            scheme, rest = src.split("://", 1)
            src = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return src

    def _read_loop(self, cap: Any) -> str:
        import cv2

        expected: tuple[int, ...] | None = None
        prev: np.ndarray | None = None
        bad_run = 0
        is_file = self.cfg.resolved_kind() == "file"
        file_period = 0.0
        if is_file:
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            file_period = 1.0 / fps if 0.0 < fps < 500.0 else 1.0 / 25.0
        next_t = time.monotonic()
        while not self._stop.is_set():
            t_read = time.monotonic()
            ok, image = cap.read()
            if not ok:
                if is_file:
                    return "end of file"
                if time.monotonic() - t_read >= 0.8 * self.cfg.read_timeout_s:
                    return f"stream stalled: no frame for {self.cfg.read_timeout_s:g} s"
                return "stream ended or sent undecodable data"
            self.frames_seen += 1
            self._index += 1
            problem = frame_problem(image, expected)
            if problem is None and not is_file:
                problem = stale_lower_part(prev, image)
            prev = image if problem is None or prev is None else prev
            if problem is not None:
                self.corrupt_frames += 1
                bad_run += 1
                if bad_run == 1 or bad_run % 100 == 0:
                    self._event("corrupt_frames", f"corrupt frame: {problem}")
                if bad_run >= self.CORRUPT_RECONNECT:
                    return f"{bad_run} corrupt frames in a row"
                continue
            bad_run = 0
            if expected is None:
                expected = image.shape
            self.backoff.reset()
            now = time.monotonic()
            self.last_frame_mono = now
            self.slot.put(Frame(self.camera_id, image, time.time(), self._index, now))
            if is_file:
                # A file plays at its own rate in wall-clock mode, like the camera it stands in for.
                next_t = max(next_t + file_period, now - file_period)
                self._sleep(max(0.0, next_t - time.monotonic()))
        return "stopped"


# -- source-clock mode -----------------------------------------------------------------------------
def _read_times(path: Path) -> list[float]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no rows")
    cols = list(rows[0].keys())
    pick = next(
        (c for c in cols if c and c.strip().lower() in ("time_s", "timestamp", "t", "time", "ts", "sim_time_s")),
        None,
    )
    if pick is None:
        pick = next((c for c in cols if c and "time" in c.lower()), None)
    if pick is None:
        raise ValueError(f"{path}: no time column among {cols}")
    try:
        return [float(r[pick]) for r in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: column {pick!r} is not numeric: {exc}") from exc


def _file_frames(cfg: CameraConfig) -> Iterator[Frame]:
    import cv2

    path = Path(str(cfg.source))
    if not path.exists():
        raise FileNotFoundError(f"camera {cfg.camera_id}: video file {path} not found")
    times = _read_times(cfg.timestamps_csv) if cfg.timestamps_csv else None
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"camera {cfg.camera_id}: OpenCV cannot open {path}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
    i = 0
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            if times is not None and i >= len(times):
                return
            ts = times[i] if times is not None else i / fps
            yield Frame(cfg.camera_id, image, ts, i)
            i += 1
    finally:
        cap.release()


def _synth_frames(cfg: CameraConfig) -> Iterator[Frame]:
    """Frames of one camera of a datasets.synth FlockWorld (`synth_camera`, default its first)."""
    from datasets.synth import FlockWorld, WorldConfig

    world = FlockWorld(WorldConfig(**(cfg.synth or {})))
    want = cfg.synth_camera
    for item in world.frames():
        if want is None:
            want = str(item.camera_id)
        if str(item.camera_id) != want:
            continue
        yield Frame(cfg.camera_id, item.image, float(item.timestamp), int(item.index))


def source_frames(cfg: CameraConfig) -> Iterator[Frame]:
    """Frames with source timestamps, as fast as they can be read (source-clock mode)."""
    kind = cfg.resolved_kind()
    if kind == "file":
        return _file_frames(cfg)
    if kind == "synth":
        return _synth_frames(cfg)
    raise ValueError(f"camera {cfg.camera_id}: clock 'source' needs a 'file' or 'synth' camera, got kind {kind!r}")
