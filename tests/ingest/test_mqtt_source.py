"""Ingest over a real MQTT broker: every message published is accounted for, including
messages that arrive just as a linger window closes."""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiomqtt
import asyncpg
import pytest

from yujing.config import Settings
from yujing.ingest.batch import ReadingBatch
from yujing.ingest.bus import MemoryBus, Topics
from yujing.ingest.registry import Registry, upsert_device
from yujing.ingest.service import run_ingest
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
                    assert r.topic == Topics.READINGS
                    got.extend(ReadingBatch.from_bytes(r.value).value.tolist())
                return len(got) >= n

            await eventually(all_there, timeout_s=30)
    finally:
        stop.set()
        await task
    assert sorted(got) == [seq / 1000 for seq in range(n)]
