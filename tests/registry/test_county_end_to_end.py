"""A county centre's day on a real running yujing: two counties' methane leaks reach each
county's live stream and nobody else's; halting an enterprise makes a person entering its
mine a red alarm, without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from yujing.testing.flow import Flow, SseRecorder, eventually, running, settings_for_test
from yujing.testing.registry import enterprise_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNTIES = {"wz": "320506", "jj": "510104"}
DETECTOR = {
    "kind": "gas_detector", "site": "face-1", "tags": {"sector": "coal", "location": "coal_face"},
    "points": {"ch4": {"unit": "%CH4", "interval_s": 15}},
}  # fmt: skip
SEAL = {"kind": "electronic_seal", "site": "mine-1", "tags": {"position": "main_shaft"}}


async def county_client(flow: Flow, county: str) -> httpx.AsyncClient:
    body = {"name": f"centre {county}", "role": "viewer", "enterprises": ["*"],
            "divisions": [county]}  # fmt: skip
    r = await flow.http.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    return httpx.AsyncClient(base_url=flow.base_url, headers=headers)


async def test_each_county_stream_carries_only_its_own(
    database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        for n, (ent, county) in enumerate(COUNTIES.items(), start=1):
            record = enterprise_record(county, n, sectors=("coal_mine",))
            assert (await flow.http.put(f"/api/v1/enterprises/{ent}", json=record)).is_success
            r = await flow.http.put(f"/api/v1/devices/{ent}/gd-1", json=DETECTOR)
            assert r.is_success, r.text
        recorders = {ent: SseRecorder() for ent in COUNTIES}
        clients = {ent: await county_client(flow, c) for ent, c in COUNTIES.items()}
        tasks = [asyncio.create_task(recorders[e].record(clients[e])) for e in COUNTIES]
        try:
            for rec in recorders.values():
                await asyncio.wait_for(rec.connected.wait(), 10)
            now = int(time.time() * 1000)
            for ent in COUNTIES:
                await flow.publish(f"yj/{ent}/gd-1/telemetry", {"ts": now, "values": {"ch4": 2.0}})

            async def both_raised() -> bool:
                return all(rec.events for rec in recorders.values())

            await eventually(both_raised, timeout_s=20)
            await asyncio.sleep(0.5)  # room for a stray transition to show up
            for ent, rec in recorders.items():
                assert {e["data"]["alert"]["enterprise"] for e in rec.events} == {ent}
        finally:
            for t in tasks:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            for c in clients.values():
                await c.aclose()


async def test_halting_an_enterprise_gates_its_seal_rules_at_once(
    database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        record = enterprise_record("141102", 1, sectors=("coal_mine",))
        assert (await flow.http.put("/api/v1/enterprises/mine", json=record)).is_success
        assert (await flow.http.put("/api/v1/devices/mine/es-1", json=SEAL)).is_success

        async def red_alerts() -> list[dict[str, object]]:
            r = await flow.http.get("/api/v1/alerts", params={"enterprise": "mine"})
            return [a for a in r.json()["items"] if a["level"] == "red"]

        now = int(time.time() * 1000)
        await flow.publish("yj/mine/es-1/event", {"ts": now, "type": "person_in", "count": 3})
        await asyncio.sleep(1.5)
        assert await red_alerts() == []  # people entering a producing mine: no alarm
        halt = {"state": "halted", "state_since": "2026-12-01", "state_document": "停产通知 1号"}
        assert (await flow.http.patch("/api/v1/enterprises/mine", json=halt)).is_success
        await asyncio.sleep(0.5)  # the registry change reaches the engine through the bus
        await flow.publish(
            "yj/mine/es-1/event", {"ts": now + 2000, "type": "person_in", "count": 2}
        )
        [red] = await eventually(red_alerts, timeout_s=20)
        assert red["device"] == "es-1" and red["sector"] == "coal_mine"
