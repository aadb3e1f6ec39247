"""Report wire format shared by edge (writer) and api (reader); neither imports the other."""

from vision.wire.canonical import canonical_bytes, payload_hash
from vision.wire.chain import ChainProblem, verify_chain
from vision.wire.schema import (
    SCHEMA_VERSION,
    AlertItem,
    BirdPrototype,
    BirdSummary,
    CameraStatus,
    FlockReport,
    FrameFingerprint,
    Headcount,
    RegistrySnapshot,
    SignedEnvelope,
    Snapshot,
    parse_payload,
)
from vision.wire.signing import (
    SignatureError,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign_payload,
    verify_envelope,
)

__all__ = [
    "SCHEMA_VERSION",
    "AlertItem",
    "BirdPrototype",
    "BirdSummary",
    "CameraStatus",
    "ChainProblem",
    "FlockReport",
    "FrameFingerprint",
    "Headcount",
    "RegistrySnapshot",
    "SignatureError",
    "SignedEnvelope",
    "Snapshot",
    "canonical_bytes",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_payload",
    "payload_hash",
    "public_key_pem",
    "sign_payload",
    "verify_chain",
    "verify_envelope",
]
