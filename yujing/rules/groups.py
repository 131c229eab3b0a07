"""Group (composite) rules, each group judged by exactly one owner, whatever the number of
engines.

The bus partitions readings by device, so a group's points (a tailings item, an
installation) may sit on different engines. The engines therefore only route: each point
transition that feeds a group rule becomes a `MemberChange` on `yj.groups`, keyed by the
group's alert key. This stage consumes `yj.groups` in its own consumer group, so each
group's state lives on the one owner of its partition, with one snapshot per partition of
`yj.groups` (in `engine_snapshots`, with the offset it includes, as `checkpoint.py` does
for the engine). Group transitions go to `yj.transitions`; their ids are derived from the
member changes only, so a replay yields the same ids and the alert store ignores repeats.

Order of a checkpoint, as in the engine: group transitions are published, the snapshot
rows written, then the offsets committed. A member change already applied (an engine
replaying records after a crash publishes its member changes again) is recognised and
skipped (`replayed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from prometheus_client import Counter

from yujing.config import Settings
from yujing.ingest.bus import Bus, Consumer, Record, Topics
from yujing.rules import transition as tr
from yujing.rules.emit import RuleEntry
from yujing.rules.kind import Owned
from yujing.rules.model import CompositeRule, Rule
from yujing.rules.signals import Composites, GroupRecord, GroupState, MemberChange
from yujing.rules.store import load_rules
from yujing.rules.transition import Transition

log = logging.getLogger(__name__)
GROUP_TRANSITIONS = Counter("yj_groups_transitions_total", "Group transitions published")
REPLAYED = Counter("yj_groups_replayed_changes_total", "Member changes skipped as already applied")
TICK_S = 1.0
SNAPSHOT_S = 2.0
SEEN = 64  # member changes remembered per group, to recognise a replay
ENCODER = msgspec.msgpack.Encoder()
CHANGE_DECODER = msgspec.msgpack.Decoder(MemberChange)


def encode_changes(changes: Sequence[MemberChange]) -> list[tuple[bytes, bytes]]:
    """`yj.groups` records: keyed by the group's alert key, so one owner sees the group."""
    return [(c.key.encode(), ENCODER.encode(c)) for c in changes]


class _Group(GroupRecord, array_like=True):
    """A group in the owner's snapshot: the engine's record of it, and what the owner needs
    to tell a replayed member change (`replayed`)."""

    seen: list[str]
    newest: list[tuple[str, str, str, int]]


_SNAPSHOT = msgspec.msgpack.Decoder(list[_Group])


def replayed(st: GroupState, change: MemberChange) -> bool:
    """A change the group already holds, sent again by an engine replaying after a crash
    or a partition move. Its id alone does not tell: a point may take the same step twice
    at one event time (up, down, up again), each time with the same id. A replayed change
    is older than the member's newest, or at that time but not from its present level."""
    if change.id not in st.seen:
        return False
    newest = st.newest.get((*change.member, change.source), change.ts)
    if change.ts != newest:
        return change.ts < newest
    return st.points.get(change.member, {}).get(change.source, 0) != change.was


