"""Against a real MQTT broker: a scenario arrives exactly as generated, and load mode
publishes the rate it reports."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from yujing.simulators.load import run_load
from yujing.simulators.publisher import Publisher
from yujing.simulators.scenario import load_scenario

pytestmark = pytest.mark.integration


async def _collect(
    host: str, port: int, topic: str, into: list[tuple[str, bytes]], ready: asyncio.Event
) -> None:
    async with aiomqtt.Client(host, port, identifier=f"yj-test-sub-{topic}"[:23]) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            into.append((str(message.topic), payload))


async def test_scenario_arrives_byte_for_byte_in_order(mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    sc = load_scenario("input-faults", namespace="pubtest")
    expected = [(m.topic, m.payload) for m in sc.timeline(1_763_856_000_000)]
    got: list[tuple[str, bytes]] = []
    ready = asyncio.Event()
    sub = asyncio.create_task(_collect(host, port, "yj/pubtest-fault-coal-07/#", got, ready))
    await asyncio.wait_for(ready.wait(), 10)
    stats = await Publisher(host, port, say=lambda _: None).run(
        iter(sc.timeline(1_763_856_000_000)), asyncio.Event(), speed=300
    )
    for _ in range(50):
        if len(got) >= len(expected):
            break
        await asyncio.sleep(0.1)
    sub.cancel()
    assert stats.published == len(expected)
    for topic in {t for t, _ in expected}:
        assert [p for t, p in got if t == topic] == [p for t, p in expected if t == topic], topic


async def test_load_mode_publishes_what_it_reports(mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    got: list[tuple[str, bytes]] = []
    ready = asyncio.Event()
    sub = asyncio.create_task(_collect(host, port, "yj/load-test/+/telemetry", got, ready))
    await asyncio.wait_for(ready.wait(), 10)
    result = await asyncio.to_thread(
        run_load,
        f"mqtt://{host}:{port}",
        devices=50,
        rate=400,
        duration_s=2.0,
        processes=2,
        enterprise="load-test",
    )
    for _ in range(50):
        if len(got) >= result.published:
            break
        await asyncio.sleep(0.1)
    sub.cancel()
    assert abs(result.published - 800) <= 40
    assert result.acked == result.published and result.errors == 0
    assert len(got) == result.published
    seqs: dict[str, list[int]] = {}
    for topic, payload in got:
        body = json.loads(payload)
        assert set(body["values"]) == {"ch4", "co", "o2", "co2"}
        seqs.setdefault(topic, []).append(body["seq"])
    assert len(seqs) == 50
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())
