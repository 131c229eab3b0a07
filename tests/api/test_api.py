"""The HTTP API on a real PostgreSQL: roles, enterprise scopes, problem+json errors."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from yujing.alerts.store import AlertStore
from yujing.api.auth import Role, create_token
from yujing.ingest.bus import MemoryBus, Topics
from yujing.levels import Level
from yujing.rules.transition import Transition

pytestmark = pytest.mark.integration

DEVICE = {
    "kind": "gas_detector",
    "site": "face-1",
    "tags": {"sector": "coal", "location": "coal_face"},
    "points": {"ch4": {"unit": "%CH4", "interval_s": 15}},
}


def now() -> datetime:
    return datetime(2025, 11, 23, 8, 0, tzinfo=UTC)


async def token(pool: asyncpg.Pool, role: Role, *enterprises: str) -> dict[str, str]:
    t = await create_token(pool, f"{role.name.lower()}-user", role, list(enterprises))
    return {"Authorization": f"Bearer {t}"}


def is_problem(r: httpx.Response, status: int) -> bool:
    body = r.json()
    return (
        r.status_code == status
        and r.headers["content-type"] == "application/problem+json"
        and body["status"] == status
        and bool(body["title"])
    )


async def test_auth_is_required_and_roles_are_enforced(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    assert is_problem(await client.get("/api/v1/alerts"), 401)
    bad = {"Authorization": "Bearer nope"}
    assert is_problem(await client.get("/api/v1/alerts", headers=bad), 401)
    viewer = await token(pool, Role.VIEWER, "*")
    assert (await client.get("/api/v1/alerts", headers=viewer)).status_code == 200
    r = await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=viewer)
    assert is_problem(r, 403)
    admin = await token(pool, Role.ADMIN, "*")
    assert (
        await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=admin)
    ).status_code == 200


async def test_registry_and_sites(
    client: httpx.AsyncClient, pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    changes = bus.consumer([Topics.REGISTRY], None)
    r = await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=admin)
    assert r.status_code == 200 and r.json()["tags"]["location"] == "coal_face"
    got = (await client.get("/api/v1/devices/ent1/gd-1", headers=admin)).json()
    assert got["points"]["ch4"] == {"unit": "%CH4", "interval_s": 15.0}
    site = (await client.get("/api/v1/sites/ent1/face-1", headers=admin)).json()
    assert site["state"] == "operating"  # created with the device
    r = await client.patch("/api/v1/sites/ent1/face-1", json={"state": "halted"}, headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "halted"
    keys = [rec.key for rec in await changes.next_batch(timeout_s=1)]
    assert keys == [b"device:ent1/gd-1", b"site:ent1/face-1"]
    r = await client.patch("/api/v1/sites/ent1/face-1", json={"state": "asleep"}, headers=admin)
    assert is_problem(r, 422) and r.json()["errors"]
    r = await client.put("/api/v1/devices/ent1/bad id", json=DEVICE, headers=admin)
    assert r.status_code in (404, 422)
    r = await client.put("/api/v1/devices/ent1/gd-2", json={**DEVICE, "site": "a b"}, headers=admin)
    assert is_problem(r, 422)


async def test_enterprise_scope(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, now)
    for ent in ("ent1", "ent2"):
        await store.apply([
            Transition(
                key=f"{ent}/d/ch4/r", enterprise=ent, site="s", device="d", point="ch4",
                rule_id="r", rule_version=1, kind="threshold", from_level=0,
                to_level=int(Level.RED), ts=1_763_856_000_000, value=2.0, threshold=1.5,
            )
        ])  # fmt: skip
    ent1_operator = await token(pool, Role.OPERATOR, "ent1")
    items = (await client.get("/api/v1/alerts", headers=ent1_operator)).json()["items"]
    assert [a["enterprise"] for a in items] == ["ent1"]
    r = await client.get("/api/v1/alerts", params={"enterprise": "ent2"}, headers=ent1_operator)
    assert r.json()["items"] == []
    admin = await token(pool, Role.ADMIN, "*")
    all_items = (await client.get("/api/v1/alerts", headers=admin)).json()["items"]
    other = next(a for a in all_items if a["enterprise"] == "ent2")
    assert is_problem(await client.get(f"/api/v1/alerts/{other['id']}", headers=ent1_operator), 404)
    r = await client.post(f"/api/v1/alerts/{other['id']}/ack", json={}, headers=ent1_operator)
    assert is_problem(r, 404)
    viewer = await token(pool, Role.VIEWER, "*")
    r = await client.post(f"/api/v1/alerts/{other['id']}/ack", json={}, headers=viewer)
    assert is_problem(r, 403)
    r = await client.post(
        f"/api/v1/alerts/{other['id']}/close", json={"disposal": ""}, headers=admin
    )
    assert is_problem(r, 422)
    r = await client.post(
        f"/api/v1/alerts/{other['id']}/close", json={"disposal": "ok"}, headers=admin
    )
    assert is_problem(r, 409)
    r = await client.get("/api/v1/alerts", params={"min_level": "purple"}, headers=admin)
    assert is_problem(r, 422)


async def test_tokens_health_and_unknown_routes(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    r = await client.post(
        "/api/v1/tokens", json={"name": "wall", "role": "viewer", "enterprises": ["ent1"]},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201
    wall = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.get("/api/v1/alerts", headers=wall)).status_code == 200
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json()["checks"] == {"database": True}
    assert is_problem(await client.get("/api/v1/nothing-here", headers=admin), 404)


async def test_readings_raw_and_bucketed(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    import numpy as np

    from yujing.alerts.readings import ReadingWriter
    from yujing.ingest.batch import DeviceInfo, ReadingBatch

    admin = await token(pool, Role.ADMIN, "*")
    await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=admin)
    t0 = 1_763_856_000_000  # 2025-11-23T00:00:00Z
    values = [0.2, 0.4, 0.6, 9.9, 1.0]  # the 9.9 is calibrating: stored, not aggregated
    await ReadingWriter(pool).write(
        ReadingBatch(
            [DeviceInfo("ent1", "gd-1", "gas_detector", "face-1")], ["ch4"],
            np.zeros(5, np.int32), np.zeros(5, np.int32),
            np.array([t0, t0 + 20_000, t0 + 40_000, t0 + 50_000, t0 + 70_000], np.int64),
            np.array(values), np.array([0, 0, 0, 2, 0], np.uint8),
        )
    )  # fmt: skip
    path = "/api/v1/devices/ent1/gd-1/readings"
    base = {"point": "ch4", "since": "2025-11-23T00:00:00Z", "until": "2025-11-23T00:05:00Z"}
    raw = (await client.get(path, params=base, headers=admin)).json()["items"]
    assert [r["value"] for r in raw] == values
    assert raw[3]["quality"] == "calibrating"
    buckets = (await client.get(path, params={**base, "bucket": "1m"}, headers=admin)).json()
    got = [(b["ts"], round(b["avg"], 6), b["min"], b["max"], b["count"]) for b in buckets["items"]]
    assert got == [
        ("2025-11-23T00:00:00+00:00", 0.4, 0.2, 0.6, 3),
        ("2025-11-23T00:01:00+00:00", 1.0, 1.0, 1.0, 1),
    ]
    r = await client.get(path, params={**base, "bucket": "1 week"}, headers=admin)
    assert is_problem(r, 422)
    other = await token(pool, Role.VIEWER, "ent2")
    assert is_problem(await client.get(path, params=base, headers=other), 404)
