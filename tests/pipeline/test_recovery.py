"""Each stage recovers from one failure and loses nothing: the alert store's `apply`, the
registry lookup of ingest and the sink's COPY each raise once, on real servers. The failure
is injected by wrapping the real object (its I/O still runs), not by mocking the I/O layer.

A passing outage (a dropped connection) is retried in place by the consume loop, before or
after the work went through (then the reply was lost: the retry must change nothing); an
error that is not an outage fails the stage, and the supervisor restarts it, which over
Kafka re-reads from the last commit and over MQTT gets the unacknowledged messages again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import aiomqtt
import asyncpg
import pytest

from yujing.alerts.publishers import Publisher
from yujing.alerts.readings import ReadingWriter, Written
from yujing.alerts.service import run_alerts
from yujing.alerts.sink import Sink, run_sink
from yujing.alerts.store import AlertStore, StoredChange
from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import Bus, MemoryBus, Topics
from yujing.ingest.kafka import KafkaBus
from yujing.ingest.registry import Registry, upsert_device
from yujing.ingest.service import run_ingest
from yujing.levels import Level
from yujing.pipeline.health import RESTARTS, StageState
from yujing.pipeline.retry import Backoff
from yujing.pipeline.stage import Runtime
from yujing.pipeline.supervisor import Supervisor
from yujing.rules import transition
from yujing.rules.transition import Transition
from yujing.testing.alerts import Clock, at, level_change
from yujing.testing.flow import eventually
from yujing.testing.rules import gas, series

pytestmark = pytest.mark.integration
FAST = Backoff(first_s=0.05, max_s=0.2)  # how long the supervisor waits: not what is tested


class Once:
    """Raises `error` on the first call, before (or after) the real work."""

    def __init__(self, error: Exception, *, after: bool = False) -> None:
        self.error, self.after, self.raised = error, after, 0

    def before(self) -> None:
        if not self.after and not self.raised:
            self.raised += 1
            raise self.error

    def then(self) -> None:
        if self.after and not self.raised:
            self.raised += 1
            raise self.error


class FlakyStore(AlertStore):
    def __init__(self, pool: asyncpg.Pool, clock: Clock, once: Once) -> None:
        super().__init__(pool, clock)
        self.once = once

    async def apply(self, transitions: Sequence[Transition]) -> list[StoredChange]:
        self.once.before()
        out = await super().apply(transitions)
        self.once.then()
        return out


class FlakyWriter(ReadingWriter):
    def __init__(self, pool: asyncpg.Pool, once: Once) -> None:
        super().__init__(pool)
        self.once = once

    async def write(self, batch: ReadingBatch) -> Written:
        self.once.before()
        out = await super().write(batch)  # the binary COPY
        self.once.then()
        return out


class FlakyRegistry(Registry):
    def __init__(self, pool: asyncpg.Pool, once: Once) -> None:
        super().__init__(pool)
        self.once = once

    async def lookup(self, enterprise: str, device: str) -> DeviceInfo | None:
        self.once.before()
        return await super().lookup(enterprise, device)


@dataclass
class Stage:
    """A stage as the runtime builds it, around the flaky object."""

    name: str
    run_with: object

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        await self.run_with(rt, stop)  # type: ignore[operator]


def alerts_stage(store: AlertStore) -> Stage:
    async def run(rt: Runtime, stop: asyncio.Event) -> None:
        publishers: list[Publisher] = []
        await run_alerts(rt.settings, rt.bus, rt.pool, stop, publishers, store.now,
                         health=rt.health, store=store)  # fmt: skip

    return Stage("alerts", run)


def changes(n: int) -> list[Transition]:
    """n devices each raised yellow and then resolved: 2n alert changes."""
    out = []
    for i in range(n):
        out.append(level_change(i, Level.NONE, Level.YELLOW, device=f"dev-{i}"))
        out.append(level_change(i + 0.5, Level.YELLOW, Level.NONE, device=f"dev-{i}"))
    return out


async def run_until(
    rt: Runtime, stage: Stage, done: object, timeout_s: float = 30
) -> tuple[int, list[StageState]]:
    """Runs the stage under the supervisor until `done()`; returns its restarts and the
    states the supervisor put it in."""
    stop = asyncio.Event()
    states: list[StageState] = []
    supervisor = Supervisor(rt, backoff=FAST)
    task = asyncio.create_task(supervisor.run(stage, stop))

    async def finished() -> bool:
        report = rt.health.stages.get(stage.name)
        if report is not None and (not states or states[-1] is not report.state):
            states.append(report.state)
        return bool(await done())  # type: ignore[operator]

    try:
        await eventually(finished, timeout_s=timeout_s, every_s=0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return rt.health.stages[stage.name].restarts, states


async def stored(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT a.key, t.transition FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id"
        " ORDER BY a.key, t.seq"
    )
    return [(r["key"], r["transition"]) for r in rows]


def expected_alerts(n: int) -> list[tuple[str, str]]:
    return sorted(
        (f"ent1/dev-{i}/ch4/coal-face-ch4", step)
        for i in range(n)
        for step in ("raised", "resolved")
    )


@pytest.mark.parametrize("after", [False, True], ids=["before-apply", "after-apply"])
async def test_alerts_retry_an_apply_that_failed_on_a_dropped_connection(
    pool: asyncpg.Pool, after: bool
) -> None:
    bus = MemoryBus()
    rt = Runtime(Settings(), pool, bus, "mqtt://127.0.0.1:1")
    once = Once(ConnectionResetError("injected: connection reset"), after=after)
    store = FlakyStore(pool, Clock(at(0)), once)
    stage = alerts_stage(store)
    n = 20

    async def all_stored() -> bool:
        if not rt.health.stages:
            return False
        if not once.raised:  # publish once the consumer exists (in-process bus)
            await bus.publish(Topics.TRANSITIONS, encoded(changes(n)))
            await asyncio.sleep(0.2)
        # Stored, and the retry done (after the apply, the rows are there before it).
        return len(await stored(pool)) >= 2 * n and not rt.health.troubles

    restarts, _ = await run_until(rt, stage, all_stored)
    assert once.raised == 1
    assert restarts == 0  # retried in place, not restarted
    assert sorted(await stored(pool)) == expected_alerts(n)  # each change once, none lost
    assert rt.health.troubles == {}  # the outage is over


def encoded(ts: list[Transition]) -> list[tuple[bytes, bytes]]:
    return [(t.key.encode(), transition.ENCODER.encode(t)) for t in ts]


@pytest.mark.slow
async def test_alerts_restarted_after_a_failure_reread_from_the_last_commit(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    """Not an outage (a bug, say): the stage fails, the supervisor restarts it, and the
    restarted consumer reads again from the last commit: nothing is lost."""
    bus = KafkaBus(kafka_bootstrap, partitions=3, prefix=f"rec-{uuid.uuid4().hex[:8]}-")
    await bus.start()
    try:
        rt = Runtime(Settings(alerts_group="alerts-recovery"), pool, bus, "mqtt://127.0.0.1:1")
        once = Once(RuntimeError("injected: a bug"))
        store = FlakyStore(pool, Clock(at(0)), once)
        n = 30
        await bus.publish(Topics.TRANSITIONS, encoded(changes(n)))
        before = RESTARTS.labels("alerts")._value.get()

        async def all_stored() -> bool:
            return len(await stored(pool)) >= 2 * n

        restarts, states = await run_until(rt, alerts_stage(store), all_stored, timeout_s=60)
    finally:
        await bus.close()
    assert once.raised == 1
    assert restarts == 1 and RESTARTS.labels("alerts")._value.get() == before + 1
    assert states[:3] == [StageState.RUNNING, StageState.RESTARTING, StageState.RUNNING]
    assert sorted(await stored(pool)) == expected_alerts(n)


@pytest.mark.parametrize("after", [False, True], ids=["before-copy", "after-copy"])
async def test_the_sink_stores_a_batch_again_after_its_copy_failed(
    pool: asyncpg.Pool, after: bool
) -> None:
    bus = MemoryBus()
    rt = Runtime(Settings(), pool, bus, "mqtt://127.0.0.1:1")
    once = Once(ConnectionResetError("injected: connection reset"), after=after)
    sink = Sink(pool, readings=FlakyWriter(pool, once))
    async with pool.acquire() as conn:
        record = {"kind": "gas_detector", "site": "s1", "points": {"ch4": {"unit": "%CH4"}}}
        await upsert_device(conn, "e1", "gd-1", record, "test")

    async def run(rt: Runtime, stop: asyncio.Event) -> None:
        await run_sink(rt.settings, rt.bus, rt.pool, stop, health=rt.health, sink=sink)

    n = 500
    values = [i / 1000 for i in range(n)]

    async def all_stored() -> bool:
        if not rt.health.stages:
            return False
        if not once.raised:
            batch = series(gas("gd-1"), "ch4", values, t0=1_763_856_000_000)
            await bus.publish(Topics.READINGS, [(b"e1/gd-1", batch.to_bytes())])
            await asyncio.sleep(0.2)
        stored = int(await pool.fetchval("SELECT count(*) FROM readings"))
        return stored >= n and not rt.health.troubles

    restarts, _ = await run_until(rt, Stage("sink", run), all_stored)
    assert once.raised == 1 and restarts == 0
    got = await pool.fetch("SELECT value FROM readings ORDER BY ts")
    assert [r["value"] for r in got] == values  # each reading once


async def test_ingest_restarts_after_a_registry_lookup_failed_and_gets_every_message(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int]
) -> None:
    """The lookup's database error ends the batch unacknowledged; the stage restarts, and
    the broker redelivers the batch to its persistent session."""
    host, port = mqtt_broker
    async with pool.acquire() as conn:
        record = {"kind": "gas_detector", "site": "s1", "points": {"ch4": {"unit": "%CH4"}}}
        await upsert_device(conn, "ent1", "gd-1", record, "test")
    settings = Settings(ingest_linger_ms=1, mqtt_client_id=f"yj-test-{uuid.uuid4().hex[:8]}")
    bus: Bus = MemoryBus()
    readings = bus.consumer([Topics.READINGS, Topics.DEADLETTER], "test")
    rt = Runtime(settings, pool, bus, f"mqtt://{host}:{port}")
    once = Once(asyncpg.ConnectionDoesNotExistError("injected: connection lost"))
    registry = FlakyRegistry(pool, once)

    async def run(rt: Runtime, stop: asyncio.Event) -> None:
        clock = lambda: int(time.time() * 1000)  # noqa: E731
        await run_ingest(rt.settings, rt.bus, registry, rt.mqtt_url, clock, stop)

    n = 200
    got: list[float] = []
    sent = False

    async def all_there() -> bool:
        nonlocal sent
        if not sent and rt.health.stages:
            await asyncio.sleep(0.3)  # let ingest subscribe
            async with aiomqtt.Client(host, port) as client:
                now = int(time.time() * 1000)
                for seq in range(n):
                    body = {"ts": now - n + seq, "seq": seq, "values": {"ch4": seq / 1000}}
                    await client.publish("yj/ent1/gd-1/telemetry", json.dumps(body), qos=1)
            sent = True
        for r in await readings.next_batch(timeout_s=0.1):
            assert r.topic == Topics.READINGS
            got.extend(ReadingBatch.from_bytes(r.value).value.tolist())
        return len(got) >= n

    restarts, _ = await run_until(rt, Stage("ingest", run), all_there)
    assert once.raised == 1 and restarts == 1
    assert sorted(got) == [seq / 1000 for seq in range(n)]
