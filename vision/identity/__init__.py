"""The digital ID: a farm-wide registry of birds matched by appearance embeddings (see registry.py)."""

from vision.identity.config import IdentityConfig
from vision.identity.registry import BirdInfo, IdentityRegistry, TrackIdentity, decode_prototype

__all__ = ["BirdInfo", "IdentityConfig", "IdentityRegistry", "TrackIdentity", "decode_prototype"]
