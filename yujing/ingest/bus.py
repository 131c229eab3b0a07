"""The bus between stages: publish batches of keyed records, consume them in batches, commit.

Two implementations share this interface: `MemoryBus` (embedded mode, one process) and
`KafkaBus` (distributed mode, aiokafka). Like ThingsBoard's in-memory and Kafka queues,
the stages cannot tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Topics:
    """Topic names (docs/contracts.md "Kafka", the internal ones included)."""

    READINGS = "yj.readings"
    EVENTS = "yj.events"
    STATUS = "yj.status"
    ALERTS = "yj.alerts"
    RULES = "yj.rules"
    DEADLETTER = "yj.deadletter"
    # Internal: level changes from the engine, keyed by alert key, consumed by `alerts`.
    TRANSITIONS = "yj.transitions"
    # Internal: registry changes (device records), so ingest caches stay fresh.
    REGISTRY = "yj.registry"

    ALL = (READINGS, EVENTS, STATUS, ALERTS, RULES, DEADLETTER, TRANSITIONS, REGISTRY)
    COMPACTED = (RULES, REGISTRY)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    partition: int = 0
    offset: int = 0


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
    async def start(self) -> None: ...

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Returns once the bus has accepted every (key, value); raises if it did not."""

    def consumer(self, topics: Sequence[str], group: str | None) -> Consumer:
        """A group consumer shares partitions with its group; `group=None` reads every
        partition from the start (for broadcast topics such as `yj.rules`)."""

    async def close(self) -> None: ...


class MemoryBus:
    """In-process bus: one bounded queue per (topic, group).

    A full queue makes `publish` wait, so a slow stage slows ingest, which delays the MQTT
    acknowledgements; nothing is dropped. It is not durable: what sits in a queue when the
    process dies is lost, which is why embedded mode acknowledges after the bus but
    relies on PostgreSQL, not the bus, for what must survive (documented in the README).
    """

    def __init__(self, max_records: int = 20_000) -> None:
        self._max = max_records
        self._queues: dict[str, dict[str | None, asyncio.Queue[Record]]] = {}
        self._offsets: dict[str, int] = {}
        # Broadcast topics keep the latest value per key, like a compacted Kafka topic.
        self._compacted: dict[str, dict[bytes, Record]] = {t: {} for t in Topics.COMPACTED}

    async def start(self) -> None:
        return None

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        groups = self._queues.get(topic, {})
        for key, value in records:
            offset = self._offsets.get(topic, 0)
            self._offsets[topic] = offset + 1
            record = Record(topic, key, value, 0, offset)
            if topic in self._compacted:
                self._compacted[topic][key] = record
            for queue in groups.values():
                await queue.put(record)

    def consumer(self, topics: Sequence[str], group: str | None) -> Consumer:
        queue: asyncio.Queue[Record] = asyncio.Queue(self._max)
        for topic in topics:
            groups = self._queues.setdefault(topic, {})
            if group is not None and group in groups:
                raise RuntimeError(f"the in-process bus has one consumer per group ({group})")
            groups[group if group is not None else f"_broadcast{id(queue)}"] = queue
            if group is None and topic in self._compacted:
                for record in self._compacted[topic].values():
                    queue.put_nowait(record)
        return _MemoryConsumer(queue, self, topics, group)

    def _detach(self, topics: Sequence[str], queue: asyncio.Queue[Record]) -> None:
        for topic in topics:
            groups = self._queues.get(topic, {})
            for name, q in list(groups.items()):
                if q is queue:
                    del groups[name]

    async def close(self) -> None:
        self._queues.clear()


class _MemoryConsumer:
    def __init__(
        self, queue: asyncio.Queue[Record], bus: MemoryBus, topics: Sequence[str], group: str | None
    ) -> None:
        self._queue = queue
        self._bus = bus
        self._topics = tuple(topics)

    async def next_batch(self, timeout_s: float = 1.0, max_records: int = 10_000) -> list[Record]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return []
        out = [first]
        while len(out) < max_records and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def commit(self) -> None:
        return None

    def assignment(self) -> set[int] | None:
        return None

    async def lag(self) -> int | None:
        return self._queue.qsize()

    async def close(self) -> None:
        self._bus._detach(self._topics, self._queue)


def make_bus(kafka_bootstrap: str, *, partitions: int = 6, prefix: str = "") -> Bus:
    if kafka_bootstrap:
        from yujing.ingest.kafka import KafkaBus

        return KafkaBus(kafka_bootstrap, partitions=partitions, prefix=prefix)
    return MemoryBus()