class GroupRules:
    """The state of the groups of the `yj.groups` partitions held here (pure, no I/O).
    Shaped like every rule kind: bind, unbind, evaluate, on_tick, snapshot, restore."""

    def __init__(self, rules: Sequence[tuple[Rule, int]] = ()) -> None:
        self.composites = Composites()
        self.partition: dict[tuple[str, str], int] = {}  # (rule id, group) → its partition
        self.replayed = 0
        self._next_index = 0
        self.set_rules(rules)

    @property
    def entries(self) -> dict[str, RuleEntry]:
        return self.composites.entries

    def set_rules(self, rules: Sequence[tuple[Rule, int]]) -> None:
        """As `Engine.set_rules`: an unchanged rule keeps its groups, a new version of a
        rule keeps them too (its open alerts are neither orphaned nor raised again)."""
        wanted = {r.id: (r, v) for r, v in rules if r.enabled and isinstance(r, CompositeRule)}
        carried: dict[str, dict[Any, int]] = {}
        for rid, entry in list(self.entries.items()):
            keep = wanted.get(rid)
            if keep is not None and keep[1] == entry.version and keep[0] == entry.rule:
                continue
            carried[rid] = self.unbind(entry)
        for rid, (rule, version) in wanted.items():
            if rid not in self.entries:
                self.bind(RuleEntry(rule, version, self._next_index), carried.get(rid, {}))
                self._next_index += 1
        for key in [k for k in self.partition if k not in self.composites.groups]:
            del self.partition[key]  # a removed rule's groups are gone

    def bind(self, entry: RuleEntry, carried: dict[Any, int]) -> None:
        self.composites.bind(entry, [], carried)

    def unbind(self, entry: RuleEntry) -> dict[Any, int]:
        return self.composites.unbind(entry)

    def knows(self, change: MemberChange) -> bool:
        entry = self.entries.get(change.rule_id)
        return entry is not None and entry.version >= change.rule_version

    def evaluate(self, changes: Sequence[MemberChange], partition: int = 0) -> list[Transition]:
        """Group transitions caused by member changes (from one partition), in order."""
        out = []
        for change in changes:
            entry = self.entries.get(change.rule_id)
            if entry is None:
                continue  # a rule removed or disabled since the engine routed the change
            key = (change.rule_id, change.group)
            st = self.composites.groups.get(key)
            if st is not None and replayed(st, change):
                self.replayed += 1
                continue
            got = self.composites.apply(entry, change)
            st = self.composites.groups[key]
            st.seen[change.id] = None
            if len(st.seen) > SEEN:
                del st.seen[next(iter(st.seen))]
            member = (*change.member, change.source)
            st.newest[member] = max(change.ts, st.newest.get(member, change.ts))
            self.partition[key] = partition
            if got is not None:
                out.append(got)
        return out

    def on_tick(self, now_ms: int) -> list[Transition]:
        """Window expiry of the groups held here (all of them owned: see `drop`)."""
        return [t for _, t in self.composites.on_tick(now_ms, Owned.of(None))]

    def snapshot(self, partition: int) -> bytes:
        return ENCODER.encode(
            [
                _Group(
                    rid,
                    g,
                    st.enterprise,
                    st.site,
                    [(d, p, lv) for (d, p), lv in st.points.items()],
                    [(d, p, t) for (d, p), t in st.hot_at.items()],
                    st.level,
                    list(st.seen),
                    [(d, p, r, t) for (d, p, r), t in st.newest.items()],
                )
                for (rid, g), st in self.composites.groups.items()
                if self.partition.get((rid, g)) == partition
            ]
        )

    def restore(self, data: bytes, partition: int) -> None:
        """Replace the partition's groups by a snapshot's."""
        self.drop(partition)
        for g in _SNAPSHOT.decode(data):
            self.composites.groups[(g.rule, g.group)] = GroupState(
                g.enterprise,
                g.site,
                {(d, p): dict(lv) for d, p, lv in g.points},
                {(d, p): t for d, p, t in g.hot_at},
                g.level,
                dict.fromkeys(g.seen),
                {(d, p, r): t for d, p, r, t in g.newest},
            )
            self.partition[(g.rule, g.group)] = partition

    def drop(self, partition: int) -> None:
        """Forget a partition's groups (it moved to another owner)."""
        for key in [k for k, p in self.partition.items() if p == partition]:
            del self.partition[key]
            self.composites.groups.pop(key, None)


