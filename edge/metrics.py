"""`/healthz` (JSON) and Prometheus `/metrics` on a local port.

Uses its own CollectorRegistry (not the process-global one) so several apps in one process (tests)
do not collide. The server is a stdlib ThreadingHTTPServer on a daemon thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("edge.metrics")


class EdgeMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fps = Gauge("flockid_edge_camera_fps", "Processed frames per second", ["camera"], registry=r)
        self.inference_ms = Gauge("flockid_edge_inference_ms", "Pipeline time per frame (EMA)", ["camera"], registry=r)
        self.queue_depth = Gauge(
            "flockid_edge_queue_depth", "Frames waiting in the latest-frame slot", ["camera"], registry=r
        )
        self.connected = Gauge(
            "flockid_edge_camera_connected", "1 when the camera delivers frames", ["camera"], registry=r
        )
        self.frames_seen = Counter("flockid_edge_frames_seen", "Frames read from the camera", ["camera"], registry=r)
        self.frames_processed = Counter(
            "flockid_edge_frames_processed", "Frames through the pipeline", ["camera"], registry=r
        )
        self.frames_dropped = Counter("flockid_edge_frames_dropped", "Stale frames dropped", ["camera"], registry=r)
        self.reconnects = Counter("flockid_edge_camera_reconnects", "Camera reopen count", ["camera"], registry=r)
        self.corrupt = Counter("flockid_edge_corrupt_frames", "Corrupt frames discarded", ["camera"], registry=r)
        self.outbox_backlog = Gauge(
            "flockid_edge_outbox_backlog", "Documents not yet acknowledged by the API", registry=r
        )
        self.last_upload = Gauge(
            "flockid_edge_last_upload_timestamp_seconds",
            "Wall time of the last acknowledged upload",
            registry=r,
        )
        self.upload_errors = Counter("flockid_edge_upload_errors", "Failed upload attempts", registry=r)
        self.reports = Counter(
            "flockid_edge_documents_written", "Documents committed to the outbox", ["kind"], registry=r
        )
        self.upload_blocked = Gauge(
            "flockid_edge_upload_blocked", "1 when a chain conflict stopped uploads", registry=r
        )

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class MetricsServer:
    """Serves /healthz from health() and /metrics from EdgeMetrics."""

    def __init__(self, metrics: EdgeMetrics, health: Callable[[], dict[str, Any]], host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body = metrics.render()
                    self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
                elif self.path.split("?")[0] == "/healthz":
                    try:
                        doc = health()
                    except Exception as exc:  # health must answer even when the app is broken
                        doc = {"ok": False, "error": repr(exc)}
                    self._send(200 if doc.get("ok") else 503, json.dumps(doc).encode(), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics %s", format % args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self.server.shutdown()
        self.server.server_close()
