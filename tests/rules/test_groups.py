"""Group rules judged by their group's owner: a tailings item whose points sit on two
engines gets the alert one engine seeing everything gives; a replayed member change
changes nothing; a partition's snapshot carries its groups and only those."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo
from yujing.ingest.bus import MemoryBus, Topics
from yujing.rules import store, transition
from yujing.rules.engine import Engine
from yujing.rules.groups import CHANGE_DECODER, GroupRules, encode_changes
from yujing.rules.model import Rule
from yujing.rules.packs import default_rules
from yujing.rules.service import run_engine
from yujing.rules.signals import MemberChange
from yujing.rules.transition import Transition
from yujing.testing.rules import batch

T0 = 1_763_856_000_000
ITEM = ("tailings-displacement", "tailings-item-yellow", "tailings-item-orange",
        "tailings-item-red", "tailings-phreatic", "tailings-dam-yellow")  # fmt: skip


def rules() -> list[tuple[Rule, int]]:
    return [(r, 1) for r in default_rules() if r.id in ITEM]


def tailings(n: int, item: str = "displacement") -> DeviceInfo:
    tags = {"dam": "dam-1", "item": item, "warn_blue": "10", "warn_yellow": "20",
            "warn_orange": "30", "warn_red": "40"}  # fmt: skip
    return DeviceInfo("e1", f"tm-{n}", "tailings_monitor", "tk-1", tags, {item: "mm"})


DEVS = [tailings(i) for i in range(4)]
# (step, device, value): two points on each engine; yellow needs all four at blue
STEPS = [[(0, 12.0), (2, 12.0)], [(1, 12.0)], [(3, 15.0), (0, 31.0)], [(1, 33.0), (2, 5.0)]]


def groups_of(out: list[Transition]) -> list[tuple[str, int, int, int]]:
    return [(t.rule_id, t.from_level, t.to_level, t.ts) for t in out if t.device is None]


def feed(engine: Engine, step: int, devs: set[int]) -> list[Transition]:
    rows = [(DEVS[d], "displacement", T0 + step * 1000 + d, v) for d, v in STEPS[step]]
    mine = [r for r in rows if int(r[0].device[3:]) in devs]
    return engine.on_batch(batch(mine)) if mine else []


def test_points_on_two_engines_give_the_alert_of_one_engine_seeing_all() -> None:
    one = Engine(rules())
    want = [g for step in range(len(STEPS)) for g in groups_of(feed(one, step, {0, 1, 2, 3}))]
    assert [(r, a, b) for r, a, b, _ in want] == [
        ("tailings-item-yellow", 0, 2),  # the fourth blue point
        ("tailings-item-red", 0, 4),  # two orange points
    ]
    # Each engine judging its own points alone (as before) sees at most two of the four.
    alone = [Engine(rules()), Engine(rules())]
    for step in range(len(STEPS)):
        assert groups_of(feed(alone[0], step, {0, 2}) + feed(alone[1], step, {1, 3})) == []
    # Routed: both engines send their member changes to the group's owner.
    engines = [Engine(rules(), route_groups=True), Engine(rules(), route_groups=True)]
    owner = GroupRules(rules())
    got = []
    for step in range(len(STEPS)):
        for engine, devs in zip(engines, ({0, 2}, {1, 3}), strict=True):
            assert groups_of(feed(engine, step, devs)) == []
            wire = encode_changes(engine.composites.drain())  # as on `yj.groups`
            got += groups_of(owner.evaluate([CHANGE_DECODER.decode(v) for _, v in wire]))
    assert got == want


def changes(ts: int, level: int, *devices: int) -> list[MemberChange]:
    engine = Engine(rules(), route_groups=True)
    for d in devices:
        engine.on_batch(batch([(DEVS[d], "displacement", ts, [0, 12.0, 22.0, 31.0][level])]))
    return engine.composites.drain()


def test_a_replayed_member_change_is_skipped() -> None:
    owner = GroupRules(rules())
    first = changes(T0, 1, 0, 1, 2, 3)
    assert groups_of(owner.evaluate(first)) == [("tailings-item-yellow", 0, 2, T0)]
    # An engine replaying after a crash sends the same changes again: nothing happens, and
    # a later change still counts.
    assert owner.evaluate(first) == []
    assert owner.replayed == len(first)
    later = changes(T0 + 5000, 2, 0, 1, 2)
    assert groups_of(owner.evaluate(later)) == [("tailings-item-orange", 0, 3, T0 + 5000)]


def test_a_partition_snapshot_holds_its_groups_and_restores_them() -> None:
    owner = GroupRules(rules())
    item = changes(T0, 1, 0, 1, 2)  # three blue points: yellow needs four
    owner.evaluate([c for c in item if c.rule_id != "tailings-dam-yellow"], partition=1)
    owner.evaluate([c for c in item if c.rule_id == "tailings-dam-yellow"], partition=2)
    held = {(rid, g) for rid, g in owner.composites.groups}
    assert ("tailings-item-yellow", "e1/dam-1:displacement") in held
    restored = GroupRules(rules())
    restored.restore(owner.snapshot(1), 1)
    assert set(restored.composites.groups) == {k for k, p in owner.partition.items() if p == 1}
    # The fourth point makes the restored item yellow, as it does the original.
    fourth = [c for c in changes(T0 + 10, 1, 3) if c.rule_id != "tailings-dam-yellow"]
    assert groups_of(restored.evaluate(fourth, 1)) == groups_of(owner.evaluate(fourth, 1))
    assert groups_of(restored.evaluate(fourth, 1)) == []  # replayed: skipped
    # A partition that moves away takes its groups with it.
    owner.drop(1)
    assert {p for p in owner.partition.values()} == {2}
    assert all(rid == "tailings-dam-yellow" for rid, _ in owner.composites.groups)


def test_a_new_rule_version_keeps_the_group_level() -> None:
    owner = GroupRules(rules())
    owner.evaluate(changes(T0, 1, 0, 1, 2, 3))
    owner.set_rules([(r, 2 if r.id == "tailings-item-yellow" else 1) for r, _ in rules()])
    st = owner.composites.groups[("tailings-item-yellow", "e1/dam-1:displacement")]
    assert st.level == 2 and owner.entries["tailings-item-yellow"].version == 2
    owner.set_rules([(r, 1) for r, _ in rules() if r.id != "tailings-item-yellow"])
    assert ("tailings-item-yellow", "e1/dam-1:displacement") not in owner.composites.groups
    assert ("tailings-item-yellow", "e1/dam-1:displacement") not in owner.partition


@pytest.mark.integration
async def test_the_engine_stage_judges_groups_and_keeps_them_over_a_restart(
    pool: asyncpg.Pool,
) -> None:
    """Embedded (in-process bus, real PostgreSQL): the stage's group owner publishes the
    group alert; three blue points before a restart and a fourth after make it yellow."""

    async def run(devices: list[int], ts: int) -> list[Transition]:
        bus, stop = MemoryBus(), asyncio.Event()
        out = bus.consumer([Topics.TRANSITIONS], "test")
        task = asyncio.create_task(run_engine(Settings(), bus, pool, stop))
        await asyncio.sleep(0.5)  # the consumers subscribe
        records = [
            (DEVS[d].key.encode(), batch([(DEVS[d], "displacement", ts, 12.0)]).to_bytes())
            for d in devices
        ]
        await bus.publish(Topics.READINGS, records)
        got: list[Transition] = []
        end = asyncio.get_running_loop().time() + 5
        while len([t for t in got if t.device]) < len(devices):
            assert asyncio.get_running_loop().time() < end, got
            got += [transition.DECODER.decode(r.value) for r in await out.next_batch(0.2)]
        got += [transition.DECODER.decode(r.value) for r in await out.next_batch(1.0)]
        stop.set()
        await asyncio.wait_for(task, 10)
        return got

    await store.ensure_default_rules(pool)
    before = await run([0, 1, 2], T0)
    assert groups_of(before) == []
    rows = await pool.fetchval("SELECT count(*) FROM engine_snapshots WHERE topic = 'yj.groups'")
    assert rows == 1  # the in-process bus: one partition
    after = await run([3], T0 + 1000)
    assert groups_of(after) == [("tailings-item-yellow", 0, 2, T0 + 1000)]


def test_the_same_step_twice_at_one_time_counts_and_its_replay_does_not() -> None:
    """A point that goes blue, back and blue again at one event time takes the same step
    (same id) twice; both count. Sent again after a crash, the changes leave the group as
    it was (the last two, at the member's newest time and from its level then, are applied
    again: down and up at that time, which the window absorbs)."""
    engine = Engine(rules(), route_groups=True)
    for d in (0, 1, 2):
        engine.on_batch(batch([(DEVS[d], "displacement", T0, 12.0)]))
    flap = batch([(DEVS[3], "displacement", T0 + 5, v) for v in (12.0, 1.0, 12.0)])
    engine.on_batch(flap)
    sent = [c for c in engine.composites.drain() if c.rule_id == "tailings-item-yellow"]
    ids = [c.id for c in sent[3:]]
    assert ids[0] == ids[2]  # the same step twice
    owner = GroupRules(rules())
    got = groups_of(owner.evaluate(sent))
    # the fourth point's first step makes the item yellow (the window keeps it counting)
    assert got == [("tailings-item-yellow", 0, 2, T0 + 5)]
    st = owner.composites.groups[("tailings-item-yellow", "e1/dam-1:displacement")]
    assert st.points[("tm-3", "displacement")] == {"tailings-displacement": 1}
    before = (dict(st.points), dict(st.hot_at), st.level)
    assert owner.evaluate(sent) == []
    assert owner.replayed == len(sent) - 2
    assert (st.points, st.hot_at, st.level) == before
