"""Real engine processes over a Kafka-protocol broker: a second engine joins the group
(partitions move), the first is killed with SIGKILL mid-stream, and every transition the
stream implies still reaches `yj.transitions`, with no transition that it does not imply.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from yujing.ingest.bus import Topics
from yujing.ingest.kafka import KafkaBus
from yujing.rules import transition
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.transition import Transition
from yujing.testing.processes import start_stage, stop_all
from yujing.testing.rules import gas, series

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T0 = 1_763_856_000_000
DEVICES = [gas(f"dev-{i}") for i in range(12)]
# per step, per device: a methane value walking through the coal-face levels and back
PATTERN = [0.3, 0.9, 1.2, 1.6, 1.2, 0.95, 0.5, 1.1, 1.7, 0.2]


def value(step: int, device: int) -> float:
    return PATTERN[(step + device) % len(PATTERN)]


def expected(steps: int) -> dict[str, Transition]:
    engine = Engine([(r, 1) for r in default_rules()])
    out: dict[str, Transition] = {}
    for step in range(steps):
        for i, dev in enumerate(DEVICES):
            for t in engine.on_batch(series(dev, "ch4", [value(step, i)], t0=T0 + step * 15_000)):
                out[t.id] = t
    return out


@pytest.fixture
def engines(
    database_url: str, kafka_bootstrap: str
) -> Iterator[tuple[list[subprocess.Popen[bytes]], dict[str, str]]]:
    env = os.environ | {
        "YJ_DATABASE_URL": database_url,
        "YJ_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "YJ_KAFKA_TOPIC_PREFIX": f"eng-{uuid.uuid4().hex[:8]}-",
        "YJ_KAFKA_PARTITIONS": "3",
        "YJ_ENGINE_GROUP": "engines",
        "YJ_LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    yield procs, env
    stop_all(procs)


async def publish_step(bus: KafkaBus, step: int) -> None:
    records = [
        (dev.key.encode(), series(dev, "ch4", [value(step, i)], t0=T0 + step * 15_000).to_bytes())
        for i, dev in enumerate(DEVICES)
    ]
    await bus.publish(Topics.READINGS, records)


async def collect(
    consumer: object, seen: list[Transition], until: set[str], timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end and not until <= {t.id for t in seen}:
        for r in await consumer.next_batch(timeout_s=0.5):  # type: ignore[attr-defined]
            seen.append(transition.DECODER.decode(r.value))


async def test_partition_move_and_kill_9_lose_and_invent_nothing(
    engines: tuple[list[subprocess.Popen[bytes]], dict[str, str]],
    pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:
    procs, env = engines
    bus = KafkaBus(kafka_bootstrap, partitions=3, prefix=env["YJ_KAFKA_TOPIC_PREFIX"])
    await bus.start()
    watch = bus.consumer([Topics.TRANSITIONS], "watch")
    seen: list[Transition] = []
    try:
        procs.append(start_stage(env))
        for step in range(3):
            await publish_step(bus, step)
        await collect(watch, seen, set(expected(3)), 60)
        assert set(expected(3)) <= {t.id for t in seen}
        procs.append(start_stage(env))  # joins the group: partitions move between the two
        await asyncio.sleep(4)
        for step in range(3, 6):
            await publish_step(bus, step)
        await asyncio.sleep(1.0)
        procs[0].send_signal(signal.SIGKILL)  # mid-stream, between checkpoints
        procs[0].wait(5)
        for step in range(6, 10):
            await publish_step(bus, step)
        want = expected(10)
        await collect(watch, seen, set(want), 90)
        await asyncio.sleep(3)  # anything extra would arrive now
        await collect(watch, seen, set(), 1)
    finally:
        await watch.close()
        await bus.close()
    got_ids = {t.id for t in seen}
    assert got_ids == set(want), (sorted(set(want) - got_ids), sorted(got_ids - set(want)))
    for t in seen:  # a re-publication after the crash is the same transition, never another
        assert t == want[t.id]
    snapshots = await pool.fetchval("SELECT count(*) FROM engine_snapshots WHERE grp = 'engines'")
    assert snapshots >= 1


async def test_kill_take_over_come_back_and_rebalance_gives_the_exact_transitions(
    engines: tuple[list[subprocess.Popen[bytes]], dict[str, str]],
    pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:
    """Two engines; one is killed and the survivor takes its partitions; it comes back and
    a third engine joins and leaves (two more rebalances). Every partition's rows move
    between owners several times: a stale owner writing over a newer one's row would show
    as a lost or a wrong transition here."""
    procs, env = engines
    bus = KafkaBus(kafka_bootstrap, partitions=3, prefix=env["YJ_KAFKA_TOPIC_PREFIX"])
    await bus.start()
    watch = bus.consumer([Topics.TRANSITIONS], "watch")
    seen: list[Transition] = []
    step = 0

    async def steps(n: int, pause_s: float = 0.0) -> None:
        nonlocal step
        for _ in range(n):
            await publish_step(bus, step)
            step += 1
            await asyncio.sleep(pause_s)

    try:
        procs.append(start_stage(env))
        procs.append(start_stage(env))
        await asyncio.sleep(4)
        await steps(3)
        await collect(watch, seen, set(expected(step)), 60)
        procs[1].send_signal(signal.SIGKILL)  # between checkpoints, holding partitions
        procs[1].wait(5)
        await steps(3, 0.5)
        await collect(watch, seen, set(expected(step)), 60)  # the survivor took over
        procs.append(start_stage(env))  # the killed engine comes back: a rebalance
        await asyncio.sleep(4)
        await steps(3, 0.5)
        procs.append(start_stage(env))  # a third joins (a rebalance) and leaves (another)
        await asyncio.sleep(4)
        await steps(2, 0.5)
        procs[3].send_signal(signal.SIGTERM)
        procs[3].wait(20)
        await steps(3, 0.5)
        want = expected(step)
        await collect(watch, seen, set(want), 90)
        await asyncio.sleep(3)  # anything extra would arrive now
        await collect(watch, seen, set(), 1)
    finally:
        await watch.close()
        await bus.close()
    got_ids = {t.id for t in seen}
    assert got_ids == set(want), (sorted(set(want) - got_ids), sorted(got_ids - set(want)))
    for t in seen:
        assert t == want[t.id]
    claims = await pool.fetchval(
        "SELECT max(epoch) FROM engine_snapshots WHERE grp = 'engines' AND topic = $1",
        Topics.READINGS,
    )
    assert claims >= 2  # partitions did change owner
