"""Snapshots of engine state in PostgreSQL, one row per (group, topic, partition), each
with the offset of the first record it does not include.

Order of a checkpoint: transitions are already published; the snapshot rows are written
(one transaction); then the bus offsets are committed. A crash before the rows are
written replays from the previous checkpoint and re-publishes identical transitions
(same ids). A crash between the rows and the commit replays records the snapshot already
holds: `admit` drops them by offset, so their transitions are not published again.
A partition that arrives here from another engine (or comes back after a gap in its
offsets) is loaded from its row before any of its records is evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from yujing.ingest.bus import Record, Topics
from yujing.rules import snapshot
from yujing.rules.engine import Engine

STATEFUL = (Topics.READINGS, Topics.EVENTS)


class Checkpoints:
    def __init__(self, pool: asyncpg.Pool, group: str, *, durable_offsets: bool) -> None:
        """`durable_offsets`: the bus keeps offsets across restarts (Kafka). The in-process
        bus starts again at 0, so its snapshots restore state but never skip records."""
        self.pool = pool
        self.group = group
        self.durable = durable_offsets
        self.next_offset: dict[tuple[str, int], int] = {}  # what this engine has evaluated
        self.skipped = 0

    async def admit(self, engine: Engine, records: Sequence[Record]) -> list[Record]:
        """The records not yet in the engine's state, loading partitions it lacks."""
        out = []
        for rec in records:
            tp = (rec.topic, rec.partition)
            expected = self.next_offset.get(tp)
            if rec.topic in STATEFUL and (expected is None or rec.offset != expected):
                await self._load(engine, tp)
                expected = self.next_offset.get(tp)
            if expected is not None and rec.offset < expected:
                self.skipped += 1
                continue
            self.next_offset[tp] = rec.offset + 1
            out.append(rec)
        return out

    async def _load(self, engine: Engine, tp: tuple[str, int]) -> None:
        row = await self.pool.fetchrow(
            "SELECT next_offset, state FROM engine_snapshots"
            " WHERE grp = $1 AND topic = $2 AND partition = $3",
            self.group,
            tp[0],
            tp[1],
        )
        if row is None:
            self.next_offset.pop(tp, None)
            return
        snapshot.load(engine, row["state"], tp[1])
        if self.durable:
            self.next_offset[tp] = row["next_offset"]
        else:
            self.next_offset.pop(tp, None)

    async def save(self, engine: Engine) -> None:
        now = datetime.now(UTC)
        rows = []
        for (topic, partition), offset in self.next_offset.items():
            if topic not in STATEFUL:
                continue  # status changes live in the readings partitions' health slots
            on_events = topic == Topics.EVENTS
            state = snapshot.dump(engine, partition, series=not on_events, events=on_events)
            rows.append((self.group, topic, partition, offset, state, now))
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                """INSERT INTO engine_snapshots
                       (grp, topic, partition, next_offset, state, taken_at)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (grp, topic, partition) DO UPDATE
                   SET next_offset = $4, state = $5, taken_at = $6""",
                rows,
            )
