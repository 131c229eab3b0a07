"""The one consume loop: next batch → handle → commit, with the retry policy of retry.py.

- A passing outage (retry.transient: the database or the broker refuses for now) is
  retried where it happened, with backoff, and reported to `Health` (which raises the
  system alert of that server after a while). Fetching is always retried. A batch whose
  `handle` failed is handled again only when the stage says its handling is idempotent
  (`rehandle`: alerts apply by transition id, the sink skips readings already stored);
  otherwise (the engine, whose state has moved) the error fails the stage, and the
  supervisor restarts it from its snapshot and the last committed offsets.
- Any other error fails the stage.
- A commit the broker refuses: a retriable refusal is tried again; after a rebalance
  (`CommitFailed.lost`) the partitions are gone, so the batch is not handled again here:
  `on_lost` drops per-partition work and the loop reads on. The new owner re-reads from
  the last commit, which the idempotent stages absorb.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter

from yujing.ingest.bus import CommitFailed, Consumer, Record
from yujing.pipeline import retry
from yujing.pipeline.health import Health

log = logging.getLogger(__name__)
T = TypeVar("T")

LOST_COMMITS = Counter(
    "yj_commits_lost_total", "Offset commits refused after a rebalance took the partitions",
    ["stage"],
)  # fmt: skip


LAG_EVERY_S = 5.0  # how often the consumer's lag is measured (Kafka asks the broker)


class Stopped(Exception):
    """`stop` was set while work waited to be retried: the work is abandoned, uncommitted."""


async def retrying(
    stage: str,
    work: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    health: Health,
    backoff: retry.Backoff = retry.RETRY,
    *,
    needs: str | None = None,
) -> T:
    """`work()`, tried again after each transient error until it succeeds or `stop`.
    `needs`: the one server the work uses (None: any), whose trouble its success ends."""
    delays = backoff.delays()
    while True:
        try:
            out = await work()
        except Exception as exc:
            target = retry.target_of(exc)
            if target is None:
                raise
            health.refused(stage, target, exc)
            wait = delays.next()
            log.warning("%s: %s refused (%s); again in %.1f s", stage, target, exc, wait)
            await retry.pause(stop, wait)
            if stop.is_set():
                raise Stopped(stage) from exc
            continue
        health.accepted(stage, needs)
        return out


@dataclass
class Work:
    """What a stage does with the records of its consumer."""

    handle: Callable[[Sequence[Record]], Awaitable[None]]
    # May a batch whose handling failed on an outage be handled again? (module docstring)
    rehandle: bool
    # Run every pass, records or not (the engine: control topics, tick, snapshot).
    every_pass: Callable[[], Awaitable[None]] | None = None
    # Commit after each handled batch; False: the stage commits itself through `commit`
    # below (the engine, once its snapshot holds the offsets).
    commit_each_batch: bool = True
    # The partitions were taken by a rebalance: drop what is kept per partition.
    on_lost: Callable[[], Awaitable[None]] | None = None


async def commit(
    stage: str,
    consumer: Consumer,
    stop: asyncio.Event,
    health: Health,
    on_lost: Callable[[], Awaitable[None]] | None = None,
    backoff: retry.Backoff = retry.RETRY,
) -> bool:
    """Commits the offsets of what was handled; False when a rebalance took the partitions
    (nothing to retry: their new owner reads from the last commit)."""
    delays = backoff.delays()
    while True:
        try:
            await consumer.commit()
        except CommitFailed as exc:
            if exc.lost:
                LOST_COMMITS.labels(stage).inc()
                log.warning("%s: commit refused after a rebalance, partitions gone: %s", stage, exc)
                if on_lost is not None:
                    await on_lost()
                return False
            health.refused(stage, "bus", exc)
            wait = delays.next()
            log.warning("%s: commit refused (%s); again in %.1f s", stage, exc, wait)
            await retry.pause(stop, wait)
            if stop.is_set():
                raise Stopped(stage) from exc
            continue
        health.accepted(stage, "bus")
        return True


async def _handle(
    stage: str,
    work: Work,
    records: Sequence[Record],
    stop: asyncio.Event,
    health: Health,
    backoff: retry.Backoff,
) -> None:
    if not work.rehandle:
        await work.handle(records)
        return

    async def again() -> None:
        await work.handle(records)

    await retrying(stage, again, stop, health, backoff)


async def consume(
    stage: str,
    consumer: Consumer,
    work: Work,
    stop: asyncio.Event,
    health: Health,
    *,
    timeout_s: float = 0.5,
    max_records: int = 10_000,
    backoff: retry.Backoff = retry.RETRY,
) -> None:
    """Until `stop`; raises what fails the stage. The consumer is the caller's to close."""

    async def fetch() -> list[Record]:
        return await consumer.next_batch(timeout_s=timeout_s, max_records=max_records)

    loop = asyncio.get_running_loop()
    measured = -LAG_EVERY_S
    try:
        while not stop.is_set():
            records = await retrying(stage, fetch, stop, health, backoff, needs="bus")
            if loop.time() - measured >= LAG_EVERY_S:
                measured = loop.time()
                lag = await consumer.lag()
                if lag is not None:
                    health.lag(stage, lag)
            if records:
                await _handle(stage, work, records, stop, health, backoff)
                if work.commit_each_batch:
                    await commit(stage, consumer, stop, health, work.on_lost, backoff)
            if work.every_pass is not None:
                await work.every_pass()
    except Stopped:
        log.info("%s: stopped while waiting to retry; the batch stays uncommitted", stage)


@dataclass
class Retrier:
    """`retrying` and `commit` bound to one stage, for work done outside the loop's own
    steps (the engine's publish, snapshot and commit)."""

    stage: str
    stop: asyncio.Event
    health: Health
    backoff: retry.Backoff = retry.RETRY

    async def __call__(self, work: Callable[[], Awaitable[T]], needs: str | None = None) -> T:
        return await retrying(self.stage, work, self.stop, self.health, self.backoff, needs=needs)

    async def commit(
        self, consumer: Consumer, on_lost: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        return await commit(self.stage, consumer, self.stop, self.health, on_lost, self.backoff)
