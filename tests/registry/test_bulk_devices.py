"""Bulk registration: many devices in one request, all or nothing, inside the scope."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from yujing.api.auth import Role, create_token

pytestmark = pytest.mark.integration


def device(ent: str, n: int, **extra: object) -> dict[str, object]:
    return {
        "enterprise": ent, "device": f"gd-{n}", "kind": "gas_detector", "site": "s1",
        "tags": {"location": "coal_face"}, "points": {"ch4": {"unit": "%CH4"}}, **extra,
    }  # fmt: skip


async def test_bulk_registration_is_all_or_nothing_and_scoped(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = {"Authorization": f"Bearer {await create_token(pool, 'a', Role.ADMIN, ['*'])}"}
    body = {"devices": [device("e1", n) for n in range(500)]}
    r = await client.post("/api/v1/devices/bulk", json=body, headers=admin)
    assert r.status_code == 200 and r.json() == {"registered": 500}
    one = (await client.get("/api/v1/devices/e1/gd-499", headers=admin)).json()
    assert one["tags"] == {"location": "coal_face"} and one["site"] == "s1"
    # a second run replaces; a duplicate or bad record refuses everything
    body["devices"][0] = device("e1", 0, site="s2")
    assert (await client.post("/api/v1/devices/bulk", json=body, headers=admin)).is_success
    assert (await client.get("/api/v1/devices/e1/gd-0", headers=admin)).json()["site"] == "s2"
    dup = {"devices": [device("e2", 1), device("e2", 1)]}
    r = await client.post("/api/v1/devices/bulk", json=dup, headers=admin)
    assert r.status_code == 422 and "twice" in r.text
    bad = {"devices": [device("e2", 1), device("e2", 2, kind="not a kind!")]}
    assert (await client.post("/api/v1/devices/bulk", json=bad, headers=admin)).status_code == 422
    assert (await client.get("/api/v1/devices/e2/gd-1", headers=admin)).status_code == 404
    e1_admin = {"Authorization": f"Bearer {await create_token(pool, 'b', Role.ADMIN, ['e1'])}"}
    r = await client.post("/api/v1/devices/bulk", json=dup | {"devices": [device("e2", 1)]},
                          headers=e1_admin)  # fmt: skip
    assert r.status_code == 403