class GroupService:
    """The loop around `GroupRules`: follow the assignment, admit records by offset,
    evaluate, publish, tick, checkpoint."""

    def __init__(self, settings: Settings, bus: Bus, pool: asyncpg.Pool, rules: GroupRules) -> None:
        self.bus = bus
        self.pool = pool
        self.rules = rules
        self.group = group_name(settings)
        # A bus that keeps offsets across restarts (Kafka, the in-process log on disk):
        # snapshots skip records by offset (as in `checkpoint.py`).
        self.durable = bus.durable
        self.next_offset: dict[int, int] = {}
        self.held: set[int] = set()  # partitions whose snapshot is loaded
        self.published = 0
        self.skipped = 0
        self._last_tick = 0.0
        self._last_snapshot = time.monotonic()
        self._dirty = False
        self._unpublished: list[Transition] = []  # kept across a failed publish

    async def reload_rules(self) -> None:
        self.rules.set_rules(await load_rules(self.pool))

    async def follow(self, data: Consumer) -> None:
        """Drop the partitions this owner lost (their new owner loads their snapshot) and
        load those it gained, so a stale owner never writes a partition's row."""
        owned = data.assignment()
        now = {0} if owned is None else owned  # the in-process bus: one partition, ours
        for p in self.held - now:
            self.rules.drop(p)
            self.next_offset.pop(p, None)
            self.held.discard(p)
        for p in sorted(now - self.held):
            await self._load(p)
            self.held.add(p)

    async def _load(self, partition: int) -> None:
        self.rules.drop(partition)
        self.next_offset.pop(partition, None)
        row = await self.pool.fetchrow(
            "SELECT next_offset, state FROM engine_snapshots"
            " WHERE grp = $1 AND topic = $2 AND partition = $3",
            self.group,
            Topics.GROUPS,
            partition,
        )
        if row is None:
            return
        self.rules.restore(row["state"], partition)
        if self.durable:
            self.next_offset[partition] = row["next_offset"]

    async def admit(self, records: Sequence[Record]) -> dict[int, list[MemberChange]]:
        """The member changes not yet in the state, by partition."""
        out: dict[int, list[MemberChange]] = {}
        for rec in records:
            p = rec.partition
            if p not in self.held:
                continue  # fetched just before the partition moved away
            expected = self.next_offset.get(p)
            if expected is not None and rec.offset > expected:
                await self._load(p)  # a gap: another owner went further, take its state
                expected = self.next_offset.get(p)
            if expected is not None and rec.offset < expected:
                self.skipped += 1
                continue
            self.next_offset[p] = rec.offset + 1
            try:
                out.setdefault(p, []).append(CHANGE_DECODER.decode(rec.value))
            except (msgspec.DecodeError, ValueError, TypeError) as exc:
                log.warning("skipped a bad record on %s[%d]@%d: %s", rec.topic, p, rec.offset, exc)
        return out

    async def on_data(self, records: Sequence[Record]) -> list[Transition]:
        by_partition = await self.admit(records)
        if any(not self.rules.knows(c) for cs in by_partition.values() for c in cs):
            await self.reload_rules()  # a rule the engines already have: read it first
        out: list[Transition] = []
        replayed = self.rules.replayed
        for p, changes in by_partition.items():
            out.extend(self.rules.evaluate(changes, p))
        if self.rules.replayed > replayed:
            REPLAYED.inc(self.rules.replayed - replayed)
        if by_partition:
            self._dirty = True
        return out

    async def publish(self, transitions: Sequence[Transition]) -> None:
        """Publish, with whatever a failed publish left: the state already holds them."""
        self._unpublished.extend(transitions)
        if self._unpublished:
            out = self._unpublished
            await self.bus.publish(
                Topics.TRANSITIONS, [(t.key.encode(), tr.ENCODER.encode(t)) for t in out]
            )
            self._unpublished = []
            self.published += len(out)
            GROUP_TRANSITIONS.inc(len(out))

    async def tick(self) -> None:
        now = time.time()
        if now - self._last_tick >= TICK_S:
            self._last_tick = now
            got = self.rules.on_tick(int(now * 1000))
            if got:
                self._dirty = True
                await self.publish(got)

    async def checkpoint(self, data: Consumer, *, force: bool = False) -> None:
        if not self._dirty or (not force and time.monotonic() - self._last_snapshot < SNAPSHOT_S):
            return
        if self._unpublished:
            return  # a snapshot must not hold transitions nobody was told of
        now = datetime.now(UTC)
        rows = []
        for p in sorted(self.held):
            offset = self.next_offset.get(p, None if self.durable else 0)
            if offset is not None:
                rows.append((self.group, Topics.GROUPS, p, offset, self.rules.snapshot(p), now))
        if rows:
            async with self.pool.acquire() as conn, conn.transaction():
                # A row never goes back in offsets (on a durable bus): an owner that has
                # not yet noticed losing a partition cannot overwrite its new owner's row.
                await conn.executemany(
                    f"""INSERT INTO engine_snapshots
                           (grp, topic, partition, next_offset, state, taken_at)
                       VALUES ($1, $2, $3, $4, $5, $6)
                       ON CONFLICT (grp, topic, partition) DO UPDATE
                       SET next_offset = $4, state = $5, taken_at = $6
                       WHERE {"engine_snapshots.next_offset <= $4" if self.durable else "true"}""",
                    rows,
                )
        await data.commit()
        self._dirty = False
        self._last_snapshot = time.monotonic()

    async def step(self, data: Consumer, control: Consumer) -> None:
        if await control.next_batch(timeout_s=0.01):
            await self.reload_rules()
        records = await data.next_batch(timeout_s=0.2)
        await self.follow(data)
        await self.publish(await self.on_data(records) if records else [])
        await self.tick()
        await self.checkpoint(data)


def group_name(settings: Settings) -> str:
    """The consumer group of `yj.groups`, beside the engine's own."""
    return f"{settings.engine_group}.groups"


async def run_groups(settings: Settings, bus: Bus, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """The group rules' owner, run beside the engine (`run_engine`) in every engine process."""
    # Subscribed before the rules are loaded, as in `run_engine`: a rule change made in
    # between is then applied twice, which is harmless, rather than missed.
    control = bus.consumer([Topics.RULES], None)
    data = bus.consumer([Topics.GROUPS], group_name(settings))
    try:
        service = GroupService(settings, bus, pool, GroupRules(await load_rules(pool)))
        while not stop.is_set():
            try:
                await service.step(data, control)
            except (OSError, asyncpg.PostgresError) as exc:
                log.error("group step failed, retrying: %s", exc)
                await asyncio.sleep(1.0)
        await service.checkpoint(data, force=True)
    finally:
        await data.close()
        await control.close()
