"""The bus between stages: publish batches of keyed records, consume them in batches, commit.

Two implementations share this interface: `MemoryBus` (embedded mode, one process) and
`KafkaBus` (distributed mode, aiokafka, in `yujing.ingest.kafka`). Like ThingsBoard's
in-memory and Kafka queues, the stages cannot tell them apart. What each topic carries is
in `yujing.ingest.topics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol

from yujing.ingest import wal as w
from yujing.ingest.topics import Topics

__all__ = ["Bus", "Consumer", "MemoryBus", "Record", "Topics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    partition: int = 0
    offset: int = 0
    # The in-process bus hands a consumer the object its publisher built (a ReadingBatch)
    # beside the bytes, so that it need not decode them; None over Kafka or after a restart.
    decoded: Any = field(default=None, compare=False, repr=False)


class CommitFailed(Exception):
    """The broker did not take an offset commit. `lost`: the group rebalanced and the
    partitions are no longer this consumer's (their new owner re-reads from the last
    commit); otherwise the same commit may be tried again."""

    def __init__(self, message: str, *, lost: bool) -> None:
        super().__init__(message)
        self.lost = lost


class Consumer(Protocol):
    async def next_batch(self, timeout_s: float = 1.0, max_records: int = 10_000) -> list[Record]:
        """Records in order per partition; empty after `timeout_s` with nothing to read."""

    async def commit(self) -> None:
        """Mark everything returned so far as processed; raises `CommitFailed`."""

    def assignment(self) -> set[int] | None:
        """The partitions this consumer holds now; None when it holds every partition (the
        in-process bus, or a broadcast consumer)."""

    async def lag(self) -> int | None:
        """Records on the held partitions not yet returned (None: not known yet)."""

    async def close(self) -> None: ...


class Bus(Protocol):
    # Offsets survive a restart (Kafka; the in-process bus with its log on disk), so a
    # snapshot's offset can say which records it already holds.
    durable: bool

    async def start(self) -> None: ...

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        decoded: Sequence[Any] | None = None,
    ) -> None:
        """Returns once the bus has accepted every (key, value); raises if it did not.
        `decoded`, when given, holds the object each value was encoded from, handed as is
        to consumers in the same process (`Record.decoded`)."""

    def consumer(self, topics: Sequence[str], group: str | None) -> Consumer:
        """A group consumer shares partitions with its group and starts from the group's
        committed position (a new group: from the oldest record kept); `group=None` reads
        every partition from the start (for broadcast topics such as `yj.rules`)."""

    async def close(self) -> None: ...


def decoded(record: Record, decode: Any) -> Any:
    """The record's value as an object: the publisher's own when handed over, else decoded."""
    return record.decoded if record.decoded is not None else decode(record.value)


class _TopicLog:
    """One topic of the in-process bus (one partition): records by offset, in memory."""

    def __init__(self, name: str, first: int) -> None:
        self.name = name
        self.compacted = name in Topics.COMPACTED
        # (bus-wide publish order, record, bytes of values up to and with this one)
        self.entries: list[tuple[int, Record, int]] = []
        self.next = first  # the offset the next record gets
        self.size = 0  # bytes of all values ever added
        self.low = first  # nothing below it is kept (compacted topics: the first offset)
        self.latest: dict[bytes, Record] = {}  # compacted topics: the latest per key
        self.where: dict[bytes, int] = {}  # ... and the log segment that holds it

    def add(self, seq: int, rec: Record) -> None:
        self.size += len(rec.value)
        self.entries.append((seq, rec, self.size))
        if self.compacted:
            self.latest[rec.key] = rec
            if len(self.entries) > 2 * len(self.latest) + 1024:
                self.entries = [e for e in self.entries if self.latest[e[1].key] is e[1]]

    def since(self, offset: int, n: int) -> list[tuple[int, Record, int]]:
        i = bisect_left(self.entries, max(offset, self.low), key=_offset)
        return self.entries[i : i + n]

    def bytes_from(self, offset: int) -> int:
        """Bytes of the values from `offset` on."""
        i = bisect_left(self.entries, offset, key=_offset)
        if i == len(self.entries):
            return 0
        _, rec, upto = self.entries[i]
        return self.size - upto + len(rec.value)

    def trim(self, below: int) -> None:
        if self.compacted or below <= self.low:
            return
        self.low = below
        i = bisect_left(self.entries, below, key=_offset)
        if i >= 1024 or 2 * i >= len(self.entries):  # amortised: a list shifts on delete
            del self.entries[:i]


def _offset(entry: tuple[int, Record, int]) -> int:
    return entry[1].offset


class MemoryBus:
    """In-process bus: a log per topic and a committed position per (group, topic), as
    Kafka's with one partition, so a consumer that subscribes late still reads what it
    missed and start order does not matter.

    Memory is bounded: records every group has committed are dropped, and `publish`
    waits while a group lags more than `max_lag` records or `max_lag_bytes` of values
    behind (back-pressure, which delays ingest's MQTT acknowledgements; nothing is
    dropped). A topic no group reads keeps its last `max_lag` records. Compacted topics
    (`yj.rules`, `yj.registry`) keep the latest record per key and never wait.

    With a `Wal` the log is durable: `publish` returns once the records are synced to
    disk (group commit: concurrent publishes share one fsync), commits are logged the same
    way, a restart replays the log from each group's committed position, and a segment
    is deleted once every group has passed it. Without one, a process exit loses it all.
    """

    def __init__(
        self, max_lag: int = 100_000, wal: w.Wal | None = None, max_lag_bytes: int = 128 << 20
    ) -> None:
        # The engine commits with its snapshot, every 2 s: the bound must hold what the
        # fastest ingest publishes in that time (20,000 one-reading messages/s).
        self._max_lag = max_lag
        self._max_lag_bytes = max_lag_bytes
        self._wal = wal
        self._writer: w.Writer | None = None
        self.durable = wal is not None
        self._logs: dict[str, _TopicLog] = {}
        self._positions: dict[str, dict[str, int]] = {}  # group → topic → committed offset
        self._durable_next: dict[str, int] = {}  # per topic, the next offset not on disk
        self._attached: set[str] = set()
        self._seq = 0
        self._grew = asyncio.Event()  # replaced (after being set) whenever records arrive
        self._moved = asyncio.Event()  # the same when a group commits
        self._reclaiming: asyncio.Task[None] | None = None

    # -- the log -----------------------------------------------------------------------

    def _log(self, topic: str) -> _TopicLog:
        found = self._logs.get(topic)
        if found is None:
            # A durable log starts a topic above any offset an earlier log (or an earlier
            # in-process bus) could have reached, so an engine snapshot taken against one
            # never makes the engine skip this one's records as already seen.
            first = time.time_ns() // 1000 if self.durable else 0
            found = self._logs[topic] = _TopicLog(topic, first)
            self._durable_next[topic] = first
        return found

    def _floor(self, topic: str) -> int | None:
        """The lowest committed position of the groups reading `topic`, None if none does."""
        found = [p[topic] for p in self._positions.values() if topic in p]
        return min(found) if found else None

    def _expose(self, records: Sequence[Record], segment: int | None = None) -> None:
        for rec in records:
            topic = self._logs[rec.topic]
            self._seq += 1
            topic.add(self._seq, rec)
            if segment is not None:
                top = self._wal.segments[-1].top if self._wal else {}
                top[rec.topic] = rec.offset
                if topic.compacted:
                    topic.where[rec.key] = segment
        if records:
            t = records[-1].topic
            self._durable_next[t] = records[-1].offset + 1
            if self._floor(t) is None:
                self._logs[t].trim(self._logs[t].next - self._max_lag)
        grew, self._grew = self._grew, asyncio.Event()
        grew.set()

    def _apply(self, group: str, changes: dict[str, int]) -> None:
        self._positions.setdefault(group, {}).update(changes)
        for topic in changes:
            floor = self._floor(topic)
            if floor is not None:
                self._log(topic).trim(floor)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        if self._writer is not None and self._reclaiming is None:
            self._reclaiming = asyncio.get_running_loop().create_task(self._reclaim())

    def _head(self) -> bytes:
        positions = {g: dict(p) for g, p in self._positions.items()}
        return w.frame([w.HEAD, positions, dict(self._durable_next)])

    def retained(self, topic: str) -> int:
        """How many records of `topic` are held in memory."""
        t = self._logs.get(topic)
        return 0 if t is None else len(t.entries) - bisect_left(t.entries, t.low, key=_offset)

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        if self._wal is None or self._writer is not None:
            return
        await asyncio.to_thread(self._replay, self._wal)
        self._writer = w.Writer(self._wal, self._head)
        self._writer.start()

    def _replay(self, wal: w.Wal) -> None:
        seq, records = 0, 0
        for seg, body in wal.replay():
            kind = body[0]
            if kind == w.RECORD:
                _, topic, offset, key, value = body
                t = self._logs.get(topic) or self._new_replayed(topic)
                rec = Record(topic, key, value, 0, offset)
                if t.compacted:
                    old = t.latest.get(key)
                    if old is None or old.offset <= offset:
                        t.latest[key], t.where[key] = rec, seg.number
                else:
                    seq += 1
                    t.add(seq, rec)
                seg.top[topic] = max(seg.top.get(topic, -1), offset)
                t.next = max(t.next, offset + 1)
                records += 1
            elif kind == w.COMMIT:
                _, group, topic, offset = body
                self._replayed_position(group, topic, offset)
            elif kind == w.HEAD:
                for group, tops in body[1].items():
                    for topic, offset in tops.items():
                        self._replayed_position(group, topic, offset)
                for topic, n in body[2].items():
                    t = self._logs.get(topic) or self._new_replayed(topic)
                    t.next = max(t.next, n)
        for t in self._logs.values():
            if t.compacted:
                for r in sorted(t.latest.values(), key=lambda r: r.offset):
                    t.add(0, r)
            t.low = t.entries[0][1].offset if t.entries else t.next
            floor = self._floor(t.name)
            t.trim(floor if floor is not None else t.next - self._max_lag)
            self._durable_next[t.name] = t.next
        self._seq = seq
        if records:
            log.info("bus log replayed: %d records in %d segments", records, len(wal.segments))

    def _replayed_position(self, group: str, topic: str, offset: int) -> None:
        self._positions.setdefault(group, {})[topic] = offset
        # A group can hold a position in a topic nothing was published to yet: the
        # topic's offsets go on from there.
        t = self._logs.get(topic) or self._new_replayed(topic)
        t.next = max(t.next, offset)

    def _new_replayed(self, topic: str) -> _TopicLog:
        t = self._logs[topic] = _TopicLog(topic, 0)
        return t

    async def close(self) -> None:
        self._attached.clear()
        if self._reclaiming is not None:
            await self._reclaiming
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    # -- publish and commit --------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        decoded: Sequence[Any] | None = None,
    ) -> None:
        if not records:
            return
        t = self._log(topic)
        while not t.compacted:
            floor = self._floor(topic)
            if floor is None or (
                t.next - floor < self._max_lag and t.bytes_from(floor) < self._max_lag_bytes
            ):
                break
            await self._moved.wait()  # a slow group: wait for it to commit
        out = []
        for i, (key, value) in enumerate(records):
            out.append(Record(topic, key, value, 0, t.next, decoded[i] if decoded else None))
            t.next += 1
        if self._writer is None:
            self._expose(out)
            return
        data = b"".join(w.frame([w.RECORD, topic, r.offset, r.key, r.value]) for r in out)
        await self._writer.submit(data, lambda segment: self._expose(out, segment))

    async def _commit(self, group: str, changes: dict[str, int]) -> None:
        if self._writer is None:
            self._apply(group, changes)
            return
        data = b"".join(w.frame([w.COMMIT, group, t, o]) for t, o in changes.items())
        await self._writer.submit(data, lambda _: self._apply(group, changes))

    async def _reclaim(self) -> None:
        """Deletes the oldest segments every group has passed. The latest record of a key
        of a compacted topic is written again first, so that it outlives its segment."""
        try:
            while self._wal is not None and self._writer is not None:
                if len(self._wal.segments) < 2:
                    return
                seg = self._wal.segments[0]
                if any(
                    not self._logs[t].compacted and top >= self._logs[t].low
                    for t, top in seg.top.items()
                ):
                    return
                kept = [
                    t.latest[k]
                    for t in self._logs.values()
                    if t.compacted
                    for k, n in t.where.items()
                    if n == seg.number
                ]
                if kept:
                    data = b"".join(
                        w.frame([w.RECORD, r.topic, r.offset, r.key, r.value]) for r in kept
                    )
                    await self._writer.submit(data, functools.partial(self._moved_to, kept))
                await asyncio.to_thread(self._wal.drop_oldest)
        except OSError as exc:  # the segment stays; the next commit tries again
            log.warning("bus log: a segment could not be deleted: %s", exc)
        finally:
            self._reclaiming = None

    def _moved_to(self, records: list[Record], segment: int) -> None:
        top = self._wal.segments[-1].top if self._wal else {}
        for r in records:
            t = self._logs[r.topic]
            if t.latest.get(r.key) is r:
                t.where[r.key] = segment
            top[r.topic] = max(top.get(r.topic, -1), r.offset)

    # -- consumers -----------------------------------------------------------------------

    def consumer(self, topics: Sequence[str], group: str | None) -> Consumer:
        if group is not None:
            if group in self._attached:
                raise RuntimeError(f"the in-process bus has one consumer per group ({group})")
            self._attached.add(group)
            known = self._positions.setdefault(group, {})
            new = {t: self._log(t).low for t in topics if t not in known}
            if new:
                # A new group holds the log from here on; logged so that a restart knows.
                known.update(new)
                if self._writer is not None:
                    data = b"".join(w.frame([w.COMMIT, group, t, o]) for t, o in new.items())
                    self._writer.submit(data, lambda _: None).add_done_callback(_quiet)
            start = {t: known[t] for t in topics}
        else:
            start = {t: self._log(t).low for t in topics}
        return _MemoryConsumer(self, start, group)


def _quiet(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("bus log: a new group's position not written: %s", future.exception())


class _MemoryConsumer:
    def __init__(self, bus: MemoryBus, start: dict[str, int], group: str | None) -> None:
        self._bus = bus
        self._read = start  # per topic, the offset after the last record returned
        self._group = group
        self._closed = False

    def _take(self, max_records: int) -> list[Record]:
        slices = []
        for topic, at in self._read.items():
            t = self._bus._logs.get(topic)
            if t is not None:
                found = t.since(at, max_records)
                if found:
                    slices.append(found)
        if not slices:
            return []
        taken = (
            slices[0]
            if len(slices) == 1
            else list(islice(heapq.merge(*slices, key=itemgetter(0)), max_records))
        )
        for _, rec, _ in taken:
            self._read[rec.topic] = rec.offset + 1
        return [rec for _, rec, _ in taken]

    async def next_batch(self, timeout_s: float = 1.0, max_records: int = 10_000) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._closed:
            out = self._take(max_records)
            if out:
                return out
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bus._grew.wait(), remaining)
        return []

    async def commit(self) -> None:
        if self._group is None or self._closed:
            return
        known = self._bus._positions.get(self._group, {})
        changes = {t: o for t, o in self._read.items() if known.get(t) != o}
        if changes:
            await self._bus._commit(self._group, changes)

    def assignment(self) -> set[int] | None:
        return None

    async def lag(self) -> int | None:
        """Records published and not yet read by this consumer, over its topics."""
        logs = self._bus._logs
        return sum(max(0, logs[t].next - at) for t, at in self._read.items() if t in logs)

    async def close(self) -> None:
        if not self._closed and self._group is not None:
            self._bus._attached.discard(self._group)
        self._closed = True
