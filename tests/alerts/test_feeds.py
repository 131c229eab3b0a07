"""The ways out against the real things: `yj.alerts` on a Kafka-protocol broker (a reader
from offset 0 rebuilds exactly the alert table) and MQTT `yj/alerts/{ent}/{level}`, QoS 1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiomqtt
import asyncpg
import pytest

from yujing.alerts import maintenance
from yujing.alerts.feed import FeedRelay
from yujing.alerts.model import Alert
from yujing.alerts.publishers import KafkaFeed, MqttFeed, Publisher
from yujing.alerts.store import AlertQuery, AlertStore
from yujing.ingest.bus import Topics
from yujing.ingest.kafka import KafkaBus
from yujing.levels import Level
from yujing.testing.alerts import Clock, at, wait_for
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE
EVERYONE = lambda _e: True  # noqa: E731


@contextlib.asynccontextmanager
async def relaying(
    pool: asyncpg.Pool, store: AlertStore, publishers: Sequence[Publisher]
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(FeedRelay(pool, store, publishers).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def relayed(pool: asyncpg.Pool, name: str, seq: int) -> bool:
    async with pool.acquire() as conn:
        got = await conn.fetchval("SELECT seq FROM feed_cursor WHERE name = $1", name)
    return got is not None and got >= seq


async def busy_day(pool: asyncpg.Pool, store: AlertStore, clock: Clock, ent: str) -> None:
    """Raise, escalate, operators, resolve, reopen, close, and a second device."""
    raised, _ = await store.apply([
        change(1, N, Level.ORANGE, ent=ent), change(2, Level.ORANGE, Level.RED, ent=ent)
    ])  # fmt: skip
    first = (await store.apply([change(3, N, Level.YELLOW, ent=ent, device="dev-2")]))[0]
    alert_id = raised.alert_id
    clock.to(5)
    await store.acknowledge(alert_id, "op-wang", "on my way", EVERYONE)
    await store.apply([change(9, Level.RED, N, ent=ent), change(12, N, Level.ORANGE, ent=ent)])
    await store.apply([change(15, Level.ORANGE, N, ent=ent)])
    clock.to(20)
    await store.close(alert_id, "insp-li", "瓦斯排放完毕, 复电", EVERYONE)
    await store.apply([change(30, N, Level.BLUE, ent=ent)])  # the same key: a new alert
    await store.apply([change(31, Level.YELLOW, Level.ORANGE, ent=ent, device="dev-2")])
    # Marked changes that people are not told of are on the machine feed all the same.
    await maintenance.declare(
        pool, enterprise=ent, site=None, device="dev-9", point=None,
        starts_at=at(0), ends_at=at(100), reason="检修", who="op", now=at(0),
    )  # fmt: skip
    [quiet] = await store.apply([change(40, N, Level.RED, ent=ent, device="dev-9")])
    assert not quiet.notify and quiet.alert["suppressed"]
    assert first.transition == "raised"


async def test_a_reader_from_offset_zero_rebuilds_the_alert_table(
    pool: asyncpg.Pool, kafka_bootstrap: str, clock: Clock
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=3, prefix=f"feed-{uuid.uuid4().hex[:8]}-")
    await bus.start()
    try:
        store = AlertStore(pool, clock)
        async with relaying(pool, store, [KafkaFeed(bus)]):
            await busy_day(pool, store, clock, "ent1")
            last = await store.last_seq()
            await wait_for(lambda: relayed(pool, "kafka", last))
        events = await read_all(bus, expected=last)
    finally:
        await bus.close()

    table: dict[str, dict[str, Any]] = {}
    for key, event in events:
        assert key == event["subject"] == event["data"]["key"]
        assert event["specversion"] == "1.0" and event["type"].startswith("cn.yujing.alert.")
        assert event["id"] == f"{event['data']['id']}-{event['seq']}"
        assert event["source"] == "/yujing/enterprises/ent1"
        current = table.get(event["data"]["id"])
        # Per key (one partition) the events come in seq order: no reordering to undo.
        assert current is None or current["seq"] < event["seq"]
        table[event["data"]["id"]] = event["data"]
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM alerts")
    assert table == {r["id"]: Alert.from_row(r).public() for r in rows}
    assert sorted(e["seq"] for _, e in events) == list(range(1, last + 1))


async def read_all(bus: KafkaBus, expected: int) -> list[tuple[str, dict[str, Any]]]:
    consumer = bus.consumer([Topics.ALERTS], None)  # no group: every partition from offset 0
    got: list[tuple[str, dict[str, Any]]] = []

    async def more() -> bool:
        records = await consumer.next_batch(timeout_s=0.5)
        got.extend((r.key.decode(), json.loads(r.value)) for r in records)
        return len(got) >= expected

    try:
        await wait_for(more)
    finally:
        await consumer.close()
    return got


async def test_mqtt_feed_pushes_people_changes_with_qos1(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int], clock: Clock
) -> None:
    ent = f"m{uuid.uuid4().hex[:8]}"
    store = AlertStore(pool, clock)
    await maintenance.declare(
        pool, enterprise=ent, site=None, device="dev-9", point=None, starts_at=at(0),
        ends_at=at(3600), reason="标定", who="op-wang", now=at(0),
    )  # fmt: skip
    host, port = mqtt_broker
    feed = MqttFeed(host, port)
    async with aiomqtt.Client(host, port, identifier=f"sub-{ent}") as sub:
        await sub.subscribe(f"yj/alerts/{ent}/#", qos=1)
        async with relaying(pool, store, [feed]):
            await store.apply([change(1, N, Level.RED, ent=ent)])
            await store.apply([change(2, N, Level.RED, ent=ent, device="dev-9")])  # maintenance
            await store.apply([change(3, Level.RED, Level.ORANGE, ent=ent)])
            received = await receive(sub, 2)
        await feed.close()
    assert [m["transition"] for _, _, m in received] == ["raised", "deescalated"]
    assert [(topic, qos) for topic, qos, _ in received] == [
        (f"yj/alerts/{ent}/red", 1), (f"yj/alerts/{ent}/orange", 1),
    ]  # fmt: skip
    # The maintenance alert (seq between the two) was not pushed; it is stored, marked.
    assert [m["device"] for _, _, m in received] == ["dev-17", "dev-17"]
    assert received[0][2]["seq"] < received[1][2]["seq"]
    [quiet] = await store.find(AlertQuery(enterprises=[ent], device="dev-9"))
    assert quiet.suppressed and quiet.level is Level.RED


async def receive(sub: aiomqtt.Client, n: int) -> list[tuple[str, int, dict[str, Any]]]:
    out: list[tuple[str, int, dict[str, Any]]] = []
    async with asyncio.timeout(20):
        async for message in sub.messages:
            assert isinstance(message.payload, bytes)
            out.append((str(message.topic), message.qos, json.loads(message.payload)))
            if len(out) == n:
                return out
    return out
