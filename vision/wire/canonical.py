"""Canonical serialisation: the exact bytes that are hashed and signed.

JSON with sorted keys, no insignificant whitespace, UTF-8, and no NaN/Infinity (they have no
portable JSON form). Floats use Python's shortest round-trip repr, which is deterministic for a
given value; writers should round floats to the precision they mean before signing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_bytes(payload: Any) -> bytes:
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"payload is not canonicalisable (NaN or Infinity present?): {exc}") from exc
    return text.encode("utf-8")


def payload_hash(payload: Any) -> str:
    """Hex SHA-256 of the canonical bytes; the next report's prev_hash."""
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()
