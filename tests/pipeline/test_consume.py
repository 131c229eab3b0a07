"""The consume loop's commit policy and the periodic loop's error policy, over the real
in-process bus: a commit the broker refuses for now is tried again; one refused after a
rebalance drops the per-partition work and is not handled again; a helper's outage is
retried, any other error ends the helper and with it the task group of its stage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from yujing.ingest.bus import CommitFailed, Consumer, MemoryBus, Record, Topics
from yujing.ingest.kafka import KafkaBus
from yujing.pipeline.consume import Work, consume
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic
from yujing.pipeline.retry import Backoff

FAST = Backoff(first_s=0.01, max_s=0.02)


class RefusingCommits:
    """The real consumer, whose first commits raise `errors` in turn."""

    def __init__(self, inner: Consumer, errors: list[CommitFailed]) -> None:
        self.inner, self.errors, self.commits = inner, errors, 0

    async def next_batch(self, timeout_s: float = 1.0, max_records: int = 10_000) -> list[Record]:
        return await self.inner.next_batch(timeout_s, max_records)

    async def commit(self) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.commits += 1
        await self.inner.commit()

    def assignment(self) -> set[int] | None:
        return self.inner.assignment()

    async def lag(self) -> int | None:
        return await self.inner.lag()

    async def close(self) -> None:
        await self.inner.close()


async def run_loop(errors: list[CommitFailed], n: int) -> tuple[list[bytes], RefusingCommits, int]:
    bus = MemoryBus()
    consumer = RefusingCommits(bus.consumer([Topics.TRANSITIONS], "g"), errors)
    handled: list[bytes] = []
    lost = 0
    stop = asyncio.Event()

    async def handle(records: Sequence[Record]) -> None:
        handled.extend(r.value for r in records)

    async def on_lost() -> None:
        nonlocal lost
        lost += 1

    async def every_pass() -> None:
        if consumer.commits or lost:  # the commit went through, or was given up
            stop.set()

    await bus.publish(Topics.TRANSITIONS, [(b"k", str(i).encode()) for i in range(n)])
    work = Work(handle, rehandle=True, every_pass=every_pass, on_lost=on_lost)
    await asyncio.wait_for(consume("t", consumer, work, stop, Health(lambda: 0.0), backoff=FAST), 5)
    return handled, consumer, lost


async def test_a_refused_commit_is_tried_again() -> None:
    errors = [CommitFailed("coordinator moving", lost=False)] * 2
    handled, consumer, lost = await run_loop(list(errors), 5)
    assert handled == [str(i).encode() for i in range(5)]  # handled once
    assert consumer.commits == 1 and lost == 0


async def test_a_commit_lost_to_a_rebalance_drops_the_partition_work_and_reads_on() -> None:
    handled, consumer, lost = await run_loop([CommitFailed("rebalanced", lost=True)], 5)
    assert handled == [str(i).encode() for i in range(5)]  # not handled again
    assert lost == 1 and consumer.commits == 0


async def test_a_periodic_helper_retries_an_outage_and_fails_on_anything_else() -> None:
    stop = asyncio.Event()
    calls: list[str] = []
    health = Health(lambda: 0.0)

    async def work() -> None:
        calls.append("x")
        if len(calls) == 1:
            raise ConnectionRefusedError("database down")
        if len(calls) == 3:
            raise ValueError("a bug")

    async def stage() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(periodic("helper", work, 0.01, stop, health=health, backoff=FAST))
            tasks.create_task(stop.wait())  # the stage's main loop, cancelled with the group

    with pytest.raises(ExceptionGroup) as failed:
        await asyncio.wait_for(stage(), 5)
    assert failed.group_contains(ValueError)
    assert len(calls) == 3
    assert health.troubles == {}  # the outage was over after the second call


@pytest.mark.integration
async def test_a_kafka_consumer_says_how_far_behind_it_is(kafka_bootstrap: str) -> None:
    """What the `consumer_lag` system alert is measured with: high watermark − position."""
    bus = KafkaBus(kafka_bootstrap, partitions=1, prefix=f"lag-{uuid.uuid4().hex[:8]}-")
    await bus.start()
    consumer = bus.consumer([Topics.TRANSITIONS], "lag-test")
    try:
        assert await consumer.lag() is None  # not joined yet
        await bus.publish(Topics.TRANSITIONS, [(b"k", str(i).encode()) for i in range(50)])
        got: list[Record] = []
        for _ in range(100):
            got = await consumer.next_batch(timeout_s=0.5, max_records=10)
            if got:
                break
        assert len(got) == 10
        assert await consumer.lag() == 40
    finally:
        await consumer.close()
        await bus.close()


async def test_the_in_process_consumer_lag_is_what_waits_in_its_queue() -> None:
    bus = MemoryBus()
    consumer = bus.consumer([Topics.TRANSITIONS], "g")
    await bus.publish(Topics.TRANSITIONS, [(b"k", str(i).encode()) for i in range(50)])
    assert len(await consumer.next_batch(max_records=10)) == 10
    assert await consumer.lag() == 40
