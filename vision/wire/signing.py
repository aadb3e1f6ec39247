"""Ed25519 signatures over canonical payload bytes."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vision.wire.canonical import canonical_bytes
from vision.wire.schema import SignedEnvelope


class SignatureError(ValueError):
    """The envelope's signature does not verify, or its key is not the expected one."""


def generate_keypair() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names the key in envelopes."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a PEM private key readable by its owner only (0600), refusing to overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: key file exists; refusing to overwrite a device identity")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = Path(path).read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ValueError(f"public key is not valid PEM: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("public key is not Ed25519")
    return key


def sign_payload(payload: dict[str, Any], key: Ed25519PrivateKey) -> SignedEnvelope:
    sig = key.sign(canonical_bytes(payload))
    return SignedEnvelope(payload=payload, signature=base64.b64encode(sig).decode(), key_id=key_id(key))


def verify_envelope(envelope: SignedEnvelope, public_key: Ed25519PublicKey) -> str:
    """Raise SignatureError unless the envelope was signed by public_key over its exact payload.

    Returns the payload hash (hex SHA-256 of the canonical bytes), so a receiver serialises once."""
    if envelope.key_id != key_id(public_key):
        raise SignatureError(f"envelope key_id {envelope.key_id} is not the registered key {key_id(public_key)}")
    try:
        sig = base64.b64decode(envelope.signature, validate=True)
    except ValueError as exc:
        raise SignatureError(f"signature is not valid base64: {exc}") from exc
    data = canonical_bytes(envelope.payload)
    try:
        public_key.verify(sig, data)
    except InvalidSignature as exc:
        raise SignatureError("signature does not match the payload") from exc
    return hashlib.sha256(data).hexdigest()
