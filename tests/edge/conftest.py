"""Edge test fixtures: device keys and a fake-API server process (helpers live in edge_testkit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_testkit import FakeApi, RealApi, free_port


@pytest.fixture()
def device(tmp_path: Path) -> dict[str, Any]:
    from edge.keys import init_device

    ident = init_device(tmp_path / "keys", "dev-test-1", farm_id="farm-1")
    return {"key_path": ident.private_key_path, "pub_path": ident.public_key_path, "device_id": "dev-test-1"}


@pytest.fixture()
def fake_api(tmp_path: Path, device: dict[str, Any]) -> Iterator[FakeApi]:
    api = FakeApi(free_port(), tmp_path / "api.sqlite", device["pub_path"])
    yield api
    api.stop()


@pytest.fixture()
def real_api(device: dict[str, Any]) -> Iterator[RealApi]:
    """The real API server process on a fresh PostgreSQL database, this device registered."""
    api = RealApi(device["device_id"], Path(device["pub_path"]).read_text())
    try:
        api.start()
        yield api
    finally:
        api.drop()
