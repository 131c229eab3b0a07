"""Ingest over a real MQTT broker: every message published is accounted for, including
messages that arrive just as a linger window closes, and a flood the bus cannot take."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Any

import aiomqtt
import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from yujing.config import Settings
from yujing.ingest.batch import DEADLETTER_DECODER, ReadingBatch
from yujing.ingest.bus import MemoryBus, Record, Topics
from yujing.ingest.registry import Registry, upsert_device
from yujing.ingest.service import Ingestor, MqttSource, run_ingest
from yujing.testing.flow import eventually

pytestmark = pytest.mark.integration


async def test_no_message_is_lost_between_batches(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int]
) -> None:
    host, port = mqtt_broker
    async with pool.acquire() as conn:
        record = {"kind": "gas_detector", "site": "s1", "points": {"ch4": {"unit": "%CH4"}}}
        await upsert_device(conn, "ent1", "gd-1", record, "test")
    settings = Settings(ingest_linger_ms=1, ingest_max_batch=7, mqtt_client_id="yj-test-loss")
    bus = MemoryBus()
    readings = bus.consumer([Topics.READINGS, Topics.DEADLETTER], "test")
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_ingest(settings, bus, Registry(pool), f"mqtt://{host}:{port}",
                   lambda: int(time.time() * 1000), stop)
    )  # fmt: skip
    got: list[float] = []
    n = 600
    rng = random.Random(7)
    try:
        async with aiomqtt.Client(host, port) as client:
            await asyncio.sleep(0.3)  # let ingest subscribe
            now = int(time.time() * 1000)
            for seq in range(n):
                body = {"ts": now - n + seq, "seq": seq, "values": {"ch4": seq / 1000}}
                await client.publish("yj/ent1/gd-1/telemetry", json.dumps(body), qos=1)
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0, 0.002))

            async def all_there() -> bool:
                for r in await readings.next_batch(timeout_s=0.2):
                    assert r.topic == Topics.READINGS or _foreign(r)
                    if r.topic == Topics.READINGS:
                        got.extend(ReadingBatch.from_bytes(r.value).value.tolist())
                return len(got) >= n

            await eventually(all_there, timeout_s=30)
    finally:
        stop.set()
        await task
    assert sorted(got) == [seq / 1000 for seq in range(n)]


def _foreign(r: Record) -> bool:
    """A dead letter for another test's device: the broker is shared by the session, and
    scenario tests leave retained status messages on it, which `yj/#` receives."""
    letter = DEADLETTER_DECODER.decode(r.value)
    mine = ("yj/ent1/gd-1/telemetry", "yj/ent1/gd-2/telemetry")
    return r.topic == Topics.DEADLETTER and letter.topic not in mine


class _SlowBus(MemoryBus):
    """The real in-process bus, taking each batch `delay_s` late: a bus slower than the
    broker delivers, as a slow disk or a busy engine makes it."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        decoded: Sequence[Any] | None = None,
    ) -> None:
        await asyncio.sleep(self.delay_s)
        await super().publish(topic, records, decoded)


async def test_overload_holds_the_socket_instead_of_dropping_and_recovers(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int]
) -> None:
    """A flood far above what the bus takes: ingest stops reading (back-pressure), loses
    nothing, stores nothing twice, and takes new messages at once when the flood is over."""
    host, port = mqtt_broker
    async with pool.acquire() as conn:
        record = {"kind": "gas_detector", "site": "s1", "points": {"ch4": {"unit": "%CH4"}}}
        await upsert_device(conn, "ent1", "gd-2", record, "test")
    settings = Settings(ingest_linger_ms=1, ingest_max_batch=50, mqtt_client_id="yj-test-flood")
    bus = _SlowBus(delay_s=0.02)  # at most 50 messages per 20 ms: 2,500 msg/s
    readings = bus.consumer([Topics.READINGS, Topics.DEADLETTER], "test")
    clock = lambda: int(time.time() * 1000)  # noqa: E731
    source = MqttSource(settings, f"mqtt://{host}:{port}")
    stop = asyncio.Event()
    task = asyncio.create_task(
        source.run(Ingestor(settings, Registry(pool), bus, clock), clock, stop)
    )
    got: list[float] = []

    async def taken(n: int) -> bool:
        for r in await readings.next_batch(timeout_s=0.2):
            assert r.topic == Topics.READINGS or _foreign(r)
            if r.topic == Topics.READINGS:
                got.extend(ReadingBatch.from_bytes(r.value).value.tolist())
        return len(got) >= n

    flood = 8_000
    try:
        await asyncio.sleep(0.5)  # let ingest subscribe
        now = int(time.time() * 1000)
        bodies = [
            json.dumps({"ts": now - flood + i, "seq": i + 1, "values": {"ch4": i / 10_000}})
            for i in range(flood)
        ]
        await asyncio.to_thread(_publish_all, host, port, "yj/ent1/gd-2/telemetry", bodies)
        await eventually(lambda: taken(flood), timeout_s=60)
        assert source.pauses > 0  # the flood was held off at the socket, not queued here
        # The flood is over: a new reading comes through at once.
        body = json.dumps({"ts": int(time.time() * 1000), "seq": flood + 1, "values": {"ch4": 9.0}})
        async with aiomqtt.Client(host, port) as client:
            await client.publish("yj/ent1/gd-2/telemetry", body, qos=1)
        await eventually(lambda: taken(flood + 1), timeout_s=5)
    finally:
        stop.set()
        await task
    assert sorted(got) == [i / 10_000 for i in range(flood)] + [9.0]


def _publish_all(host: str, port: int, topic: str, bodies: list[str]) -> None:
    """As fast as paho goes, QoS 1 (the broker acknowledges; it does not wait for ingest)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="yj-test-flooder")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for body in bodies]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()
