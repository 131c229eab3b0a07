"""Checkpoints in a real PostgreSQL: a partition's row has one owner at a time (a stale
writer's save is refused and it drops the partition), partitions the bus no longer assigns
are dropped, and a base plus deltas restores exactly the state a whole snapshot holds."""

from __future__ import annotations

import asyncpg
import pytest

from yujing import migrations
from yujing.ingest.batch import ReadingBatch
from yujing.ingest.bus import Record, Topics
from yujing.rules.checkpoint import Checkpoints
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.transition import Transition
from yujing.testing.rules import gas, series

pytestmark = pytest.mark.integration
T0 = 1_763_856_000_000
RULES = [(r, 1) for r in default_rules()]
DEVICES = [gas(f"d{i}") for i in range(20)]


def records(step: int, values: list[float], partition: int = 0) -> list[Record]:
    """One reading per device (device i reads values[i]), at offsets step*20 + i."""
    return [
        Record(Topics.READINGS, dev.key.encode(),
               series(dev, "ch4", [v], t0=T0 + step * 15_000).to_bytes(), partition,
               step * len(DEVICES) + i)
        for i, (dev, v) in enumerate(zip(DEVICES, values, strict=True))
    ]  # fmt: skip


def levels(engine: Engine) -> dict[str, int]:
    """Level of the coal-face rule per device, as the engine holds it."""
    slots = engine.thresholds.slots
    entry = engine.entries["coal-face-ch4"]
    k = slots.of_rule(entry.index)
    return {
        engine.series.info(int(slots.series[x]))[0].device: int(slots.col["level"][x])
        for x in k.tolist()
    }


async def evaluate(cp: Checkpoints, engine: Engine, recs: list[Record]) -> list[Transition]:
    out = []
    for rec in await cp.admit(engine, recs):
        out.extend(engine.on_batch(ReadingBatch.from_bytes(rec.value), rec.partition))
    return out


async def test_a_stale_writer_is_refused_and_drops_the_partition(pool: asyncpg.Pool) -> None:
    a, b = Engine(RULES), Engine(RULES)
    cp_a = Checkpoints(pool, "g", durable_offsets=True)
    cp_b = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp_a, a, records(0, [1.2] * 20))  # every device orange
    await cp_a.save(a, {0})
    # The partition moves to b: b claims the row and carries on from a's snapshot.
    await evaluate(cp_b, b, records(1, [1.2] * 19 + [1.6]))
    assert levels(b)["d19"] == 4 and levels(b)["d0"] == 3
    await cp_b.save(b, {0})
    # a never noticed (no rebalance reached it) and evaluates on: its write is refused.
    await evaluate(cp_a, a, records(1, [0.1] * 20))
    await cp_a.save(a, {0})
    assert cp_a.lost == 1 and (Topics.READINGS, 0) not in cp_a.held
    assert levels(a) == {} and len(a.series.of_partition(0)) == 20  # state gone, names kept
    # The row is still b's: a third engine loads b's state, not a's.
    c = Engine(RULES)
    cp_c = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp_c, c, records(2, [1.2] * 20))
    assert levels(c) == levels(b)
    assert cp_c.skipped == 0
    epoch = await pool.fetchval(
        "SELECT epoch FROM engine_snapshots WHERE grp = 'g' AND topic = $1 AND partition = 0",
        Topics.READINGS,
    )
    assert epoch == 3  # a, b and c each claimed it once


async def test_a_revoked_partition_is_dropped_not_written(pool: asyncpg.Pool) -> None:
    a = Engine(RULES)
    cp = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp, a, records(0, [1.2] * 20, partition=1))
    await cp.save(a, {1})
    before = await pool.fetchval("SELECT taken_at FROM engine_snapshots WHERE partition = 1")
    await evaluate(cp, a, records(1, [1.6] * 20, partition=1))
    await cp.save(a, {0})  # the bus took partition 1 away
    assert cp.next_offset == {} and cp.held == {} and levels(a) == {}
    after = await pool.fetchval("SELECT taken_at FROM engine_snapshots WHERE partition = 1")
    assert after == before


class Stream:
    """Readings of some devices per step, at contiguous offsets of partition 0."""

    def __init__(self) -> None:
        self.offset = 0

    def step(self, step: int, values: dict[int, float]) -> list[Record]:
        out = []
        for i, v in values.items():
            dev = DEVICES[i]
            out.append(Record(Topics.READINGS, dev.key.encode(),
                              series(dev, "ch4", [v], t0=T0 + step * 15_000).to_bytes(), 0,
                              self.offset))  # fmt: skip
            self.offset += 1
        return out


