"""Snapshots of engine state in PostgreSQL, one row per (group, topic, partition) held by
one owner at a time, each with the offset of the first record it does not include.

Order of a checkpoint: transitions are already published; the snapshot rows are written
(one transaction); then the bus offsets are committed. A crash before the rows are
written replays from the previous checkpoint and re-publishes identical transitions
(same ids). A crash between the rows and the commit replays records the snapshot already
holds: `admit` drops them by offset, so their transitions are not published again.

Ownership: an engine that starts on a partition (it arrived from another engine, or came
back after a gap in its offsets) *claims* its row (`epoch = epoch + 1`) and loads it
before evaluating any of its records. Every write names the epoch of the claim, so an
engine that lost the partition cannot overwrite the new owner's row: its write matches
no row, and it drops the partition's state. Partitions the bus no longer assigns are
dropped (state and offsets) before a checkpoint.

Cost: a row holds a whole snapshot (the base) and `engine_snapshot_deltas` the deltas
written after it, each with only the devices that changed (`Engine.capture`); a load
applies the base and then the deltas in order. A base is written again when the deltas
add up to more than it, so a checkpoint costs what changed, plus at most as much again.
Encoding runs in a worker thread on copies, not on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec

from yujing.ingest.bus import Record, Topics
from yujing.rules.engine import Engine
from yujing.rules.snapshot import Snapshot, encode

log = logging.getLogger(__name__)
STATEFUL = (Topics.READINGS, Topics.EVENTS)
MAX_DELTAS = 30  # a base is written again after this many deltas, whatever their size

CLAIM = """
INSERT INTO engine_snapshots (grp, topic, partition, next_offset, state, taken_at, epoch)
VALUES ($1, $2, $3, 0, ''::bytea, $4, 1)
ON CONFLICT (grp, topic, partition) DO UPDATE SET epoch = engine_snapshots.epoch + 1
RETURNING epoch, next_offset, state"""
DELTAS = """
SELECT state FROM engine_snapshot_deltas
WHERE grp = $1 AND topic = $2 AND partition = $3 ORDER BY seq"""
# Only the rows still held with our epoch are written; what matched comes back.
HEADS = """
UPDATE engine_snapshots s
SET next_offset = u.next_offset, taken_at = $2, state = coalesce(u.state, s.state)
FROM unnest($3::text[], $4::integer[], $5::bigint[], $6::bigint[], $7::bytea[])
     AS u(topic, partition, epoch, next_offset, state)
WHERE s.grp = $1 AND s.topic = u.topic AND s.partition = u.partition AND s.epoch = u.epoch
RETURNING s.topic, s.partition"""
DROP_DELTAS = """
DELETE FROM engine_snapshot_deltas d USING unnest($2::text[], $3::integer[]) AS u(topic, partition)
WHERE d.grp = $1 AND d.topic = u.topic AND d.partition = u.partition"""
ADD_DELTAS = """
INSERT INTO engine_snapshot_deltas (grp, topic, partition, seq, state)
SELECT $1, u.topic, u.partition, u.seq, u.state
FROM unnest($2::text[], $3::integer[], $4::integer[], $5::bytea[])
     AS u(topic, partition, seq, state)
ON CONFLICT (grp, topic, partition, seq) DO UPDATE SET state = excluded.state"""

TP = tuple[str, int]


@dataclass
class Chain:
    """A held partition's row: our epoch, the size of its base (0: none yet) and of the
    deltas after it, and the next delta's sequence number."""

    epoch: int
    base: int = 0
    deltas: int = 0
    delta_bytes: int = 0

    def wants_base(self) -> bool:
        return not self.base or self.deltas >= MAX_DELTAS or self.delta_bytes > self.base


@dataclass
class _Write:
    tp: TP
    epoch: int
    offset: int
    snap: Snapshot
    full: bool
    seq: int


