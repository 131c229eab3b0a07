"""The enterprise register over the HTTP API on a real PostgreSQL: checks, jurisdiction
scopes, state and its effect on rules, standing risk grade with history."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from yujing.api.auth import Role, create_token
from yujing.ingest.bus import MemoryBus, Topics
from yujing.registry.scope import Scope
from yujing.testing.registry import credit_code, enterprise_record

pytestmark = pytest.mark.integration

WUZHONG, XIANGCHENG, SUZHOU, CHENGDU_JINJIANG = "320506", "320507", "320500", "510104"


async def bearer(pool: asyncpg.Pool, role: Role, **dims: list[str]) -> dict[str, str]:
    t = await create_token(pool, "someone", role, dims.get("enterprises", ["*"]), scope=Scope.of(
        dims.get("enterprises"), dims.get("divisions"), dims.get("sectors"), dims.get("parks")
    ))  # fmt: skip
    return {"Authorization": f"Bearer {t}"}


async def test_register_read_and_the_checks_of_a_record(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await bearer(pool, Role.ADMIN)
    body = enterprise_record(
        WUZHONG, 1, location={"lon": 120.63, "lat": 31.26},
        contacts=[{"role": "safety_manager", "name": "王工", "phone": "13912345678"}],
    )  # fmt: skip
    r = await client.put("/api/v1/enterprises/e1", json=body, headers=admin)
    assert r.status_code == 200, r.text
    got = (await client.get("/api/v1/enterprises/e1", headers=admin)).json()
    assert got["division_name"] == "江苏省苏州市吴中区"
    assert (got["province"], got["city"], got["county"]) == ("320000", "320500", "320506")
    assert got["state"] == "operating" and got["location"] == {"lon": 120.63, "lat": 31.26}

    def bad(**change: object) -> dict[str, object]:
        return {**body, **change}

    for wrong, word in (
        (bad(uscc=body["uscc"][:-1] + ("0" if body["uscc"][-1] != "0" else "1")), "credit code"),
        (bad(uscc="123"), "credit code"),
        (bad(division="329999"), "GB/T 2260"),
        (bad(sectors=["chemistry"]), "unknown sectors"),
        (bad(location={"lon": 31.26, "lat": 120.63}), "swapped"),
        (bad(state="halted"), "state_document"),
        (bad(contacts=[{"role": "duty", "name": "李", "phone": "12345"}]), "mobile"),
    ):
        r = await client.put("/api/v1/enterprises/e2", json=wrong, headers=admin)
        assert r.status_code == 422 and word in r.text, (wrong, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # the same credit code for another enterprise is a conflict
    r = await client.put("/api/v1/enterprises/e2", json=body, headers=admin)
    assert r.status_code == 409


async def test_a_county_token_sees_only_its_county(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await bearer(pool, Role.ADMIN)
    for ent, division, n, sectors in (
        ("wz-chem", WUZHONG, 1, ["hazardous_chemicals"]),
        ("wz-dust", WUZHONG, 2, ["machinery", "dust_explosion"]),
        ("xc-chem", XIANGCHENG, 3, ["hazardous_chemicals"]),
        ("cd-coal", CHENGDU_JINJIANG, 4, ["coal_mine"]),
    ):
        body = enterprise_record(division, n, sectors=tuple(sectors))
        assert (await client.put(f"/api/v1/enterprises/{ent}", json=body, headers=admin)).is_success

    async def ids(headers: dict[str, str], query: str = "") -> list[str]:
        r = await client.get(f"/api/v1/enterprises{query}", headers=headers)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    county = await bearer(pool, Role.VIEWER, divisions=[WUZHONG])
    city = await bearer(pool, Role.VIEWER, divisions=[SUZHOU])
    county_chem = await bearer(
        pool, Role.VIEWER, divisions=[WUZHONG], sectors=["hazardous_chemicals"]
    )
    assert await ids(county) == ["wz-chem", "wz-dust"]
    assert await ids(city) == ["wz-chem", "wz-dust", "xc-chem"]
    assert await ids(county_chem) == ["wz-chem"]
    assert await ids(admin, f"?division={SUZHOU}&sector=hazardous_chemicals") == [
        "wz-chem", "xc-chem",
    ]  # fmt: skip
    assert await ids(city, "?division=510000") == []
    assert (await client.get("/api/v1/enterprises/xc-chem", headers=county)).status_code == 404
    assert (await client.get("/api/v1/enterprises/xc-chem", headers=city)).status_code == 200
    # a county admin can register only inside the county
    county_admin = await bearer(pool, Role.ADMIN, divisions=[WUZHONG])
    outside = enterprise_record(XIANGCHENG, 9)
    r = await client.put("/api/v1/enterprises/new-one", json=outside, headers=county_admin)
    assert r.status_code == 403
    inside = enterprise_record(WUZHONG, 9)
    r = await client.put("/api/v1/enterprises/new-one", json=inside, headers=county_admin)
    assert r.status_code == 200
    # and cannot overwrite a neighbour's record by its id
    r = await client.put("/api/v1/enterprises/xc-chem", json=inside, headers=county_admin)
    assert r.status_code == 404


async def test_halting_is_declared_published_and_kept_in_history(
    client: httpx.AsyncClient, pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    admin = await bearer(pool, Role.ADMIN)
    body = enterprise_record(WUZHONG, 1, sectors=("coal_mine",))
    assert (await client.put("/api/v1/enterprises/mine", json=body, headers=admin)).is_success
    consumer = bus.consumer([Topics.REGISTRY], None)
    r = await client.patch("/api/v1/enterprises/mine", json={"state": "halted"}, headers=admin)
    assert r.status_code == 422 and "state_document" in r.text
    change = {"state": "halted", "state_since": "2025-11-20", "state_document": "停产通知 7号"}
    r = await client.patch("/api/v1/enterprises/mine", json=change, headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "halted"
    records = await consumer.next_batch(timeout_s=1.0)
    mine = [json.loads(rec.value) for rec in records if rec.key == b"enterprise:mine"]
    assert mine[-1] == {"enterprise": "mine", "state": "halted"}
    r = await client.patch("/api/v1/enterprises/mine", json={"state": "operating"}, headers=admin)
    assert r.json()["state_document"] == ""
    history = (await client.get("/api/v1/enterprises/mine/history", headers=admin)).json()
    assert [(h["old_value"], h["new_value"]) for h in history] == [
        (None, "operating"), ("operating", "halted"), ("halted", "operating"),
    ]  # fmt: skip
    await consumer.close()


async def test_standing_risk_grade_is_set_by_a_supervising_role_with_reason(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await bearer(pool, Role.ADMIN)
    body = enterprise_record(WUZHONG, 1)
    assert (await client.put("/api/v1/enterprises/e1", json=body, headers=admin)).is_success
    operator = await bearer(pool, Role.OPERATOR)
    grade = {"grade": "orange", "reason": "重大危险源二级，近期两次报警"}
    r = await client.put("/api/v1/enterprises/e1/risk-grade", json=grade, headers=operator)
    assert r.status_code == 403
    supervisor = await bearer(pool, Role.SUPERVISOR, divisions=[WUZHONG])
    r = await client.put("/api/v1/enterprises/e1/risk-grade", json=grade, headers=supervisor)
    assert r.status_code == 200 and r.json()["risk_grade"] == "orange"
    assert r.json()["risk_grade_by"] == "someone"
    assert r.json()["risk_grade_reason"] == grade["reason"]
    elsewhere = await bearer(pool, Role.SUPERVISOR, divisions=[XIANGCHENG])
    r2 = await client.put("/api/v1/enterprises/e1/risk-grade", json=grade, headers=elsewhere)
    assert r2.status_code == 404
    history = (await client.get("/api/v1/enterprises/e1/history", headers=admin)).json()
    assert history[-1]["field"] == "risk_grade" and history[-1]["new_value"] == "orange"


async def test_installations_tag_the_devices_that_watch_them(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await bearer(pool, Role.ADMIN)
    device = {"kind": "tank_gauge", "site": "tank-farm", "points": {"level": {"unit": "m"}}}
    for d in ("lt-1", "lt-2"):
        assert (await client.put(f"/api/v1/devices/e1/{d}", json=device, headers=admin)).is_success
    inst = {"id": "tf-1", "name": "液氯罐区", "grade": 2, "devices": ["lt-1", "lt-2"]}
    body = enterprise_record(WUZHONG, 1, installations=[inst])
    r = await client.put("/api/v1/enterprises/e1", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["installations"] == [inst]
    listed = (await client.get("/api/v1/enterprises", headers=admin)).json()["items"]
    assert listed[0]["installations"] == [inst]
    dev = (await client.get("/api/v1/devices/e1/lt-1", headers=admin)).json()
    assert dev["tags"]["installation"] == "tf-1"
    inst["devices"] = ["lt-2"]
    r = await client.put("/api/v1/enterprises/e1", json=body, headers=admin)
    dev = (await client.get("/api/v1/devices/e1/lt-1", headers=admin)).json()
    assert "installation" not in dev["tags"]
    body["installations"] = [{**inst, "devices": ["nope"]}]
    r = await client.put("/api/v1/enterprises/e1", json=body, headers=admin)
    assert r.status_code == 422 and "nope" in r.text


def test_credit_codes_of_the_test_kit_are_valid() -> None:
    from stdnum.cn import uscc

    assert uscc.is_valid(credit_code(WUZHONG, 12345))