async def test_base_and_deltas_restore_what_a_whole_snapshot_holds(pool: asyncpg.Pool) -> None:
    a = Engine(RULES)
    cp = Checkpoints(pool, "g", durable_offsets=True)
    stream = Stream()
    walk = [0.3, 0.9, 1.2, 1.6, 1.2, 0.95, 0.5, 1.1]
    await evaluate(cp, a, stream.step(0, dict.fromkeys(range(20), 0.3)))
    await cp.save(a, None)  # the base
    for step in range(1, 12):
        # two devices report per step, walking through the levels
        await evaluate(cp, a, stream.step(step, {step % 5: walk[step % 8], 7: walk[-step % 8]}))
        a.on_tick(T0 + step * 15_000 + 100)  # ticks change state too (none here go silent)
        await cp.save(a, None)
    n_deltas = await pool.fetchval("SELECT count(*) FROM engine_snapshot_deltas")
    assert n_deltas >= 1  # (a new base is written once the deltas outgrow it)
    b = Engine(RULES)
    cp_b = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp_b, b, stream.step(12, {0: 0.3}))
    a.on_batch(series(DEVICES[0], "ch4", [0.3], t0=T0 + 12 * 15_000))
    assert levels(b) == levels(a) and 4 in levels(a).values()
    assert b.snapshot(0) == a.snapshot(0)


async def test_a_delta_holds_only_what_changed(pool: asyncpg.Pool) -> None:
    a = Engine(RULES)
    cp = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp, a, records(0, [0.3] * 20))
    await cp.save(a, None)
    a.on_batch(series(DEVICES[3], "ch4", [1.2], t0=T0 + 15_000))
    snap, full = a.capture(0, full=False)
    assert not full and [d.device for d in snap.devices] == ["d3"]


async def test_an_old_snapshot_table_gains_the_epoch(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE engine_snapshots, engine_snapshot_deltas")
        await conn.execute(
            """CREATE TABLE engine_snapshots (grp text NOT NULL, topic text NOT NULL,
               partition integer NOT NULL, next_offset bigint NOT NULL, state bytea NOT NULL,
               taken_at timestamptz NOT NULL, PRIMARY KEY (grp, topic, partition))"""
        )
        await conn.execute(
            "INSERT INTO engine_snapshots VALUES ('g', $1, 0, 40, '\\x93'::bytea, now())",
            Topics.READINGS,
        )
    await migrations.migrate(pool)
    a = Engine(RULES)
    cp = Checkpoints(pool, "g", durable_offsets=True)
    # the old row's state is in a format this engine does not read: it starts empty
    await evaluate(cp, a, records(0, [1.2] * 20))
    assert len(levels(a)) == 20 and cp.held[(Topics.READINGS, 0)].epoch == 1
    await cp.save(a, None)
    assert await pool.fetchval("SELECT epoch FROM engine_snapshots") == 1


def test_a_loaded_device_belongs_to_the_partition_it_was_loaded_from() -> None:
    a = Engine(RULES)
    for i, dev in enumerate(DEVICES[:5]):
        a.on_batch(series(dev, "ch4", [1.2], t0=T0), partition=i % 2)
    b = Engine(RULES)
    b.on_batch(series(DEVICES[10], "ch4", [0.3], t0=T0), partition=2)
    b.load([a.snapshot(1)], 1)
    b.load([a.snapshot(0)], 0)
    assert [b.series.devices[d].device for d in b.series.of_partition(1)] == ["d1", "d3"]
    assert [b.series.devices[d].device for d in b.series.of_partition(0)] == ["d0", "d2", "d4"]
    assert b.snapshot(1) == a.snapshot(1)


async def test_a_removed_device_is_not_in_the_next_snapshot(pool: asyncpg.Pool) -> None:
    a = Engine(RULES)
    cp = Checkpoints(pool, "g", durable_offsets=True)
    await evaluate(cp, a, records(0, [1.2] * 20))
    await cp.save(a, None)
    a.device_removed("e1", "d4")
    await cp.save(a, None)
    b = Engine(RULES)
    got = await evaluate(Checkpoints(pool, "g", durable_offsets=True), b, records(1, [1.6] * 20))
    # d4 is judged afresh (its orange was not restored); the others go on from orange
    assert {t.device: t.from_level for t in got if t.rule_id == "coal-face-ch4"} == {
        d.device: 0 if d.device == "d4" else 3 for d in DEVICES
    }
