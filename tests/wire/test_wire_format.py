from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vision.wire import (
    FlockReport,
    SignatureError,
    SignedEnvelope,
    canonical_bytes,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    parse_payload,
    payload_hash,
    public_key_pem,
    sign_payload,
    verify_chain,
    verify_envelope,
)
from vision.wire.signing import write_private_key

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def report(seq: int, prev: str | None, headcount: int = 40) -> dict[str, Any]:
    doc = FlockReport(
        device_id="dev-1",
        farm_id="farm-1",
        seq=seq,
        prev_hash=prev,
        device_clock=T0,
        monotonic_s=10.0 * seq,
        window_start=T0,
        window_end=T0,
        camera_ids=["cam0"],
        frames_seen=100,
        frames_processed=50,
        headcount={"value": headcount, "low": headcount - 1, "high": headcount + 1},
    )
    return doc.model_dump(mode="json")


def chain(n: int, key: Any) -> list[SignedEnvelope]:
    out, prev = [], None
    for seq in range(n):
        payload = report(seq, prev)
        out.append(sign_payload(payload, key))
        prev = payload_hash(payload)
    return out


def test_canonical_bytes_are_order_independent_and_reject_nan() -> None:
    assert canonical_bytes({"b": 1, "a": [1.5, "é"]}) == canonical_bytes({"a": [1.5, "é"], "b": 1})
    assert canonical_bytes({"a": 1}) == b'{"a":1}'
    with pytest.raises(ValueError, match="NaN"):
        canonical_bytes({"a": float("nan")})


def test_schema_rules() -> None:
    parse_payload(report(0, None))
    with pytest.raises(ValidationError, match="seq 0"):
        parse_payload(report(0, "a" * 64))
    with pytest.raises(ValidationError, match="must carry prev_hash"):
        parse_payload(report(1, None))
    bad = report(0, None)
    bad["headcount"] = {"value": 50, "low": 40, "high": 45}
    with pytest.raises(ValidationError, match="low <= value <= high"):
        parse_payload(bad)
    extra = report(0, None)
    extra["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        parse_payload(extra)
    with pytest.raises(ValueError, match="payload.kind"):
        parse_payload({"kind": "other"})


def test_sign_verify_and_tamper() -> None:
    key = generate_keypair()
    env = sign_payload(report(0, None), key)
    verify_envelope(env, key.public_key())
    edited = copy.deepcopy(env.payload)
    edited["headcount"]["value"] = 39
    with pytest.raises(SignatureError, match="does not match"):
        verify_envelope(SignedEnvelope(payload=edited, signature=env.signature, key_id=env.key_id), key.public_key())
    other = generate_keypair()
    with pytest.raises(SignatureError, match="not the registered key"):
        verify_envelope(env, other.public_key())
    forged = sign_payload(report(0, None), other)
    forged = SignedEnvelope(payload=forged.payload, signature=forged.signature, key_id=key_id(key))
    with pytest.raises(SignatureError):
        verify_envelope(forged, key.public_key())


def test_key_files(tmp_path: Path) -> None:
    key = generate_keypair()
    path = tmp_path / "device.key"
    write_private_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key_id(load_private_key(path)) == key_id(key)
    assert key_id(load_public_key(public_key_pem(key))) == key_id(key)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_private_key(key, path)
    with pytest.raises(ValueError, match="PEM"):
        load_public_key("nope")


def test_chain_verification_finds_each_problem() -> None:
    key = generate_keypair()
    envs = chain(5, key)
    assert verify_chain(envs, key.public_key()) == []
    dropped = envs[:2] + envs[3:]
    assert [(p.seq, p.kind) for p in verify_chain(dropped, key.public_key())] == [(3, "gap")]
    dup = [*envs[:3], envs[2], *envs[3:]]
    assert [p.kind for p in verify_chain(dup, key.public_key())] == ["duplicate"]
    swapped = [envs[0], envs[2], envs[1], envs[3]]
    kinds = [p.kind for p in verify_chain(swapped, key.public_key())]
    assert "gap" in kinds and "reordered" in kinds
    # A re-signed edit keeps a valid signature but breaks the link to the next report.
    edited = copy.deepcopy(envs[1].payload)
    edited["frames_seen"] = 1
    resigned = [envs[0], sign_payload(edited, key), *envs[2:]]
    assert [(p.seq, p.kind) for p in verify_chain(resigned, key.public_key())] == [(2, "prev_hash_mismatch")]
    tampered = SignedEnvelope(payload=edited, signature=envs[1].signature, key_id=envs[1].key_id)
    assert [p.kind for p in verify_chain([envs[0], tampered], key.public_key())] == ["bad_signature"]


def test_naive_timestamps_are_refused() -> None:
    payload = report(0, None)
    payload["window_start"] = "2026-11-01T12:00:00"
    with pytest.raises(ValidationError, match="timezone"):
        parse_payload(payload)
