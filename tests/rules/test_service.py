"""The engine service over the in-process bus and a real PostgreSQL: transitions out,
rule changes and site states picked up between batches, bad records survived, state
restored after a restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from prometheus_client import REGISTRY

from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo, Event, Status, encode
from yujing.ingest.bus import Consumer, MemoryBus, Topics
from yujing.rules import store, transition
from yujing.rules.model import parse_rule
from yujing.rules.service import run_engine
from yujing.rules.transition import Transition
from yujing.testing.rules import gas, series

pytestmark = pytest.mark.integration
DEV = gas("gd-1")
KEY = b"e1/gd-1"


async def drain(consumer: Consumer, want: int, timeout_s: float = 5.0) -> list[Transition]:
    got: list[Transition] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while len(got) < want and loop.time() < end:
        got.extend(
            transition.DECODER.decode(r.value) for r in await consumer.next_batch(timeout_s=0.2)
        )
    return got


class Running:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.bus = MemoryBus()
        self.pool = pool
        self.stop = asyncio.Event()
        self.out = self.bus.consumer([Topics.TRANSITIONS], "test")
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(run_engine(Settings(), self.bus, self.pool, self.stop))
        await asyncio.sleep(0.3)  # the consumers subscribe

    async def readings(self, values: Sequence[float], t0: int, device: DeviceInfo = DEV) -> None:
        await self.bus.publish(
            Topics.READINGS, [(KEY, series(device, "ch4", values, t0=t0).to_bytes())]
        )

    async def close(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def engine(pool: asyncpg.Pool) -> AsyncIterator[Running]:
    r = Running(pool)
    await r.start()
    yield r
    if not r.stop.is_set():
        await r.close()


def steps(ts: list[Transition]) -> list[tuple[str, int, int, int]]:
    return [(t.rule_id, t.rule_version, t.from_level, t.to_level) for t in ts]


async def test_readings_to_transitions_with_default_packs(engine: Running) -> None:
    await engine.readings([0.5, 0.9, 1.6], t0=1_763_856_000_000)
    got = await drain(engine.out, 2)
    assert steps(got) == [("coal-face-ch4", 1, 0, 2), ("coal-face-ch4", 1, 2, 4)]
    assert got[1].key == "e1/gd-1/ch4/coal-face-ch4" and got[1].threshold == 1.5


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_bad_record_is_skipped_and_late_readings_counted(engine: Running) -> None:
    bad, late = metric("yj_engine_bad_records_total"), metric("yj_engine_late_readings_total")
    await engine.bus.publish(Topics.READINGS, [(KEY, b"\x00garbage")])
    await engine.readings([1.2], t0=1_763_856_000_000)
    assert steps(await drain(engine.out, 1)) == [("coal-face-ch4", 1, 0, 3)]
    await engine.readings([1.9], t0=1_763_855_000_000)  # older than the series: late
    await engine.readings([0.2], t0=1_763_856_001_000)
    assert steps(await drain(engine.out, 1)) == [("coal-face-ch4", 1, 3, 0)]
    assert metric("yj_engine_bad_records_total") == bad + 1
    assert metric("yj_engine_late_readings_total") == late + 1


async def test_rule_change_is_picked_up_without_restart(
    engine: Running, pool: asyncpg.Pool
) -> None:
    await engine.readings([0.95], t0=1_763_856_000_000)
    assert steps(await drain(engine.out, 1)) == [("coal-face-ch4", 1, 0, 2)]
    current = (await store.get_rule(pool, "coal-face-ch4")).rule
    stricter = parse_rule(
        current.model_dump(mode="json") | {"levels": {"yellow": 0.6, "orange": 0.9, "red": 1.5}}
    )
    saved = await store.update_rule(pool, stricter, "op")
    await engine.bus.publish(
        Topics.RULES, [(b"coal-face-ch4", json.dumps({"version": saved.version}).encode())]
    )
    await asyncio.sleep(0.5)
    await engine.readings([0.95], t0=1_763_856_001_000)
    assert steps(await drain(engine.out, 1)) == [("coal-face-ch4", 2, 2, 3)]


async def test_site_state_from_the_registry_topic(engine: Running) -> None:
    seal = DeviceInfo("e1", "seal-1", "electronic_seal", "mine-9", {"position": "main_shaft"})
    value = json.dumps({"enterprise": "e1", "site": "mine-9", "state": "halted"}).encode()
    await engine.bus.publish(Topics.REGISTRY, [(b"site:e1/mine-9", value)])
    await asyncio.sleep(0.5)
    event = Event(seal, 1_763_856_000_000, "person_in", 2)
    await engine.bus.publish(Topics.EVENTS, [(b"e1/seal-1", encode(event))])
    got = await drain(engine.out, 1)
    assert [(t.rule_id, t.to_level, t.point) for t in got] == [("seal-person-in", 4, "person_in")]


async def test_state_survives_a_restart(engine: Running, pool: asyncpg.Pool) -> None:
    await engine.readings([1.6], t0=1_763_856_000_000)
    assert steps(await drain(engine.out, 1)) == [("coal-face-ch4", 1, 0, 4)]
    await engine.close()  # stops with a checkpoint
    again = Running(pool)
    await again.start()
    try:
        # red holds at 1.2 (restore < 1.0): no new raise after the restart; then it clears
        await again.readings([1.2, 0.5], t0=1_763_856_001_000)
        assert steps(await drain(again.out, 1)) == [("coal-face-ch4", 1, 4, 0)]
    finally:
        await again.close()


async def test_device_status_acts_at_once_and_maintenance_opens_a_window(
    engine: Running, pool: asyncpg.Pool
) -> None:
    crit = gas("gd-9", critical=True)
    now = int(time.time() * 1000)
    await engine.bus.publish(
        Topics.READINGS, [(b"e1/gd-9", series(crit, "ch4", [0.3], t0=now - 1_000).to_bytes())]
    )
    await engine.bus.publish(Topics.STATUS, [(b"e1/gd-9", encode(Status(crit, now, "offline")))])
    got = await drain(engine.out, 1)
    assert [(t.rule_id, t.to_level) for t in got] == [("critical-offline", 1)]
    await engine.bus.publish(
        Topics.STATUS, [(b"e1/gd-9", encode(Status(crit, now + 1_000, "maintenance", "swap")))]
    )
    await engine.bus.publish(
        Topics.STATUS, [(b"e1/gd-9", encode(Status(crit, now + 1_000, "maintenance", "swap")))]
    )  # a redelivery opens no second window
    assert await drain(engine.out, 1, timeout_s=1.0) == []  # maintenance changes no level
    rows: list[asyncpg.Record] = []
    for _ in range(50):
        rows = await pool.fetch(
            "SELECT device, reason, created_by, ends_at > starts_at + interval '1 day' AS open"
            " FROM maintenance_windows WHERE enterprise = 'e1'"
        )
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [tuple(r) for r in rows] == [
        ("gd-9", "device status: maintenance swap", "device-status", True)
    ]
    await engine.bus.publish(
        Topics.STATUS, [(b"e1/gd-9", encode(Status(crit, now + 5_000, "online")))]
    )
    got = await drain(engine.out, 1)
    assert [(t.rule_id, t.from_level, t.to_level) for t in got] == [("critical-offline", 1, 0)]
    open_ = await pool.fetchval(
        "SELECT ends_at > starts_at + interval '1 day' FROM maintenance_windows"
        " WHERE enterprise = 'e1'"
    )
    assert open_ is False


async def test_the_engine_tick_runs_on_the_injected_clock(pool: asyncpg.Pool) -> None:
    """`absent` and offline judgements come from the tick; a test clock drives it, so a
    device goes offline exactly when the clock says 75 s of silence, not when time passes."""
    bus, stop = MemoryBus(), asyncio.Event()
    out = bus.consumer([Topics.TRANSITIONS], "test")
    t0 = 1_763_856_000_000
    now = [t0]
    task = asyncio.create_task(run_engine(Settings(), bus, pool, stop, clock=lambda: now[0]))
    try:
        await asyncio.sleep(0.3)  # the consumers subscribe
        crit = gas("gd-9", critical=True)
        await bus.publish(
            Topics.READINGS, [(b"e1/gd-9", series(crit, "ch4", [0.3], t0=t0).to_bytes())]
        )
        # The default 25 s interval, three missed: 75 s. The tick runs once a clock second.
        now[0] = t0 + 74_000
        assert await drain(out, 1, timeout_s=1.0) == []
        now[0] = t0 + 75_000
        [offline] = await drain(out, 1)
        assert (offline.rule_id, offline.to_level, offline.ts) == (
            "critical-offline",
            1,
            t0 + 75_000,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
