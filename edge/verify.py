"""Offline chain verification of reports.jsonl or an outbox file (`flockid edge verify`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vision.wire import SignedEnvelope, load_public_key, verify_chain


def read_envelopes(path: Path) -> list[SignedEnvelope]:
    """Envelopes from an outbox (.sqlite/.db) or JSON lines (one SignedEnvelope per line)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    with open(path, "rb") as fh:
        magic = fh.read(16)
    if magic.startswith(b"SQLite format 3"):
        from edge.outbox import open_readonly_envelopes

        return open_readonly_envelopes(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SignedEnvelope.model_validate(json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: not a SignedEnvelope: {str(exc)[:300]}") from exc
    return out


def verify_file(path: Path, public_key_pem: Path) -> dict[str, Any]:
    pub = load_public_key(Path(public_key_pem).read_bytes())
    envs = read_envelopes(path)
    problems = verify_chain(envs, pub)
    seqs = [e.payload.get("seq") for e in envs]
    kinds = [str(e.payload.get("kind")) for e in envs]
    return {
        "ok": not problems and bool(envs),
        "documents": len(envs),
        "flock_reports": kinds.count("flock_report"),
        "registry_snapshots": kinds.count("registry_snapshot"),
        "first_seq": seqs[0] if seqs else None,
        "last_seq": seqs[-1] if seqs else None,
        "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in problems],
    }
