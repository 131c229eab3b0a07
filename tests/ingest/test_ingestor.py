"""Ingest's accounting on a real PostgreSQL registry and the in-process bus: every message
ends in exactly one of accepted, duplicate or dead-lettered."""

from __future__ import annotations

import json

import asyncpg
import pytest

from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.bus import MemoryBus, Record, Topics
from yujing.ingest.registry import Registry, upsert_device
from yujing.ingest.service import MESSAGES, Ingestor, Message

pytestmark = pytest.mark.integration
NOW = 1_763_856_000_000


def msg(topic: str, body: object) -> Message:
    return Message(topic, json.dumps(body).encode(), NOW)


def count(outcome: str) -> float:
    return float(MESSAGES.labels(outcome)._value.get())


async def drain(bus_consumer: object) -> list[Record]:
    return await bus_consumer.next_batch(timeout_s=0.2)  # type: ignore[attr-defined,no-any-return]


async def test_accepted_duplicate_and_dead_lettered(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        record = {"kind": "electronic_seal", "site": "mine-1", "tags": {"position": "main_shaft"}}
        await upsert_device(conn, "ent1", "seal-1", record, "test")
    bus = MemoryBus()
    out = bus.consumer([Topics.READINGS, Topics.EVENTS, Topics.STATUS, Topics.DEADLETTER], "t")
    ingestor = Ingestor(Settings(), Registry(pool), bus, lambda: NOW)
    before = {o: count(o) for o in ("accepted", "duplicate", "deadletter")}
    event = {"ts": NOW, "seq": 7, "type": "person_in", "count": 2}
    await ingestor.handle([
        msg("yj/ent1/seal-1/event", event),
        msg("yj/ent1/seal-1/event", event),  # QoS 1 redelivery
        msg("yj/ent1/seal-1/status", {"ts": NOW, "state": "online"}),
        msg("yj/ent1/seal-1/telemetry", {"batch": [
            {"ts": NOW - 2, "seq": 5, "values": {"temp": 21.5}},
            {"ts": NOW - 1, "seq": 6, "values": {"temp": 21.6}},
        ]}),
        msg("yj/ent1/seal-1/telemetry", {"ts": NOW - 2, "seq": 5, "values": {"temp": 21.5}}),
        msg("yj/ent1/ghost/event", event),
    ])  # fmt: skip
    records = await drain(out)
    topics = [r.topic for r in records]
    assert sorted(topics) == sorted(
        [Topics.EVENTS, Topics.STATUS, Topics.READINGS, Topics.DEADLETTER]
    )
    got_event = b.EVENT_DECODER.decode(next(r for r in records if r.topic == Topics.EVENTS).value)
    assert (got_event.type, got_event.count, got_event.device.site) == ("person_in", 2, "mine-1")
    readings = b.ReadingBatch.from_bytes(
        next(r for r in records if r.topic == Topics.READINGS).value
    )
    assert readings.value.tolist() == [21.5, 21.6]
    letter = b.DEADLETTER_DECODER.decode(
        next(r for r in records if r.topic == Topics.DEADLETTER).value
    )
    assert (letter.reason, letter.enterprise, letter.device) == ("unknown_device", "ent1", "ghost")
    assert json.loads(letter.payload) == event
    after = {o: count(o) - before[o] for o in before}
    assert after == {"accepted": 3, "duplicate": 2, "deadletter": 1}


async def test_auto_register_accepts_unknown_devices(pool: asyncpg.Pool) -> None:
    bus = MemoryBus()
    out = bus.consumer([Topics.READINGS, Topics.DEADLETTER], "t")
    ingestor = Ingestor(Settings(), Registry(pool, auto_register=True), bus, lambda: NOW)
    await ingestor.handle([msg("yj/ent9/new-1/telemetry", {"ts": NOW, "values": {"ch4": 0.2}})])
    assert [r.topic for r in await drain(out)] == [Topics.READINGS]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM devices WHERE device = 'new-1'")
    assert row is not None
    assert (row["kind"], row["site"], row["auto_registered"]) == ("unknown", "unassigned", True)


class _PartitionedBus(MemoryBus):
    """The in-process bus, claiming Kafka's six partitions: ingest groups by them."""

    partitions = 6


@pytest.mark.parametrize("bus", [MemoryBus(), _PartitionedBus()], ids=["one", "six"])
async def test_readings_of_a_batch_travel_as_one_record_per_partition(
    pool: asyncpg.Pool, bus: MemoryBus
) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    async with pool.acquire() as conn:
        for i in range(20):
            record = {"kind": "gas_detector", "site": "s1", "points": {"ch4": {"unit": "%CH4"}}}
            await upsert_device(conn, "ent1", f"gd-{i}", record, "test")
    out = bus.consumer([Topics.READINGS], "t")
    ingestor = Ingestor(Settings(), Registry(pool), bus, lambda: NOW)
    await ingestor.handle(
        [msg(f"yj/ent1/gd-{i}/telemetry", {"ts": NOW - k, "values": {"ch4": i + k / 10}})
         for k in range(2) for i in range(20)]
    )  # fmt: skip
    records = await drain(out)
    partitions = getattr(bus, "partitions", 1)
    every = list(range(partitions))

    def part(key: bytes) -> int:
        return 0 if partitions == 1 else int(DefaultPartitioner()(key, every, every))

    got: list[tuple[str, float]] = []
    for r in records:
        batch = b.ReadingBatch.from_bytes(r.value)
        for d, v in zip(batch.device.tolist(), batch.value.tolist(), strict=True):
            info = batch.devices[d]
            assert part(f"{info.enterprise}/{info.device}".encode()) == part(r.key)
            got.append((info.device, v))
    assert len(records) == len({part(f"ent1/gd-{i}".encode()) for i in range(20)})
    assert sorted(got) == sorted((f"gd-{i}", i + k / 10) for k in range(2) for i in range(20))
