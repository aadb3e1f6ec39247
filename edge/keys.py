"""Device identity: an Ed25519 key pair created once by `flockid edge init`.

The private key file is 0600 and never overwritten; the public key PEM is printed and written
next to it so it can be registered with the API (`POST /v1/devices`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    private_key_path: Path
    public_key_path: Path
    public_key_pem: str
    key_id: str


def init_device(out_dir: Path, device_id: str, *, farm_id: str | None = None) -> DeviceIdentity:
    """Create `device.key` (0600), `device.pub.pem` and `device.json` in out_dir.

    Refuses to overwrite an existing key: a new key is a new device identity for the lender.
    """
    from vision.wire.signing import generate_keypair, key_id, public_key_pem, write_private_key

    if not device_id or len(device_id) > 128:
        raise ValueError(f"device_id must be 1..128 characters, got {device_id!r}")
    out_dir = Path(out_dir)
    key_path = out_dir / "device.key"
    pub_path = out_dir / "device.pub.pem"
    key = generate_keypair()
    write_private_key(key, key_path)
    pem = public_key_pem(key)
    pub_path.write_text(pem)
    meta = {"device_id": device_id, "key_id": key_id(key), "public_key_pem": pem}
    if farm_id:
        meta["farm_id"] = farm_id
    (out_dir / "device.json").write_text(json.dumps(meta, indent=2) + "\n")
    return DeviceIdentity(device_id, key_path, pub_path, pem, key_id(key))


def load_device_key(path: Path) -> Ed25519PrivateKey:
    """Load the private key, refusing one that others can read (a leaked key forges reports)."""
    from vision.wire.signing import load_private_key

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: device key not found; create it with `flockid edge init`")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path}: device key has mode {oct(mode)}; it must be 0600 (chmod 600 {path})")
    return load_private_key(path)
