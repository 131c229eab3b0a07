"""Every endpoint honours the token's jurisdiction: data in two counties, a token scoped to
each, and for every read route proof that each sees its own and never the other's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from yujing.alerts.sink import Sink
from yujing.alerts.store import AlertStore
from yujing.api.auth import Role, create_token
from yujing.ingest import batch as b
from yujing.ingest.bus import Record, Topics
from yujing.levels import Level
from yujing.registry.scope import Scope
from yujing.rules.transition import Transition
from yujing.testing.registry import enterprise_record
from yujing.testing.rules import batch

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 23, 8, 0, tzinfo=UTC)  # the `client` fixture's clock
T_MS = int((NOW - timedelta(minutes=5)).timestamp() * 1000)
COUNTIES = {"wz": "320506", "jj": "510104"}  # 苏州市吴中区, 成都市锦江区
DEVICE = {
    "kind": "gas_detector", "site": "area-1", "tags": {"location": "tank_farm"},
    "points": {"ch4": {"unit": "%LEL", "interval_s": 10}},
}  # fmt: skip


async def bearer(pool: asyncpg.Pool, role: Role, division: str) -> dict[str, str]:
    scope = Scope.of(divisions=[division])
    t = await create_token(pool, f"{role.name}-{division}", role, ["*"], scope=scope)
    return {"Authorization": f"Bearer {t}"}


async def world(client: httpx.AsyncClient, pool: asyncpg.Pool) -> dict[str, str]:
    """One enterprise per county with a device, a reading, an event, a dead letter, a red
    alert, a maintenance window and a webhook; returns each enterprise's alert id."""
    admin = {"Authorization": f"Bearer {await create_token(pool, 'root', Role.ADMIN, ['*'])}"}
    alert_ids: dict[str, str] = {}
    store = AlertStore(pool, lambda: NOW)
    for n, (ent, county) in enumerate(COUNTIES.items(), start=1):
        record = enterprise_record(county, n, location={"lon": 104.0 + n, "lat": 30.6})
        r = await client.put(f"/api/v1/enterprises/{ent}", json=record, headers=admin)
        assert r.is_success, r.text
        r = await client.put(f"/api/v1/devices/{ent}/gd-1", json=DEVICE, headers=admin)
        assert r.is_success, r.text
        info = b.DeviceInfo(ent, "gd-1", "gas_detector", "area-1", {}, {"ch4": "%LEL"}, uid=n)
        readings = batch([(info, "ch4", T_MS, 30.0)])
        readings.received_ms = T_MS
        dead = b.DeadLetter(f"yj/{ent}/gd-1/telemetry", T_MS, "bad_json", "x", b"{", ent, "gd-1")
        await Sink(pool).write([
            Record(Topics.READINGS, b"k", readings.to_bytes()),
            Record(Topics.EVENTS, b"k", b.encode(b.Event(info, T_MS, "person_in", 2))),
            Record(Topics.DEADLETTER, b"k", b.encode(dead)),
        ])  # fmt: skip
        changes = await store.apply([
            Transition(
                key=f"{ent}/gd-1/ch4/r", enterprise=ent, site="area-1", device="gd-1",
                point="ch4", rule_id="r", rule_version=1, kind="threshold", from_level=0,
                to_level=int(Level.RED), ts=T_MS, value=60.0, threshold=50.0,
            )
        ])  # fmt: skip
        alert_ids[ent] = changes[0].alert_id
        window = {"enterprise": ent, "starts_at": NOW.isoformat(),
                  "ends_at": (NOW + timedelta(hours=1)).isoformat(), "reason": "检修"}  # fmt: skip
        r = await client.post("/api/v1/maintenance", json=window, headers=admin)
        assert r.is_success, r.text
    return alert_ids