class Checkpoints:
    def __init__(self, pool: asyncpg.Pool, group: str, *, durable_offsets: bool) -> None:
        """`durable_offsets`: the bus keeps offsets across restarts (Kafka). The in-process
        bus starts again at 0, so its snapshots restore state but never skip records."""
        self.pool = pool
        self.group = group
        self.durable = durable_offsets
        self.next_offset: dict[TP, int] = {}  # what this engine has evaluated
        self.held: dict[TP, Chain] = {}  # the rows this engine has claimed
        self._written: dict[TP, int] = {}  # next_offset as last written
        self.skipped = 0
        self.lost = 0  # partitions whose row another engine claimed before our write

    async def admit(self, engine: Engine, records: Sequence[Record]) -> list[Record]:
        """The records not yet in the engine's state, loading partitions it lacks."""
        out = []
        for rec in records:
            tp = (rec.topic, rec.partition)
            expected = self.next_offset.get(tp)
            if rec.topic in STATEFUL and (
                tp not in self.held or expected is None or rec.offset != expected
            ):
                await self._load(engine, tp)
                expected = self.next_offset.get(tp)
            if expected is not None and rec.offset < expected:
                self.skipped += 1
                continue
            self.next_offset[tp] = rec.offset + 1
            out.append(rec)
        return out

    async def _load(self, engine: Engine, tp: TP) -> None:
        """Claim the partition's row and replace what the engine holds of it by the row."""
        async with self.pool.acquire() as conn, conn.transaction():
            head = await conn.fetchrow(CLAIM, self.group, tp[0], tp[1], datetime.now(UTC))
            deltas = await conn.fetch(DELTAS, self.group, tp[0], tp[1])
        assert head is not None
        engine.drop_partition(tp[1], series=tp[0] == Topics.READINGS, events=tp[0] == Topics.EVENTS)
        chain = self.held[tp] = Chain(head["epoch"])
        self.next_offset.pop(tp, None)
        self._written.pop(tp, None)
        base: bytes = head["state"]
        if not base:
            return  # a partition no engine has written yet
        parts = [base, *(r["state"] for r in deltas)]
        try:
            engine.load(parts, tp[1])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # A snapshot from an older format: the partition starts empty (from the
            # committed offset); the next checkpoint writes it anew.
            log.warning("snapshot of %s[%d] not readable, starting it empty: %s", *tp, exc)
            engine.drop_partition(
                tp[1], series=tp[0] == Topics.READINGS, events=tp[0] == Topics.EVENTS
            )
            return
        chain.base, chain.deltas = len(base), len(deltas)
        chain.delta_bytes = sum(len(p) for p in parts[1:])
        if self.durable:
            self.next_offset[tp] = self._written[tp] = head["next_offset"]

    def release(self, engine: Engine, owned: Collection[int] | None) -> None:
        """Drop the partitions the bus no longer assigns to this engine (None: all are)."""
        if owned is None:
            return
        for tp in [tp for tp in {*self.next_offset, *self.held} if tp[1] not in owned]:
            self._drop(engine, tp)

    def _drop(self, engine: Engine, tp: TP) -> None:
        self.next_offset.pop(tp, None)
        self.held.pop(tp, None)
        self._written.pop(tp, None)
        if tp[0] in STATEFUL:
            engine.drop_partition(
                tp[1], series=tp[0] == Topics.READINGS, events=tp[0] == Topics.EVENTS
            )

    async def save(self, engine: Engine, owned: Collection[int] | None = None) -> None:
        """Write the held partitions' state: for each, its changes since the last save (a
        delta) or, when its deltas outgrow the base, a new base."""
        self.release(engine, owned)
        writes = self._capture(engine)
        if not writes:
            return
        try:
            blobs = await asyncio.to_thread(lambda: [encode(w.snap) for w in writes])
            matched = await self._write(writes, blobs)
        except BaseException:
            # The changes were taken from the engine's marks: write whole bases next time.
            engine.changed_all = True
            raise
        for w, blob in zip(writes, blobs, strict=True):
            chain = self.held.get(w.tp)
            if w.tp not in matched or chain is None:
                if chain is not None:
                    self.lost += 1
                    log.warning("%s[%d] was claimed by another engine: dropped", *w.tp)
                    self._drop(engine, w.tp)
                continue
            self._written[w.tp] = w.offset
            if w.full:
                chain.base, chain.deltas, chain.delta_bytes = len(blob), 0, 0
            else:
                chain.deltas, chain.delta_bytes = chain.deltas + 1, chain.delta_bytes + len(blob)

    def _capture(self, engine: Engine) -> list[_Write]:
        """Every held partition's changes, as copies (synchronously: the engine may change
        once this returns); then the engine's change marks restart."""
        writes = []
        everything = engine.changed_all
        for tp, chain in self.held.items():
            offset = self.next_offset.get(tp)
            if offset is None:
                continue  # claimed, nothing evaluated yet
            series, events = tp[0] == Topics.READINGS, tp[0] == Topics.EVENTS
            full = everything or chain.wants_base()
            snap, full = engine.capture(tp[1], series=series, events=events, full=full)
            if not full and not snap.devices and not snap.kinds and self._written.get(tp) == offset:
                continue  # nothing changed
            writes.append(_Write(tp, chain.epoch, offset, snap, full, chain.deltas))
        engine.saved()
        return writes

    async def _write(self, writes: list[_Write], blobs: list[bytes]) -> set[TP]:
        g = self.group
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                HEADS, g, datetime.now(UTC),
                [w.tp[0] for w in writes], [w.tp[1] for w in writes], [w.epoch for w in writes],
                [w.offset for w in writes],
                [b if w.full else None for w, b in zip(writes, blobs, strict=True)],
            )  # fmt: skip
            matched = {(r["topic"], r["partition"]) for r in rows}
            ok = [(w, b) for w, b in zip(writes, blobs, strict=True) if w.tp in matched]
            bases = [w for w, _ in ok if w.full]
            if bases:
                await conn.execute(
                    DROP_DELTAS, g, [w.tp[0] for w in bases], [w.tp[1] for w in bases]
                )
            deltas = [(w, b) for w, b in ok if not w.full]
            if deltas:
                await conn.execute(
                    ADD_DELTAS, g,
                    [w.tp[0] for w, _ in deltas], [w.tp[1] for w, _ in deltas],
                    [w.seq for w, _ in deltas], [b for _, b in deltas],
                )  # fmt: skip
        return matched
