"""The whole pipeline, MQTT → bus → rules → alerts → PostgreSQL → API, on real servers:
once embedded (in-process bus), once distributed (a runtime per stage over Kafka)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from yujing.testing.flow import Flow, SseRecorder, eventually, running, settings_for_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = {
    "kind": "gas_detector",
    "site": "face-1",
    "tags": {"sector": "coal", "location": "coal_face", "critical": "true"},
    # The readings below are stamped up to a minute in the past: with a short interval the
    # health pack would (rightly) call the sensor silent and raise a second alert.
    "points": {"ch4": {"unit": "%CH4", "interval_s": 60}},
}


async def alert_of(flow: Flow, **checks: Any) -> dict[str, Any] | None:
    r = await flow.http.get("/api/v1/alerts", params={"device": "gd-1"})
    r.raise_for_status()
    for a in r.json()["items"]:
        if a["point"] == "ch4" and all(a[k] == v for k, v in checks.items()):
            return dict(a)
    return None


async def methane_incident(flow: Flow) -> None:
    r = await flow.http.put("/api/v1/devices/ent1/gd-1", json=DEVICE)
    assert r.status_code == 200, r.text
    sse = SseRecorder()
    recorder = asyncio.create_task(sse.record(flow.http))
    await asyncio.wait_for(sse.connected.wait(), 10)
    t0 = int(time.time() * 1000) - 60_000

    async def send(seq: int, ch4: float) -> None:
        body = {"ts": t0 + seq * 5000, "seq": seq, "values": {"ch4": ch4}}
        await flow.publish("yj/ent1/gd-1/telemetry", body)

    for seq, ch4 in enumerate([0.3, 0.6, 1.1, 1.2, 1.6], start=1):
        await send(seq, ch4)
    red = await eventually(lambda: alert_of(flow, level="red"))
    assert red["state"] == "active" and red["peak_level"] == "red"
    assert red["rule_id"] and red["unit"] == "%CH4" and red["enterprise"] == "ent1"

    r = await flow.http.post(f"/api/v1/alerts/{red['id']}/ack", json={"note": "dispatching"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged", r.text
    r = await flow.http.post(f"/api/v1/alerts/{red['id']}/close", json={"disposal": "x"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"

    await send(3, 1.1)  # a QoS 1 redelivery: dropped by seq, changes nothing
    for seq, ch4 in enumerate([1.2, 0.4, 0.3], start=6):
        await send(seq, ch4)
    await eventually(lambda: alert_of(flow, state="resolved"))
    r = await flow.http.post(f"/api/v1/alerts/{red['id']}/close", json={"disposal": "已处置"})
    assert r.status_code == 422, r.text  # a red hazard alarm needs its follow-up (超限报警追查)
    follow_up = {"cause": "ventilation", "measures": "局部通风恢复, 瓦斯浓度正常后复电"}
    r = await flow.http.post(
        f"/api/v1/alerts/{red['id']}/close",
        json={"disposal": "局部通风恢复, 瓦斯浓度正常后复电", "follow_up": follow_up},
    )
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text

    detail = (await flow.http.get(f"/api/v1/alerts/{red['id']}")).json()
    history = [t["transition"] for t in detail["transitions"]]
    assert history[0] == "raised" and history[-2:] == ["resolved", "closed"]
    assert "acknowledged" in history and history.count("escalated") >= 1

    async def all_streamed() -> bool:
        return len(sse.events) >= len(history)

    await eventually(all_streamed)
    recorder.cancel()
    # The stream showed every transition, once, in seq order.
    assert sse.transitions() == history
    assert [e["id"] for e in sse.events] == [t["seq"] for t in detail["transitions"]]


async def test_embedded(database_url: str, mqtt_broker: tuple[str, int]) -> None:
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        await methane_incident(flow)


async def test_distributed(
    database_url: str, mqtt_broker: tuple[str, int], kafka_bootstrap: str
) -> None:
    settings = settings_for_test(
        kafka_bootstrap=kafka_bootstrap, kafka_partitions=3, kafka_topic_prefix="e2e-"
    )
    async with running(database_url, mqtt_broker, settings, distributed=True) as flow:
        await methane_incident(flow)


BAD_INPUT: list[tuple[str, bytes | dict[str, Any], str]] = [
    ("yj/ent1/gd-1/telemetry", b'{"ts": 1, "values": {', "bad_json"),
    ("yj/ent1/gd-1/readings", b'{"ts": 1763856000000, "values": {"ch4": 1}}', "bad_topic"),
    ("yj/ent1/gd-1/telemetry", b'{"ts": 1763856000000, "values": {"ch4": "x"}}', "schema"),
    ("yj/ent1/gd-1/telemetry", b'{"ts": 1763856000000, "values": {"ch4": 0.1}, "pad": "'
     + b"x" * (300 * 1024) + b'"}', "too_large"),
    ("yj/ent1/nobody/telemetry", b'{"ts": 1763856000000, "values": {"ch4": 1}}', "unknown_device"),
]  # fmt: skip


async def test_bad_input_is_dead_lettered_and_the_stream_goes_on(
    database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        assert (await flow.http.put("/api/v1/devices/ent1/gd-1", json=DEVICE)).status_code == 200
        now = int(time.time() * 1000)
        future = {"ts": now + 3_600_000, "values": {"ch4": 0.1}}
        cases = [*BAD_INPUT, ("yj/ent1/gd-1/telemetry", future, "bad_timestamp")]
        for topic, payload, _ in cases:
            await flow.publish(topic, payload)
        # After all that, a good reading still gets through and raises its alert.
        await flow.publish("yj/ent1/gd-1/telemetry", {"ts": now, "values": {"ch4": 1.7}})
        await eventually(lambda: alert_of(flow, level="red"))

        async def letters() -> list[dict[str, Any]] | None:
            # The broker is shared with other tests (retained messages): judge only ours.
            body = (await flow.http.get("/api/v1/deadletters", params={"limit": 1000})).json()
            items = [i for i in body["items"] if i["topic"].startswith("yj/ent1/")]
            return items if len(items) >= len(cases) else None

        got = await letters_sorted(await eventually(letters))
        assert got == sorted((topic, reason) for topic, _, reason in cases)
        r = await flow.http.get("/api/v1/deadletters", params={"reason": "bogus"})
        assert r.status_code == 422 and r.json()["title"] == "Invalid request"
        metrics = (await flow.http.get("/metrics")).text
        assert 'yj_ingest_deadletters_total{reason="too_large"}' in metrics


async def letters_sorted(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((i["topic"], i["reason"]) for i in items)


async def test_people_entering_a_halted_mine(
    database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    seal = {"kind": "electronic_seal", "site": "mine-7", "tags": {"position": "main_shaft"}}
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        assert (await flow.http.put("/api/v1/devices/ent1/seal-1", json=seal)).status_code == 200
        r = await flow.http.patch("/api/v1/sites/ent1/mine-7", json={"state": "halted"})
        assert r.status_code == 200
        now = int(time.time() * 1000)
        event = {"ts": now, "seq": 1, "type": "person_in", "count": 2}
        await flow.publish("yj/ent1/seal-1/event", event)

        async def red() -> dict[str, Any] | None:
            r = await flow.http.get("/api/v1/alerts", params={"device": "seal-1"})
            items = [a for a in r.json()["items"] if a["level"] == "red"]
            return items[0] if items else None

        alert = await eventually(red)
        assert alert["site"] == "mine-7"
