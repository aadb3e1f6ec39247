"""Offline verification of a device's hash chain (used by `flockid edge verify` and the API audit)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vision.wire.canonical import payload_hash
from vision.wire.schema import SignedEnvelope, parse_payload
from vision.wire.signing import SignatureError, verify_envelope


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    kind: str  # bad_signature | bad_schema | gap | reordered | duplicate | prev_hash_mismatch | device_mismatch
    detail: str


def verify_chain(envelopes: Iterable[SignedEnvelope], public_key: Ed25519PublicKey) -> list[ChainProblem]:
    """Every problem in the chain, in order; an empty list means signatures and links all hold."""
    problems: list[ChainProblem] = []
    prev_seq: int | None = None
    prev_hash: str | None = None
    device: str | None = None
    for env in envelopes:
        seq = env.payload.get("seq")
        seq_i = seq if isinstance(seq, int) else None
        try:
            verify_envelope(env, public_key)
        except SignatureError as exc:
            problems.append(ChainProblem(seq_i, "bad_signature", str(exc)))
            continue
        try:
            doc = parse_payload(env.payload)
        except ValueError as exc:
            problems.append(ChainProblem(seq_i, "bad_schema", str(exc)[:500]))
            continue
        if device is None:
            device = doc.device_id
        elif doc.device_id != device:
            problems.append(ChainProblem(doc.seq, "device_mismatch", f"{doc.device_id} != {device}"))
        if prev_seq is not None:
            if doc.seq == prev_seq:
                problems.append(ChainProblem(doc.seq, "duplicate", f"seq {doc.seq} appears twice"))
                continue
            if doc.seq < prev_seq:
                problems.append(ChainProblem(doc.seq, "reordered", f"seq {doc.seq} after {prev_seq}"))
                continue
            if doc.seq > prev_seq + 1:
                problems.append(ChainProblem(doc.seq, "gap", f"seq {prev_seq + 1}..{doc.seq - 1} missing"))
            elif doc.prev_hash != prev_hash:
                problems.append(ChainProblem(doc.seq, "prev_hash_mismatch", "prev_hash does not match seq-1"))
        prev_seq = doc.seq
        prev_hash = payload_hash(env.payload)
    return problems
