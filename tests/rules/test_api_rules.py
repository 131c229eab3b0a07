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
    page = (await client.get("/api/v1/rules", headers=viewer)).json()
    assert page["next_cursor"] is None
    ids = {r["id"] for r in page["items"]}
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
    assert got["proposed"][0]["at"] == "2025-11-23T08:00:30Z"
    # Proposed: orange from 08:00:30 to 08:00:45; current: yellow 08:00:15 to 08:01:00.
    assert got["proposed_summary"] == {
        "alerts": 1, "by_level": {"blue": 0, "yellow": 0, "orange": 1, "red": 0},
        "time_in_alarm_s": 15.0, "open_at_end": 0,
    }  # fmt: skip
    assert got["current_summary"]["by_level"] == {"blue": 0, "yellow": 2, "orange": 1, "red": 0}
    assert got["difference"]["time_in_alarm_s"] == 15.0 - got["current_summary"]["time_in_alarm_s"]
    assert got["difference"]["alerts"] == 0
    reversed_range = body | {"since": body["until"], "until": body["since"]}
    r = await client.post(
        "/api/v1/rules/coal-face-ch4/backtest", json=reversed_range, headers=viewer
    )
    assert r.status_code == 422 and "since must be before until" in r.json()["detail"]
    naive = body | {"since": "2025-11-23T07:00:00"}
    r = await client.post("/api/v1/rules/coal-face-ch4/backtest", json=naive, headers=viewer)
    assert r.status_code == 422 and "UTC offset" in r.json()["detail"]
    epoch = body | {"since": 1763881200000, "until": 1763888400000}
    r = await client.post("/api/v1/rules/coal-face-ch4/backtest", json=epoch, headers=viewer)
    assert r.status_code == 200 and r.json()["readings"] == 5


async def test_get_edit_put_round_trip_and_version_check(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await headers(pool, Role.ADMIN)
    assert (await client.post("/api/v1/rules", json=RULE, headers=admin)).status_code == 201
    got = (await client.get(f"/api/v1/rules/{RULE['id']}", headers=admin)).json()
    assert got["enterprises"] == ["*"]
    got["rule"]["levels"]["red"] = 1.4
    r = await client.put(f"/api/v1/rules/{RULE['id']}", json=got, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["rule"]["levels"]["red"] == 1.4
    r = await client.put(f"/api/v1/rules/{RULE['id']}", json=got, headers=admin)  # stale: v1
    assert r.status_code == 409 and r.json()["current_version"] == 2


async def test_operators_patch_thresholds_only(
    client: httpx.AsyncClient, pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    admin, operator = await headers(pool, Role.ADMIN), await headers(pool, Role.OPERATOR)
    viewer = await headers(pool, Role.VIEWER)
    await client.post("/api/v1/rules", json=RULE, headers=admin)
    announced = bus.consumer([Topics.RULES], None)
    url = f"/api/v1/rules/{RULE['id']}"
    assert (
        await client.patch(url, json={"levels": {"red": 1.4}}, headers=viewer)
    ).status_code == 403
    r = await client.patch(url, json={"levels": {"red": 1.4}}, headers=operator)
    assert r.status_code == 200, r.text
    assert r.json()["rule"]["levels"] == {"orange": 1.0, "red": 1.4} and r.json()["version"] == 2
    assert r.json()["changed_by"] == "operator"
    r = await client.patch(url, json={"levels": {"orange": None}, "version": 2}, headers=operator)
    assert r.status_code == 200 and r.json()["rule"]["levels"] == {"red": 1.4}
    r = await client.patch(url, json={"select": {"point": "co"}}, headers=operator)
    assert r.status_code == 422 and "select" in r.json()["detail"]
    r = await client.patch(url, json={"levels": {"red": -1, "orange": 2}}, headers=operator)
    assert r.status_code == 422  # the patched rule is validated like any other
    assert [json.loads(x.value)["version"] for x in await announced.next_batch(0.5)] == [1, 2, 3]


async def test_rules_are_scoped_to_enterprises(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    root = await headers(pool, Role.ADMIN)
    ent1 = {"Authorization": f"Bearer {await create_token(pool, 'a1', Role.ADMIN, ['ent1'])}"}
    ent2 = {"Authorization": f"Bearer {await create_token(pool, 'a2', Role.ADMIN, ['ent2'])}"}
    # A scoped admin may not make a global rule, nor one for another enterprise.
    assert (await client.post("/api/v1/rules", json=RULE, headers=ent1)).status_code == 403
    other = RULE | {"enterprises": ["ent2"]}
    assert (await client.post("/api/v1/rules", json=other, headers=ent1)).status_code == 403
    mine = RULE | {"id": "ent1-ch4", "enterprises": ["ent1"]}
    r = await client.post("/api/v1/rules", json=mine, headers=ent1)
    assert r.status_code == 201 and r.json()["enterprises"] == ["ent1"]
    # ent2 neither sees it, nor its history, nor can change or delete it.
    assert (await client.get("/api/v1/rules/ent1-ch4", headers=ent2)).status_code == 404
    assert (await client.get("/api/v1/rules/ent1-ch4/versions", headers=ent2)).status_code == 404
    listed = (await client.get("/api/v1/rules", headers=ent2)).json()["items"]
    assert "ent1-ch4" not in {x["id"] for x in listed}
    r = await client.put(
        "/api/v1/rules/ent1-ch4", json=mine | {"enterprises": ["ent2"]}, headers=ent2
    )
    assert r.status_code == 404
    assert (await client.delete("/api/v1/rules/ent1-ch4", headers=ent2)).status_code == 404
    # A global rule is changed only by a global admin.
    assert (await client.post("/api/v1/rules", json=RULE, headers=root)).status_code == 201
    r = await client.put(f"/api/v1/rules/{RULE['id']}", json=RULE, headers=ent1)
    assert r.status_code == 403
    assert (await client.delete(f"/api/v1/rules/{RULE['id']}", headers=ent1)).status_code == 403
    # ent1 cannot widen its rule to every enterprise.
    r = await client.put("/api/v1/rules/ent1-ch4", json=mine | {"enterprises": ["*"]}, headers=ent1)
    assert r.status_code == 403
    assert (await client.get("/api/v1/rules/ent1-ch4/versions", headers=root)).status_code == 200
