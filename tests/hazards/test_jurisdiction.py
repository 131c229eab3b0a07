"""Hazards by jurisdiction: a supervisor's level comes from the division scope of the token
(county, city, province); listed supervision is signed off by its level only; each
jurisdiction sees its own; figures roll up by division × sector."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.hazards.conftest import PNG
from yujing.api.auth import Role, create_token
from yujing.registry.scope import Scope
from yujing.testing.alerts import Clock, at
from yujing.testing.registry import enterprise_record

pytestmark = pytest.mark.integration
H = "/api/v1/hazards"
# 苏州市吴中区 and 虎丘区 (one city), 成都市锦江区 (another province).
PLACES = {"wz": "320506", "hq": "320505", "jj": "510104"}


async def token(pool: asyncpg.Pool, role: Role, name: str, **scope: list[str]) -> dict[str, str]:
    t = await create_token(pool, name, role, ["*"], scope=Scope.of(**scope))
    return {"Authorization": f"Bearer {t}"}


async def report(api: httpx.AsyncClient, pool: asyncpg.Pool, ent: str) -> str:
    op = await token(pool, Role.OPERATOR, f"op-{ent}", enterprises=[ent])
    body = {
        "enterprise": ent, "source": "self_check", "grade": "major",
        "category": "chemicals.gas_detection", "description": f"{ent} 可燃气体报警器失效",
    }  # fmt: skip
    r = await api.post(H, json=body, headers=op)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_levels_scopes_and_figures_follow_the_divisions(
    api: httpx.AsyncClient, pool: asyncpg.Pool, clock: Clock
) -> None:
    admin = await token(pool, Role.ADMIN, "root")
    for n, (ent, division) in enumerate(PLACES.items(), start=1):
        r = await api.put(f"/api/v1/enterprises/{ent}", json=enterprise_record(division, n),
                          headers=admin)  # fmt: skip
        assert r.is_success, r.text
    ids = {ent: await report(api, pool, ent) for ent in PLACES}
    county = await token(pool, Role.SUPERVISOR, "county-wz", divisions=["320506"])
    city = await token(pool, Role.SUPERVISOR, "city-sz", divisions=["320500"])
    province = await token(pool, Role.SUPERVISOR, "province-js", divisions=["320000"])

    one = (await api.get(f"{H}/{ids['wz']}", headers=county)).json()
    assert (one["division"], one["sector"]) == ("320506", "hazardous_chemicals")
    seen = {x["enterprise"] for x in (await api.get(H, headers=county)).json()["items"]}
    assert seen == {"wz"}
    assert (await api.get(f"{H}/{ids['hq']}", headers=county)).status_code == 404
    seen = {x["enterprise"] for x in (await api.get(H, headers=city)).json()["items"]}
    assert seen == {"wz", "hq"}
    r = await api.get(H, params={"division": "320500"}, headers=admin)
    assert {x["enterprise"] for x in r.json()["items"]} == {"wz", "hq"}
    r = await api.get(H, params={"division": "320506", "sector": "coal_mine"}, headers=admin)
    assert r.json()["items"] == []

    # Listed by the county, taken over by the city; the county cannot take it back.
    listing = {"deadline": at(30 * 86400).isoformat()}
    r = await api.post(f"{H}/{ids['wz']}/list", json=listing, headers=county)
    assert r.json()["listed_tier"] == "county"
    r = await api.post(f"{H}/{ids['wz']}/list", json=listing, headers=city)
    assert (r.json()["listed_tier"], r.json()["listed_by"]) == ("city", "city-sz")
    assert (
        await api.post(f"{H}/{ids['wz']}/list", json=listing, headers=county)
    ).status_code == 403

    op = await token(pool, Role.OPERATOR, "op2-wz", enterprises=["wz"])
    plan = {"responsible_unit": "仪表车间", "responsible_person": "周工", "measures": "更换探头",
            "deadline": at(7 * 86400).isoformat()}  # fmt: skip
    await api.post(f"{H}/{ids['wz']}/confirm", json={}, headers=county)
    await api.post(f"{H}/{ids['wz']}/plan", json=plan, headers=op)
    clock.to(60)
    await api.post(f"{H}/{ids['wz']}/evidence", files={"file": ("p.png", PNG, "image/png")},
                   headers=op)  # fmt: skip
    await api.post(f"{H}/{ids['wz']}/rectified", json={"note": "已更换"}, headers=op)
    for wrong in (county, province):
        r = await api.post(f"{H}/{ids['wz']}/sign-off", json={}, headers=wrong)
        assert r.status_code == 403 and "city level" in r.json()["detail"]
    r = await api.post(f"{H}/{ids['wz']}/sign-off", json={}, headers=city)
    assert r.json()["state"] == "signed_off"

    clock.to(3600)
    r = await api.get(f"{H}/stats", params={"by": "city", "since": at(-60).isoformat()},
                      headers=province)  # fmt: skip
    figures = r.json()
    [suzhou] = figures["groups"]
    assert (suzhou["division"], suzhou["division_name"], suzhou["sector"]) == (
        "320500", "江苏省苏州市", "hazardous_chemicals",
    )  # fmt: skip
    assert (suzhou["found"], suzhou["rectified"], suzhou["rectification_rate"]) == (2, 1, 0.5)
    assert (suzhou["major_open"], suzhou["major_listed"]) == (1, 0)
    r = await api.get(f"{H}/stats", params={"by": "county", "since": at(-60).isoformat()},
                      headers=admin)  # fmt: skip
    by_county = {g["division"]: g["found"] for g in r.json()["groups"]}
    assert by_county == {"320505": 1, "320506": 1, "510104": 1}
    r = await api.get(f"{H}/stats", params={"division": "510100", "since": at(-60).isoformat()},
                      headers=admin)  # fmt: skip
    assert r.json()["total"]["found"] == 1
    r = await api.get(f"{H}/stats", params={"division": "51"}, headers=admin)
    assert r.status_code == 422
