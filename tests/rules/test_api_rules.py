"""`/api/v1/rules` on a real PostgreSQL: versions, refusal of invalid rules, publication
on `yj.rules`, backtest over stored readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from yujing.api.auth import Role, create_token
from yujing.ingest.bus import MemoryBus, Topics
from yujing.rules.store import ensure_default_rules

pytestmark = pytest.mark.integration

RULE = {"id": "face-ch4-test", "kind": "threshold", "name": "测试",
        "select": {"device_kind": "gas_detector", "point": "ch4"},
        "levels": {"orange": 1.0, "red": 1.5}}  # fmt: skip


def now() -> datetime:
    return datetime(2025, 11, 23, 8, 0, tzinfo=UTC)


async def headers(pool: asyncpg.Pool, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_token(pool, role.name.lower(), role, ['*'])}"}


async def test_rule_lifecycle_versions_and_publication(
    client: httpx.AsyncClient, pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    admin, viewer = await headers(pool, Role.ADMIN), await headers(pool, Role.VIEWER)
    announced = bus.consumer([Topics.RULES], None)
    assert (await client.post("/api/v1/rules", json=RULE, headers=viewer)).status_code == 403
    r = await client.post("/api/v1/rules", json=RULE, headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 1
    assert (await client.post("/api/v1/rules", json=RULE, headers=admin)).status_code == 409
    r = await client.put(
        f"/api/v1/rules/{RULE['id']}", json=RULE | {"levels": {"orange": 0.9}}, headers=admin
    )
    assert r.json()["version"] == 2 and r.json()["rule"]["levels"] == {"orange": 0.9}
    assert (await client.delete(f"/api/v1/rules/{RULE['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/rules/{RULE['id']}", headers=viewer)).status_code == 404
    hist = (await client.get(f"/api/v1/rules/{RULE['id']}/versions", headers=viewer)).json()
    assert [(h["version"], h["deleted"], h["changed_by"]) for h in hist] == [
        (1, False, "admin"),
        (2, False, "admin"),
        (3, True, "admin"),
    ]
    records = await announced.next_batch(timeout_s=0.5)
    assert [json.loads(r.value)["version"] for r in records] == [1, 2, 3]


async def test_invalid_rules_are_refused_with_each_problem(
    client: httpx.AsyncClient, pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    admin = await headers(pool, Role.ADMIN)
    announced = bus.consumer([Topics.RULES], None)
    bad = RULE | {"levels": {"orange": 2.0, "red": 1.0}, "clear": {"red": 3.0}}
    r = await client.post("/api/v1/rules", json=bad, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "red (1.0) must be ≥ orange (2.0)" in r.json()["detail"]
    r = await client.post("/api/v1/rules", json=RULE | {"levels": {"purple": 1}}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-2:] == ["purple", "[key]"]
    assert await announced.next_batch(timeout_s=0.1) == []


async def test_default_packs_listed_and_backtest(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await ensure_default_rules(pool)
    viewer = await headers(pool, Role.VIEWER)
    ids = {r["id"] for r in (await client.get("/api/v1/rules", headers=viewer)).json()}
    assert {"coal-face-ch4", "chem-h2s", "critical-offline", "tailings-item-red"} <= ids
    await pool.execute(
        """INSERT INTO devices (enterprise, device, kind, site, tags, points)
           VALUES ('ent1', 'gd-1', 'gas_detector', 'face-1', $1, $2)""",
        {"sector": "coal", "location": "coal_face"}, {"ch4": {"unit": "%CH4", "interval_s": 15}},
    )  # fmt: skip
    sid = await pool.fetchval(
        "INSERT INTO reading_series (enterprise, device, point)"
        " VALUES ('ent1', 'gd-1', 'ch4') RETURNING id"
    )
    t0 = datetime(2025, 11, 23, 8, 0, tzinfo=UTC).timestamp()
    await pool.executemany(
        "INSERT INTO readings (ts, series, value, quality) VALUES (to_timestamp($1), $2, $3, 0)",
        [(t0 + i * 15, sid, v) for i, v in enumerate([0.5, 0.85, 1.2, 0.9, 0.3])],
    )
    body = {"since": "2025-11-23T07:00:00+00:00", "until": "2025-11-23T09:00:00+00:00",
            "rule": {"kind": "threshold", "select": {"device_kind": "gas_detector", "point": "ch4"},
                     "levels": {"orange": 1.1}}}  # fmt: skip
    r = await client.post("/api/v1/rules/coal-face-ch4/backtest", json=body, headers=viewer)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["readings"] == 5
    assert [(t["from_level"], t["to_level"]) for t in got["proposed"]] == [
        ("none", "orange"),
        ("orange", "none"),
    ]
    assert [(t["from_level"], t["to_level"]) for t in got["current"]] == [
        ("none", "yellow"),
        ("yellow", "orange"),
        ("orange", "yellow"),
        ("yellow", "none"),
    ]
