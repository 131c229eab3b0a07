"""Group rules across real engine processes over a Kafka-protocol broker: a tailings
dam's points hash to every partition of `yj.readings`, so with two or three engines no
engine sees a whole group. Each group alert is still exactly the one an engine seeing
every point gives, after an engine is killed with SIGKILL mid-stream (its partitions,
readings and groups alike, move to the survivors) and after it comes back (they move
again)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka.partitioner import DefaultPartitioner

from yujing.ingest.batch import DeviceInfo
from yujing.ingest.bus import Consumer, Topics
from yujing.ingest.kafka import KafkaBus
from yujing.rules import transition
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.transition import Transition
from yujing.testing.processes import start_stage, stop_all
from yujing.testing.rules import batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PARTITIONS = 3
ABOVE = {"warn_blue": "10", "warn_yellow": "20", "warn_orange": "30", "warn_red": "40"}
# The dam's four group keys hash to every partition of `yj.groups` too, so whichever
# partition a killed engine held, one of its groups changes after the kill.
DAM = "dam-3"
BELOW = {"warn_blue": "10", "warn_yellow": "8", "warn_orange": "6", "warn_red": "4"}


def monitor(n: int, item: str) -> DeviceInfo:
    tags = {"dam": DAM, "item": item, **(BELOW if item == "phreatic" else ABOVE)}
    return DeviceInfo("e1", f"tm-{n}", "tailings_monitor", "tk-1", tags, {item: "m"})


# Six displacement points (two on each partition of yj.readings) and one point of each
# of three other items, for the dam's "four blue items".
DISPLACEMENT = [monitor(n, "displacement") for n in (0, 1, 2, 3, 4, 5)]
OTHERS = [monitor(6, "pond_level"), monitor(7, "rainfall"), monitor(11, "phreatic")]
DEVICES = DISPLACEMENT + OTHERS
NORMAL = {"displacement": 5.0, "pond_level": 5.0, "rainfall": 5.0, "phreatic": 15.0}
# step → {device number: value}; a value holds until changed
PLAN: list[dict[int, float]] = [
    {0: 12.0},
    {1: 12.0, 6: 12.0},
    {2: 12.0, 3: 13.0},  # four blue points: the item yellow
    {0: 22.0, 7: 11.0},
    {1: 23.0, 4: 12.0, 11: 9.0},  # four blue items: the dam yellow
    {2: 21.0},  # three yellow points: the item orange
    {0: 31.0, 5: 12.0},
    {3: 32.0},  # two orange points: the item red
    {1: 5.0, 6: 5.0},  # back to normal: within the 24 h window they still count
    {4: 24.0},
]


@pytest.fixture
def engines(database_url: str, kafka_bootstrap: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    stop_all(procs)


async def collect(
    consumer: Consumer, seen: list[Transition], until: set[str], timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end and not until <= {t.id for t in seen}:
        for r in await consumer.next_batch(timeout_s=0.5):
            seen.append(transition.DECODER.decode(r.value))


def partition(key: bytes) -> int:
    return int(DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS))))


def values(step: int) -> dict[str, float]:
    now = {d.device: NORMAL[d.tags["item"]] for d in DEVICES}
    for s in range(step + 1):
        now.update({f"tm-{n}": v for n, v in PLAN[s].items()})
    return now


def readings(step: int, t0: int) -> list[tuple[DeviceInfo, float, int]]:
    """Every device reports at each step, all at the step's time (so a group transition's
    time, and with it its id, is the step's whichever member arrives last)."""
    now = values(step)
    return [(d, now[d.device], t0 + step * 15_000) for d in DEVICES]


def expected(steps: int, t0: int) -> dict[str, Transition]:
    engine = Engine([(r, 1) for r in default_rules()])
    out: dict[str, Transition] = {}
    for step in range(steps):
        rows = [(d, d.tags["item"], ts, v) for d, v, ts in readings(step, t0)]
        for t in engine.on_batch(batch(rows)):
            out[t.id] = t
    return out


async def publish_step(bus: KafkaBus, step: int, t0: int) -> None:
    await bus.publish(
        Topics.READINGS,
        [
            (d.key.encode(), batch([(d, d.tags["item"], ts, v)]).to_bytes())
            for d, v, ts in readings(step, t0)
        ],
    )


def test_the_group_points_hash_to_every_partition() -> None:
    every = set(range(PARTITIONS))
    assert {partition(d.key.encode()) for d in DISPLACEMENT} == every
    assert {partition(d.key.encode()) for d in DEVICES[:4]} == every  # the first four blue
    want = expected(len(PLAN), 0)
    groups = [t for t in want.values() if t.device is None]
    after_kill = [t for t in groups if t.ts >= 4 * 15_000]
    assert {partition(t.key.encode()) for t in after_kill} == every
    assert sorted((t.rule_id, t.to_level) for t in groups) == [
        ("tailings-dam-yellow", 2),
        ("tailings-item-orange", 3),
        ("tailings-item-red", 4),
        ("tailings-item-yellow", 2),
    ]


@pytest.mark.parametrize("n_engines", [2, 3])
async def test_group_alerts_exact_with_engines_killed_and_partitions_moved(
    n_engines: int,
    engines: list[subprocess.Popen[bytes]],
    database_url: str,
    pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:
    procs = engines
    env = os.environ | {
        "YJ_DATABASE_URL": database_url,
        "YJ_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "YJ_KAFKA_TOPIC_PREFIX": f"grp-{uuid.uuid4().hex[:8]}-",
        "YJ_KAFKA_PARTITIONS": str(PARTITIONS),
        "YJ_ENGINE_GROUP": "engines",
        "YJ_LOG_LEVEL": "WARNING",
    }
    # Readings of the last minute: the group windows (24 h) hold on the engines' clock.
    t0 = int(time.time() * 1000) - 60_000
    bus = KafkaBus(kafka_bootstrap, partitions=PARTITIONS, prefix=env["YJ_KAFKA_TOPIC_PREFIX"])
    await bus.start()
    watch = bus.consumer([Topics.TRANSITIONS], "watch")
    seen: list[Transition] = []

    async def step(s: int, *, wait: bool = True) -> None:
        await publish_step(bus, s, t0)
        if wait:  # the next step's member changes come after this step's
            want = set(expected(s + 1, t0))
            await collect(watch, seen, want, 90)
            assert want <= {t.id for t in seen}, f"step {s}: {sorted(want - {t.id for t in seen})}"

    try:
        for _ in range(n_engines):
            procs.append(start_stage(env))
        await asyncio.sleep(6)  # every engine has joined both groups
        for s in range(3):
            await step(s)
        await step(3, wait=False)
        await asyncio.sleep(0.5)
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)  # between checkpoints
        victim.wait(5)
        for s in range(4, 7):
            await step(s)
        procs.append(start_stage(env))  # back: partitions move again
        await asyncio.sleep(6)
        for s in range(7, len(PLAN)):
            await step(s)
        await asyncio.sleep(3)  # anything extra would arrive now
        await collect(watch, seen, set(), 1)
    finally:
        await watch.close()
        await bus.close()
    want = expected(len(PLAN), t0)
    got_ids = {t.id for t in seen}
    assert got_ids == set(want), (sorted(set(want) - got_ids), sorted(got_ids - set(want)))
    for t in seen:  # a re-publication is the same transition, never another
        assert t == want[t.id]
    groups = [t for t in want.values() if t.device is None]
    assert len(groups) == 4
    rows = await pool.fetchval(
        "SELECT count(*) FROM engine_snapshots WHERE grp = 'engines.groups' AND topic = $1",
        Topics.GROUPS,
    )
    assert rows >= 1
