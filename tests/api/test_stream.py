"""The SSE hub on a real PostgreSQL: `Last-Event-ID` replays the stored transitions (with
the client's filters), heartbeats while idle, and a client that falls behind gets one
`resync` event and is let go, while the others get everything."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from yujing.alerts.store import AlertStore, StoredChange
from yujing.api.stream import ChangeHub
from yujing.levels import Level
from yujing.testing.alerts import Clock, at, wait_for
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE


def everything(_: StoredChange) -> bool:
    return True


def parse(frame: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in frame.strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        out[name] = json.loads(value) if name == "data" else value
    return out


async def frames(events: AsyncIterator[str], n: int) -> list[dict[str, Any]]:
    return [parse(await anext(events)) for _ in range(n)]


async def test_last_event_id_replays_then_goes_live_with_heartbeats(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, Clock(at(0)))
    first = await store.apply([change(1, N, Level.ORANGE), change(2, Level.ORANGE, Level.RED)])
    await store.apply([change(3, N, Level.RED, ent="ent2")])
    await store.apply([change(4, Level.RED, N)])
    hub = ChangeHub(pool, store)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await wait_for(lambda: _at(hub, 4))

        def ent1(c: StoredChange) -> bool:
            return bool(c.alert["enterprise"] == "ent1")

        events = hub.subscribe(ent1, last_event_id=first[0].seq, heartbeat_s=0.05)
        replayed = await frames(events, 3)
        # Everything after seq 1 that passes the filter, in order; ent2's raise is left out.
        assert [(f["id"], f["event"]) for f in replayed[:2]] == [
            ("2", "escalated"),
            ("4", "resolved"),
        ]
        assert replayed[2] == {"retry": "2000"}
        [live] = await store.apply([change(9, N, Level.YELLOW)])
        frame = await anext(events)
        while frame == ": heartbeat\n\n":  # heartbeats may come first: the client is idle
            frame = await anext(events)
        got = parse(frame)
        assert (got["id"], got["event"], got["data"]["seq"]) == (
            str(live.seq),
            "reopened",
            live.seq,
        )
        assert (await anext(events)).startswith(": heartbeat")  # idle: a comment line
        await events.aclose()
    finally:
        stop.set()
        await running


async def _at(hub: ChangeHub, seq: int) -> bool:
    return hub.seq >= seq


async def test_a_slow_client_gets_resync_and_the_others_everything(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, Clock(at(0)))
    hub = ChangeHub(pool, store, queue_size=2)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        [warm] = await store.apply([change(0, N, Level.BLUE, device="warm-up")])
        await wait_for(lambda: _at(hub, warm.seq))  # the hub is up and fanning out
        slow = hub.subscribe(everything, None, heartbeat_s=60)
        fast = hub.subscribe(everything, None, heartbeat_s=60)
        assert await anext(slow) == await anext(fast) == "retry: 2000\n\n"
        received: list[dict[str, Any]] = []

        async def keep_up() -> None:
            async for frame in fast:
                received.append(parse(frame))
                if len(received) == 5:
                    return

        reader = asyncio.create_task(keep_up())
        for i in range(5):  # the slow client reads nothing meanwhile
            await store.apply([change(i + 1, N, Level.RED, device=f"d{i}")])
            await wait_for(functools.partial(_count, received, i + 1))
        await reader
        assert [f["event"] for f in received] == ["raised"] * 5
        resync = parse(await anext(slow))
        assert resync == {"event": "resync", "data": {"last_seq": warm.seq}}
        with pytest.raises(StopAsyncIteration):
            await anext(slow)  # disconnected: reload, then reconnect with Last-Event-ID
        await fast.aclose()
    finally:
        stop.set()
        await running


async def _count(items: list[dict[str, Any]], n: int) -> bool:
    return len(items) >= n
