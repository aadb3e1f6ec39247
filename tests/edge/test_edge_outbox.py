"""Outbox (SQLite chain), report payloads, offline verify, and the uploader against a real HTTP server."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from edge_testkit import API_KEY, FakeApi

from edge.keys import load_device_key
from edge.outbox import Outbox
from edge.reports import CameraWindow, flock_report_payload, header, registry_snapshot_payload, sign
from edge.uploader import Uploader
from vision.wire import FlockReport, RegistrySnapshot, load_public_key, payload_hash, verify_chain

FIELDS = {
    "headcount": {"value": 10, "low": 9, "high": 12, "instantaneous_max": 11},
    "birds": [
        {
            "bird_id": "bird-000001",
            "identity_confidence": 0.93,
            "last_seen": 1_700_000_100.0,
            "activity_bl_per_h": 20.0,
            "weight_g": 1500.0,
            "health": ["ok"],
            "cameras": ["cam1"],
        },
    ],
    "alerts": [],
    "signals": {"activity_index": 0.4},
}


def _builder(key: Any, *, t0: float = 1_700_000_000.0, snapshot: bytes | None = None) -> Any:
    def build(seq: int, prev: str | None) -> Any:
        cam = CameraWindow(
            "cam1",
            frames_seen=50,
            frames_processed=25,
            fps=5.0,
            fingerprints=[(t0 + 1, "00ff00ff00ff00ff")],
            snapshot_jpeg=snapshot,
            snapshot_ts=t0 + 2,
            alerts=[{"kind": "camera_reconnected", "at": t0 + 3, "severity": "info", "message": "x"}],
        )
        payload = flock_report_payload(
            header("dev-test-1", "farm-1", seq, prev),
            window_start=t0 + 300 * seq,
            window_end=t0 + 300 * (seq + 1),
            summary_fields=FIELDS,
            cameras=[cam],
            models={"detector": "d" * 64},
        )
        return sign(payload, key)

    return build


@pytest.fixture()
def key(device: dict[str, Any]) -> Any:
    return load_device_key(device["key_path"])


@pytest.fixture()
def pub(device: dict[str, Any]) -> Any:
    return load_public_key(Path(device["pub_path"]).read_bytes())


def test_outbox_chain_and_payload_roundtrip(tmp_path: Path, key: Any, pub: Any) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    assert ob.head() == (-1, None)
    rows = [ob.append(_builder(key, snapshot=b"\xff\xd8jpeg")) for _ in range(5)]
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4]
    envs = ob.envelopes()
    assert verify_chain(envs, pub) == []
    assert envs[0].payload["prev_hash"] is None
    assert envs[3].payload["prev_hash"] == payload_hash(envs[2].payload)
    doc = FlockReport.model_validate(envs[1].payload)
    assert doc.headcount.value == 10 and doc.frames_seen == 50 and doc.cameras[0].fps == 5.0
    assert doc.fingerprints[0].phash == "00ff00ff00ff00ff"
    assert base64.b64decode(doc.snapshots[0].jpeg_b64) == b"\xff\xd8jpeg"
    assert doc.alerts[0].kind == "camera_reconnected" and doc.alerts[0].camera_id == "cam1"
    assert ob.head() == (4, payload_hash(envs[4].payload))
    # a fresh connection (another process after a restart) sees the same committed chain
    ob2 = Outbox(tmp_path / "o.sqlite")
    assert ob2.backlog() == 5 and ob2.head()[0] == 4


def test_outbox_append_is_atomic(tmp_path: Path, key: Any) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.append(_builder(key))

    def broken(seq: int, prev: str | None) -> Any:
        raise RuntimeError("crash while building")

    with pytest.raises(RuntimeError):
        ob.append(broken)
    with pytest.raises(ValueError, match="seq=1"):
        ob.append(lambda s, p: _builder(key)(s + 1, p))  # wrong seq is refused, nothing stored
    assert ob.head()[0] == 0 and ob.backlog() == 1
    assert ob.append(_builder(key)).seq == 1


def test_outbox_concurrent_writers_never_fork(tmp_path: Path, key: Any, pub: Any) -> None:
    ob = Outbox(tmp_path / "o.sqlite")

    def writer() -> None:
        for _ in range(15):
            ob.append(_builder(key))

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    envs = ob.envelopes()
    assert [e.payload["seq"] for e in envs] == list(range(45))
    assert verify_chain(envs, pub) == []


def test_outbox_prune_keeps_head_and_pending(tmp_path: Path, key: Any, pub: Any) -> None:
    ob = Outbox(tmp_path / "o.sqlite", keep_sent=2, min_free_bytes=0)
    for _ in range(6):
        ob.append(_builder(key))
    for s in range(5):
        ob.mark_sent(s)
    assert ob.prune() == 3
    assert [r.seq for r in ob.rows()] == [3, 4, 5]
    nxt = ob.append(_builder(key))
    assert nxt.seq == 6
    assert verify_chain(ob.envelopes(), pub) == []
    assert ob.last_sent_at() is not None
    # Disk pressure: every sent row goes, pending rows (reports) never do.
    ob.min_free_bytes = 1 << 62
    assert ob.pressure()
    ob.prune()
    assert [r.seq for r in ob.rows()] == [5, 6]
    assert ob.counts() == {"pending": 2, "sent": 0, "conflict": 0}


def test_registry_snapshot_payload_both_shapes(key: Any) -> None:
    vec = np.arange(8, dtype=np.float32) + 1
    ours = {
        "embedder": "e" * 64,
        "birds": [
            {
                "bird_id": "bird-000007",
                "prototype": vec,
                "first_seen": 1.7e9,
                "last_seen": 1.7e9 + 10,
                "observations": 3,
            }
        ],
    }
    p = registry_snapshot_payload(header("dev", "farm", 0, None), ours)
    snap = RegistrySnapshot.model_validate(p)
    got = np.frombuffer(base64.b64decode(snap.birds[0].prototype_f16_b64), "<f2").astype(np.float32)
    assert np.allclose(got, vec / np.linalg.norm(vec), atol=1e-3) and snap.birds[0].dim == 8
    pre = {"embedder": "f" * 64, "birds": [{**snap.birds[0].model_dump(), "bird_id": "bird-000008"}]}
    p2 = registry_snapshot_payload(header("dev", "farm", 1, "a" * 64), pre)
    assert p2["birds"][0]["prototype_f16_b64"] == snap.birds[0].prototype_f16_b64
    assert p2["embedder"] == "f" * 64


def test_verify_cli_on_outbox_and_jsonl(tmp_path: Path, key: Any, device: dict[str, Any]) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    for _ in range(4):
        ob.append(_builder(key))
    ob.close()
    cmd = [sys.executable, "-m", "edge", "verify", "--public-key", str(device["pub_path"]), "--json"]
    r = subprocess.run([*cmd, str(tmp_path / "o.sqlite")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] and res["documents"] == 4 and res["problems"] == []
    envs = Outbox(tmp_path / "o.sqlite").envelopes()
    envs[2].payload["headcount"]["value"] = 11  # tamper with a signed report
    lines = [e.model_dump_json() for e in envs]
    del lines[3]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    r = subprocess.run([*cmd, str(tmp_path / "r.jsonl")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    kinds = [p["kind"] for p in json.loads(r.stdout)["problems"]]
    assert kinds == ["bad_signature"]  # the edited report no longer matches its signature
    lines2 = [e.model_dump_json() for e in Outbox(tmp_path / "o.sqlite").envelopes()]
    del lines2[1]
    (tmp_path / "g.jsonl").write_text("\n".join(lines2) + "\n")
    r = subprocess.run([*cmd, str(tmp_path / "g.jsonl")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and [p["kind"] for p in json.loads(r.stdout)["problems"]] == ["gap"]


# -- uploader ----------------------------------------------------------------------------------------
def test_uploader_in_order_idempotent_and_gap_requeue(tmp_path: Path, key: Any, fake_api: FakeApi) -> None:
    fake_api.start()
    ob = Outbox(tmp_path / "o.sqlite")
    for _ in range(3):
        ob.append(_builder(key))
    up = Uploader(ob, fake_api.url, API_KEY, backoff_base_s=0.01, backoff_max_s=0.05)
    assert up.drain() == 3 and ob.backlog() == 0
    # crash between "API stored it" and "outbox marked it sent": the row is sent again -> 200 duplicate
    ob.requeue_from(2)
    assert up.drain() == 1 and up.last_result is not None and up.last_result.outcome == "duplicate"
    # API lost seq >= 3 (or the box did): a gap answer makes the uploader re-send from expected_seq
    for _ in range(3):
        ob.append(_builder(key))
    ob.mark_sent(3)
    ob.mark_sent(4)
    up.drain()
    assert ob.backlog() == 0
    stored = fake_api.reports()
    assert [e["payload"]["seq"] for e in stored] == list(range(6))
    assert fake_api.stats() == {"201": 6, "200": 1, "409": 1}


def test_uploader_conflict_blocks_and_bad_key_retries_at_max(tmp_path: Path, key: Any, fake_api: FakeApi) -> None:
    fake_api.start()
    ob1 = Outbox(tmp_path / "a.sqlite")
    ob1.append(_builder(key))
    Uploader(ob1, fake_api.url, API_KEY).drain()
    ob2 = Outbox(tmp_path / "b.sqlite")  # a second outbox for the same device: a forked chain
    ob2.append(_builder(key, t0=1_800_000_000.0))
    up = Uploader(ob2, fake_api.url, API_KEY, backoff_max_s=7.0)
    assert up.drain() == 0
    assert up.blocked is not None and "conflicting-duplicate" in up.blocked
    assert ob2.counts()["conflict"] == 1
    ob3 = Outbox(tmp_path / "c.sqlite")
    ob3.append(_builder(key))
    bad = Uploader(ob3, fake_api.url, "wrong-key-123456", backoff_max_s=7.0)
    result, wait = bad.send(ob3.next_unsent())  # type: ignore[arg-type]
    assert result.outcome == "rejected" and result.status == 401 and wait == 7.0
    assert ob3.backlog() == 1


def test_uploader_backs_off_on_5xx_429_and_transport_errors(tmp_path: Path, key: Any) -> None:
    answers = iter([503, 429, "down", 201])

    def handler(request: httpx.Request) -> httpx.Response:
        a = next(answers)
        if a == "down":
            raise httpx.ConnectError("refused", request=request)
        headers = {"Retry-After": "3"} if a == 429 else {}
        return httpx.Response(int(a), json={"type": "x"}, headers=headers)

    ob = Outbox(tmp_path / "o.sqlite")
    ob.append(_builder(key))
    client = httpx.Client(transport=httpx.MockTransport(handler))
    up = Uploader(ob, "http://api.test", API_KEY, backoff_base_s=0.5, backoff_max_s=10.0, client=client)
    waits = []
    for _ in range(3):
        assert up.drain() == 0
        waits.append(up.next_wait)
    assert 0 < waits[0] <= 0.5 and waits[1] >= 3.0 and 0 < waits[2] <= 2.0
    assert ob.next_unsent() is not None and ob.next_unsent().attempts == 3  # type: ignore[union-attr]
    assert up.drain() == 1 and up.failures == 0 and ob.backlog() == 0
