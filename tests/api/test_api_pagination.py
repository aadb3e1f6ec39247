"""Keyset pagination (`api.repositories.common.keyset_page`) on ascending and descending, string and
integer keys: every item once, in order, and a cursor only where another page follows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_testkit import T0, DeviceSim, auth, make_tenant, post_report


def _walk(client: Any, path: str, headers: dict[str, str], limit: int) -> tuple[list[dict], list[int]]:
    items: list[dict] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(100):
        page = client.get(path, params={"limit": limit, **({"cursor": cursor} if cursor else {})},
                          headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"items", "next_cursor"}
        items += body["items"]
        sizes.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            return items, sizes
    raise AssertionError(f"{path}: pagination did not end")


def test_keyset_pages_in_both_directions(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    for i in range(5):
        assert post_report(c, dev, dev.flock(T0 + timedelta(hours=i))).status_code == 201
    # Newest first on an integer key (seq); a full last page still ends with a null cursor.
    items, sizes = _walk(c, f"/v1/devices/{dev.device_id}/reports", auth(t.lender_key), 2)
    assert [r["seq"] for r in items] == [4, 3, 2, 1, 0] and sizes == [2, 2, 1]
    items, sizes = _walk(c, f"/v1/devices/{dev.device_id}/reports", auth(t.lender_key), 5)
    assert [r["seq"] for r in items] == [4, 3, 2, 1, 0] and sizes == [5]
    # Three chain refusals of different kinds: three alerts, newest (highest id) first.
    forged = DeviceSim(dev.device_id, dev.farm_id, key=dev.key, seq=dev.seq, prev_hash="0" * 64)
    assert post_report(c, dev, forged.flock(T0 + timedelta(hours=9))).status_code == 409
    gap = DeviceSim(dev.device_id, dev.farm_id, key=dev.key, seq=dev.seq + 3, prev_hash=dev.prev_hash)
    assert post_report(c, dev, gap.flock(T0 + timedelta(hours=9))).status_code == 409
    old = DeviceSim(dev.device_id, dev.farm_id, key=dev.key, seq=1, prev_hash=dev.prev_hash)
    assert post_report(c, dev, old.flock(T0 + timedelta(hours=9))).status_code == 409
    items, sizes = _walk(c, "/v1/alerts", auth(t.lender_key), 1)
    ids = [a["id"] for a in items]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and sizes == [1, 1, 1]
    # Oldest first on a string key.
    items, _ = _walk(c, "/v1/devices", auth(t.lender_key), 1)
    assert [d["id"] for d in items] == [dev.device_id]
    events, _ = _walk(c, "/v1/audit-events", auth(t.lender_key), 2)
    ids = [e["id"] for e in events]
    assert len(ids) >= 4 and ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def test_a_cursor_only_fits_its_kind_of_key(api_env) -> None:
    c = api_env.client
    t = make_tenant(c, api_env.admin_key)
    dev = t.device
    for i in range(3):
        assert post_report(c, dev, dev.flock(T0 + timedelta(hours=i))).status_code == 201
    int_cursor = c.get(f"/v1/devices/{dev.device_id}/reports", params={"limit": 1},
                       headers=auth(t.lender_key)).json()["next_cursor"]
    str_cursor = c.get("/v1/farms", params={"limit": 1}, headers=auth(api_env.admin_key)).json()["next_cursor"]
    assert int_cursor and str_cursor
    r = c.get("/v1/farms", params={"cursor": int_cursor}, headers=auth(t.lender_key))
    assert r.status_code == 422 and r.json()["type"].endswith("invalid-cursor")
    r = c.get(f"/v1/devices/{dev.device_id}/reports", params={"cursor": str_cursor}, headers=auth(t.lender_key))
    assert r.status_code == 422 and r.json()["type"].endswith("invalid-cursor")
