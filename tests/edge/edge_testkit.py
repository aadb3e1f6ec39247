"""Test helpers for the edge tests: synthetic clips, an MJPEG camera server with fault modes,
and config/key set-up. (Test code only.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scene(i: int, *, w: int = 160, h: int = 120, seed: int = 0, birds: int = 4) -> np.ndarray:
    """A textured 'barn floor' with a few bright moving blobs and sensor noise."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(60, 140, size=(h // 8, w // 8, 3), dtype=np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_NEAREST)
    for b in range(birds):
        cx = int((20 + 30 * b + 2 * i) % (w - 10)) + 5
        cy = int(h / 2 + 25 * np.sin(0.1 * i + b))
        cv2.circle(img, (cx, cy), 6, (235, 235, 235), -1)
    noise = np.random.default_rng(i + 1000 * seed).integers(-3, 4, size=img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_clip(path: Path, n: int, fps: float = 10.0, **kw: Any) -> Path:
    import cv2

    first = scene(0, **kw)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (first.shape[1], first.shape[0]))
    for i in range(n):
        writer.write(scene(i, **kw))
    writer.release()
    return path


class MjpegCamera:
    """An HTTP multipart MJPEG camera whose behaviour can be switched: ok, stop (refuse), stall
    (connection open, no bytes), corrupt (garbage JPEG parts)."""

    def __init__(self, fps: float = 10.0) -> None:
        self.mode = "ok"
        self.fps = fps
        self.frames_sent = 0
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                import cv2

                if outer.mode == "stop":
                    self.send_error(503)
                    return
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not outer._closed:
                        mode = outer.mode
                        if mode == "stop":
                            return
                        if mode == "stall":
                            time.sleep(0.05)
                            continue
                        if mode == "garbage":
                            data = b"\xff\xd8" + bytes(np.random.default_rng(i).integers(0, 256, 3000, dtype=np.uint8))
                        elif mode == "truncated":
                            # Lost packets: the decoder fills the missing lower part with flat grey.
                            _ok, buf = cv2.imencode(".jpg", scene(i))
                            full = buf.tobytes()
                            data = full[: len(full) // 2] + b"\xff\xd9"
                        else:
                            _ok, buf = cv2.imencode(".jpg", scene(i))
                            data = buf.tobytes()
                        part = (
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(data)).encode()
                            + b"\r\n\r\n"
                            + data
                            + b"\r\n"
                        )
                        self.wfile.write(part)
                        self.wfile.flush()
                        outer.frames_sent += 1
                        i += 1
                        time.sleep(1.0 / outer.fps)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args: Any) -> None:
                pass

        self._closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self.server.shutdown()
        self.server.server_close()


HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
API_KEY = "test-device-key-0123456789"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # as in the systemd unit: the runtime reports decode errors
    return env


def base_config(tmp_path: Path, device: dict[str, Any], **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "device_id": device["device_id"],
        "farm_id": "farm-1",
        "key_path": str(device["key_path"]),
        "outbox": {"path": str(tmp_path / "outbox.sqlite"), "min_free_bytes": 0},
        "pipeline": {"factory": "edge_fake_pipeline:make"},
        "metrics_port": None,
        "cameras": [],
    }
    cfg.update(over)
    return cfg


def write_config(tmp_path: Path, cfg: dict[str, Any], name: str = "edge.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


class FakeApi:
    def __init__(self, port: int, db: Path, pub: Path) -> None:
        self.port = port
        self.db = db
        self.pub = pub
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "edge_fake_api.py"), str(self.port), str(self.db), str(self.pub), API_KEY],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", line

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def reports(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.url + "/test/reports", timeout=10).json())

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/test/stats", timeout=10).json())


def wait_for(pred: Any, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


PG_ADMIN_URL = os.environ.get("FLOCKID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class RealApi:
    """The real lender API (`api.app`, uvicorn) in its own process on a fresh PostgreSQL database,
    with an organisation, farm and this device registered (public key PEM) and a device API key."""

    def __init__(self, device_id: str, public_pem: str) -> None:
        import secrets

        import psycopg

        self.device_id = device_id
        self.public_pem = public_pem
        self.db_name = f"flockid_edge_{secrets.token_hex(5)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        self.db_url = f"{base}/{self.db_name}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.device_key = ""
        self.lender_key = ""
        self._admin_key = self._bootstrap()

    def _bootstrap(self) -> str:
        from api.db import migrate
        from api.db.engine import make_engine, make_sessionmaker
        from api.services.auth import new_key
        from api.settings import Settings

        migrate.upgrade(self.db_url)
        settings = Settings(database_url=self.db_url, mount_dashboard=False)
        engine = make_engine(self.db_url)
        with make_sessionmaker(engine)() as session:
            _, key = new_key(session, role="admin", pepper=settings.secret(), label="edge tests")
            session.commit()
        engine.dispose()
        return str(key)

    def start(self) -> None:
        env = {
            **os.environ,
            "FLOCKID_DATABASE_URL": self.db_url,
            "FLOCKID_MOUNT_DASHBOARD": "false",
            "FLOCKID_INGEST_RATE_PER_S": "100000",
            "FLOCKID_INGEST_BURST": "100000",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ok = wait_for(lambda: self._healthy(), 60, 0.1)
        if not ok:
            self.stop()
            raise RuntimeError("the API server did not start within 60 s")
        if not self.device_key:
            self._provision()

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the API server exited with {self.proc.returncode}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _post(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        r = httpx.post(self.url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json())

    def _provision(self) -> None:
        org = self._post("/v1/organizations", {"name": "Edge Test Bank"}, self._admin_key)["id"]
        self.lender_key = self._post("/v1/api-keys", {"role": "lender", "org_id": org}, self._admin_key)["api_key"]
        farm = self._post(
            "/v1/farms",
            {
                "name": "Edge Test Farm",
                "owner_name": "Ada",
                "location": "Barn 3",
                "breed": "broiler",
                "price_per_kg": 2.0,
            },
            self.lender_key,
        )["id"]
        self.farm_id = farm
        farm_key = self._post("/v1/api-keys", {"role": "farm", "farm_id": farm}, self._admin_key)["api_key"]
        dev = self._post(
            "/v1/devices", {"device_id": self.device_id, "farm_id": farm, "public_key_pem": self.public_pem}, farm_key
        )
        self.device_key = dev["api_key"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def drop(self) -> None:
        import psycopg

        self.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def stored(self) -> list[tuple[int, str]]:
        """(seq, payload_hash) of every stored report of the device, straight from the database."""
        import psycopg

        with psycopg.connect(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.db_name}") as conn:
            rows = conn.execute(
                "SELECT seq, payload_hash FROM reports WHERE device_id = %s ORDER BY seq", (self.device_id,)
            ).fetchall()
        return [(int(s), str(h)) for s, h in rows]

    def verify(self) -> dict[str, Any]:
        r = httpx.get(
            f"{self.url}/v1/devices/{self.device_id}/chain/verify",
            headers={"Authorization": f"Bearer {self.lender_key}"},
            timeout=30,
        )
        r.raise_for_status()
        return dict(r.json())
