"""Hazard steps ride the alert change feed: one `seq` order with the alert transitions on
`yj.alerts` (CloudEvents `cn.yujing.hazard.<step>`), MQTT `yj/hazards/{ent}/{grade}`,
webhooks and SSE (`Last-Event-ID` replay of hazards only)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiomqtt
import asyncpg
import pytest

from yujing.alerts import webhooks
from yujing.alerts.feed import FeedRelay
from yujing.alerts.publishers import KafkaFeed, MqttFeed, Publisher
from yujing.alerts.store import AlertStore, StoredChange
from yujing.alerts.webhooks import WebhookFanout
from yujing.api.stream import ChangeHub
from yujing.hazards import lifecycle
from yujing.hazards.jurisdiction import Actor, Tier
from yujing.hazards.model import Grade, Hazard, Source, Step
from yujing.hazards.store import HazardStore
from yujing.ingest.bus import MemoryBus, Topics
from yujing.levels import Level
from yujing.testing.alerts import Clock, at, wait_for
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE
SUP = Actor("sup", "supervisor", Tier.COUNTY)


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


async def a_day(store: AlertStore, hazards: HazardStore, ent: str) -> list[StoredChange]:
    [raised] = await store.apply([change(1, N, Level.RED, ent=ent)])
    r = lifecycle.Report(
        enterprise=ent, source=Source.INSPECTION, grade=Grade.MAJOR,
        category="coal.gas_over_limit", description="上隅角瓦斯超限作业",
        alert_ids=(raised.alert_id,),
    )  # fmt: skip
    reported = await hazards.report(r, SUP)

    async def confirm(h: Hazard, _: object) -> tuple[Hazard, Step]:
        return lifecycle.confirm(h, SUP, hazards.now())

    confirmed = await hazards.step(reported.alert_id, lambda _: True, SUP, confirm)
    [resolved] = await store.apply([change(9, Level.RED, N, ent=ent)])
    return [raised, reported, confirmed, resolved]


async def test_hazard_steps_share_the_feed_with_alerts(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int], clock: Clock
) -> None:
    ent = f"h{uuid.uuid4().hex[:8]}"
    store, hazards, bus = AlertStore(pool, clock), HazardStore(pool, clock), MemoryBus()
    red_only = await webhooks.subscribe(
        pool, url="http://127.0.0.1:9/x", enterprises=[ent], min_level=Level.RED,
        transitions=True, escalations=False, who="admin", now=at(0),
    )  # fmt: skip
    consumer = bus.consumer([Topics.ALERTS], "reader")
    host, port = mqtt_broker
    feed = MqttFeed(host, port)
    async with aiomqtt.Client(host, port, identifier=f"sub-{ent}") as sub:
        await sub.subscribe(f"yj/hazards/{ent}/#", qos=1)
        async with relaying(pool, store, [KafkaFeed(bus), feed, WebhookFanout(pool, clock)]):
            day = await a_day(store, hazards, ent)
            pushed = await receive(sub, 2)
            for name in ("kafka", "webhooks"):
                await wait_for(functools.partial(relayed, pool, name, day[-1].seq))
        await feed.close()
    seqs = [c.seq for c in day]
    assert seqs == sorted(seqs) and [c.record for c in day] == [
        "alert",
        "hazard",
        "hazard",
        "alert",
    ]

    records = await consumer.next_batch(timeout_s=1.0)
    await consumer.close()
    events = [json.loads(r.value) for r in records]
    assert [(e["type"], e["seq"]) for e in events] == [
        ("cn.yujing.alert.raised", seqs[0]), ("cn.yujing.hazard.reported", seqs[1]),
        ("cn.yujing.hazard.confirmed", seqs[2]), ("cn.yujing.alert.resolved", seqs[3]),
    ]  # fmt: skip
    hazard_id = day[1].alert_id
    assert [r.key.decode() for r in records][1:3] == [hazard_id, hazard_id]
    assert events[2]["subject"] == hazard_id and events[2]["data"]["state"] == "confirmed"
    assert events[1]["source"] == f"/yujing/enterprises/{ent}"

    assert [(t, q, m["transition"]) for t, q, m in pushed] == [
        (f"yj/hazards/{ent}/major", 1, "reported"), (f"yj/hazards/{ent}/major", 1, "confirmed"),
    ]  # fmt: skip
    # A level filter is about alerts: hazard steps reach the red-only subscription too.
    got = await webhooks.deliveries(pool, red_only.id, None, 10)
    assert sorted(d["event_type"] for d in got) == [
        "cn.yujing.alert.raised", "cn.yujing.alert.resolved",
        "cn.yujing.hazard.confirmed", "cn.yujing.hazard.reported",
    ]  # fmt: skip


async def test_sse_replays_hazards_and_alerts_apart(pool: asyncpg.Pool, clock: Clock) -> None:
    store, hazards = AlertStore(pool, clock), HazardStore(pool, clock)
    day = await a_day(store, hazards, "ent1")
    hub = ChangeHub(pool, store)
    assert await store.last_seq() == day[-1].seq

    async def frames(record: str, n: int) -> list[str]:
        events = hub.subscribe(lambda _: True, 0, 60, record)
        out = [await anext(events) for _ in range(n)]
        await events.aclose()
        return out

    hazard_frames = await frames("hazard", 2)
    assert [f.split("\n")[:2] for f in hazard_frames] == [
        [f"id: {day[1].seq}", "event: reported"], [f"id: {day[2].seq}", "event: confirmed"],
    ]  # fmt: skip
    data: dict[str, Any] = json.loads(hazard_frames[1].split("data: ", 1)[1])
    assert data["hazard"]["state"] == "confirmed" and "alert" not in data
    alert_frames = await frames("alert", 2)
    assert [f.split("\n")[1] for f in alert_frames] == ["event: raised", "event: resolved"]


async def receive(sub: aiomqtt.Client, n: int) -> list[tuple[str, int, dict[str, Any]]]:
    out: list[tuple[str, int, dict[str, Any]]] = []
    async with asyncio.timeout(20):
        async for message in sub.messages:
            assert isinstance(message.payload, bytes)
            out.append((str(message.topic), message.qos, json.loads(message.payload)))
            if len(out) == n:
                return out
    return out