ROUTES = (
    "/api/v1/enterprises", "/api/v1/enterprises/{own}", "/api/v1/enterprises/{own}/history",
    "/api/v1/enterprises/{own}/headcount", "/api/v1/overview", "/api/v1/overview?format=csv",
    "/api/v1/map", "/api/v1/events", "/api/v1/alerts", "/api/v1/alerts/{own_alert}",
    "/api/v1/alerts/cap", "/api/v1/alerts/{own_alert}/cap", "/api/v1/devices",
    "/api/v1/devices/{own}/gd-1", "/api/v1/sites/{own}/area-1", "/api/v1/deadletters",
    "/api/v1/maintenance", "/api/v1/statistics/online", "/api/v1/alerts/stats",
    "/api/v1/devices/{own}/gd-1/readings?point=ch4&since=2025-11-23T07:00:00Z",
)  # fmt: skip


async def test_each_county_sees_its_own_and_never_the_other(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    alert_ids = await world(client, pool)
    for own, other in (("wz", "jj"), ("jj", "wz")):
        headers = await bearer(pool, Role.VIEWER, COUNTIES[own])
        for route in ROUTES:
            mine = route.format(own=own, own_alert=alert_ids[own])
            r = await client.get(mine, headers=headers)
            assert r.status_code == 200, (mine, r.text)
            text = r.text
            echoes_no_id = "/history" in route or "/readings" in route
            seen_own = own in text or alert_ids[own] in text or echoes_no_id
            assert seen_own and '"items":[]' not in text and text != "[]", (mine, text[:300])
            assert f'"{other}"' not in text and alert_ids[other] not in text, (mine, text[:300])
            assert f"/{other}/" not in text and f",{other}," not in text, (mine, text[:300])
            if "{own" in route:
                theirs = route.format(own=other, own_alert=alert_ids[other])
                r = await client.get(theirs, headers=headers)
                assert r.status_code == 404, (theirs, r.status_code)


async def test_overview_figures_in_a_county(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await world(client, pool)
    headers = await bearer(pool, Role.VIEWER, COUNTIES["wz"])
    body = (await client.get("/api/v1/overview", headers=headers)).json()
    [item] = body["items"]
    assert item["enterprise"] == "wz" and item["colour"] == "red"
    assert item["active"] == {"red": 1, "orange": 0, "yellow": 0, "blue": 0}
    assert item["hazards"] == {"open": 0, "major": 0, "overdue": 0}
    # reported 5 minutes ago, interval 10 s: connected but not online
    assert (item["devices"], item["online"], item["connected"]) == (1, 0, 1)
    assert body["totals"]["all"]["connection_rate"] == 1.0
    assert body["totals"]["by_division"][0]["division"] == "320506"
    stats = (await client.get("/api/v1/statistics/alarms", headers=headers)).json()
    assert [(g["division"], g["level"], g["raised"]) for g in stats["groups"]] == [
        ("320506", "red", 1)
    ]
    heads = (await client.get("/api/v1/enterprises/wz/headcount", headers=headers)).json()
    assert heads["sites"][0]["present"] == 2
    online = (await client.get("/api/v1/statistics/online", headers=headers)).json()
    # one device, one valid reading 5 minutes ago: 1 device-hour of the last 24
    assert [(i["enterprise"], i["device_hours"]) for i in online["items"]] == [("wz", 1)]
    assert online["by_division"][0]["online_rate"] == round(1 / 24, 4)
    xlsx = await client.get("/api/v1/overview?format=xlsx", headers=headers)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


async def test_alerts_filter_by_division_and_sector(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    alert_ids = await world(client, pool)
    everyone = {"Authorization": f"Bearer {await create_token(pool, 'x', Role.VIEWER, ['*'])}"}

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/api/v1/alerts?{query}", headers=everyone)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    assert await ids("division=510000&min_level=red") == [alert_ids["jj"]]
    assert await ids("division=320500&sector=hazardous_chemicals") == [alert_ids["wz"]]
    assert await ids("division=320500&sector=coal_mine") == []
    stored = (await client.get(f"/api/v1/alerts/{alert_ids['wz']}", headers=everyone)).json()
    assert (stored["division"], stored["sector"]) == ("320506", "hazardous_chemicals")
