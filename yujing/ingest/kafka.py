"""The bus over Kafka (aiokafka): topics created on start, producer with acks=all,
group consumers with manual commits after the work is done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError

from yujing.ingest.bus import CommitFailed, Consumer, Record
from yujing.ingest.topics import Topics

log = logging.getLogger(__name__)


class KafkaBus:
    durable = True

    def __init__(self, bootstrap: str, *, partitions: int = 6, prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.prefix = prefix
        self._producer: AIOKafkaProducer | None = None

    def name(self, topic: str) -> str:
        return self.prefix + topic

    async def start(self) -> None:
        await self.ensure_topics()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=2,
            max_request_size=8 * 1024 * 1024,
            compression_type=None,
        )
        await self._producer.start()

    async def ensure_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    self.name(t),
                    num_partitions=self.partitions,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"} if t in Topics.COMPACTED else {},
                )
                for t in Topics.ALL
                if self.name(t) not in existing
            ]
            if missing:
                # another stage may have created them first
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
        finally:
            await admin.close()

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        decoded: Sequence[Any] | None = None,  # a broker carries bytes only
    ) -> None:
        assert self._producer is not None, "KafkaBus.start() first"
        futures = [
            await self._producer.send(self.name(topic), value, key=key) for key, value in records
        ]
        if futures:
            await asyncio.gather(*futures)

    def consumer(self, topics: Sequence[str], group: str | None) -> Consumer:
        return _KafkaConsumer(self, [self.name(t) for t in topics], group)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class _KafkaConsumer:
    def __init__(self, bus: KafkaBus, topics: list[str], group: str | None) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group
        self._consumer: AIOKafkaConsumer | None = None
        self._prefix_len = len(bus.prefix)

    async def _ensure(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                *self._topics,
                bootstrap_servers=self._bus.bootstrap,
                group_id=self._group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=32 * 1024 * 1024,
                # Range assignment gives a member partition n of every topic it reads:
                # a device's readings, events and status (same key, same partition count)
                # then reach the same engine, which `assignment()` below relies on.
                partition_assignment_strategy=(RangePartitionAssignor,),
            )
            try:
                await consumer.start()
            except BaseException:
                # Not ours yet, so `close` would not stop it: the consume loop retries a
                # start that failed on an outage, and must not leave a consumer behind.
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def next_batch(self, timeout_s: float = 1.0, max_records: int = 10_000) -> list[Record]:
        consumer = await self._ensure()
        got = await consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        out: list[Record] = []
        for tp, messages in got.items():
            topic = tp.topic[self._prefix_len :]
            out.extend(
                Record(topic, m.key or b"", m.value or b"", tp.partition, m.offset)
                for m in messages
            )
        return out

    async def commit(self) -> None:
        if self._consumer is not None and self._group is not None:
            try:
                await self._consumer.commit()
            except CommitFailedError as exc:
                # A rebalance took our partitions: the new owner re-reads from the last
                # commit (the consume loop, yujing/pipeline/consume.py, decides the rest).
                raise CommitFailed(str(exc), lost=True) from exc
            except KafkaError as exc:
                raise CommitFailed(str(exc), lost=not exc.retriable) from exc

    def assignment(self) -> set[int] | None:
        if self._group is None:
            return None
        if self._consumer is None:
            return set()  # not joined yet: owns nothing
        # Every topic has the same partition count and keying, so partition n of each
        # input topic carries the same devices.
        return {tp.partition for tp in self._consumer.assignment()}

    async def lag(self) -> int | None:
        """From the high watermarks of the last fetch and the positions now."""
        if self._consumer is None:
            return None
        total = 0
        try:
            for tp in self._consumer.assignment():
                high = self._consumer.highwater(tp)
                if high is not None:
                    total += max(0, high - await self._consumer.position(tp))
        except KafkaError:  # a partition revoked meanwhile: known again after the next fetch
            return None
        return total

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
