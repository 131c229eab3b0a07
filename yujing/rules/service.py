"""`yujing engine`: consume readings, events and status with the engine group, evaluate,
publish transitions, snapshot the state with the offsets it includes, then commit.

Delivery (see README.md, "Crash semantics"): transitions are published before the
snapshot and the commit, so a crash replays the records since the last snapshot and
re-publishes the same transitions with the same ids, which the alert store ignores.
Records a restored snapshot already includes are skipped, so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import msgspec
from prometheus_client import Counter

from yujing.config import Settings
from yujing.ingest.batch import EVENT_DECODER, STATUS_DECODER, Event, ReadingBatch, Status
from yujing.ingest.bus import Bus, Consumer, Record, Topics, decoded
from yujing.ingest.topics import EnterpriseState, RegistryKey, SiteState, registry_change
from yujing.pipeline.consume import Retrier, Stopped, Work, consume
from yujing.pipeline.health import Health
from yujing.pipeline.stage import Runtime
from yujing.rules import status_marks
from yujing.rules import transition as tr
from yujing.rules.checkpoint import Checkpoints
from yujing.rules.engine import Engine
from yujing.rules.groups import encode_changes, run_groups
from yujing.rules.store import ensure_default_rules, load_rules
from yujing.rules.transition import Transition

log = logging.getLogger(__name__)
T = TypeVar("T")
READINGS = Counter("yj_engine_readings_total", "Readings evaluated by the rule engine")
LATE = Counter(
    "yj_engine_late_readings_total", "Readings skipped as late (older than their series)"
)
LATE_EVENTS = Counter("yj_engine_late_events_total", "Events skipped as late")
TRANSITIONS = Counter("yj_engine_transitions_total", "Level transitions published")
BAD = Counter("yj_engine_bad_records_total", "Records that could not be decoded")
SKIPPED = Counter("yj_engine_replayed_records_total", "Re-read records a snapshot already held")
TICK_S = 1.0
SNAPSHOT_S = 2.0


def wall_ms() -> int:
    return int(time.time() * 1000)


async def _direct(work: Callable[[], Awaitable[T]], needs: str | None = None) -> T:
    return await work()


class EngineService:
    """The engine's I/O around the pure `Engine`. Its outages (publishing, storing status
    marks and snapshots, committing) are retried in place through `retry`: a batch is not
    handled twice, since the engine's state has already moved (yujing/pipeline/consume.py)."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        pool: asyncpg.Pool,
        engine: Engine,
        *,
        clock: Callable[[], int] = wall_ms,
        retry: Retrier | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.pool = pool
        self.engine = engine
        self.snapshots = Checkpoints(pool, settings.engine_group, durable_offsets=bus.durable)
        self.bad_records = 0
        self.published = 0
        self._clock = clock  # epoch ms: drives `on_tick` (absent, offline, timers)
        self._retry = retry
        self._last_tick = 0
        self._last_snapshot = time.monotonic()
        self._dirty = False
        self._seen = (0, 0, 0, 0)

    async def reload_rules(self) -> None:
        self.engine.set_rules(await load_rules(self.pool))
        log.info("rules reloaded: %d enabled", len(self.engine.entries))

    async def load_site_states(self) -> None:
        for r in await self.pool.fetch(
            "SELECT id, state FROM enterprises WHERE state <> 'operating'"
        ):
            self.engine.set_enterprise_state(r["id"], r["state"])
        rows = await self.pool.fetch(
            "SELECT enterprise, site, state FROM sites WHERE state <> 'operating'"
        )
        for r in rows:
            self.engine.set_site_state(r["enterprise"], r["site"], r["state"])

    async def on_control(self, records: Sequence[Record]) -> None:
        reload = False
        for rec in records:
            if rec.topic == Topics.RULES:
                reload = True
            elif rec.topic == Topics.REGISTRY:
                self._registry(rec)
        if reload:
            await self._retried(self.reload_rules, "database")

    def _registry(self, rec: Record) -> None:
        key = RegistryKey.parse(rec.key)
        if key is None:
            self._bad(rec, ValueError(f"no registry key: {rec.key[:100]!r}"))
            return
        try:
            change = registry_change(key, rec.value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._bad(rec, exc)
            return
        if isinstance(change, SiteState):
            self.engine.set_site_state(change.enterprise, change.site, change.state)
        elif isinstance(change, EnterpriseState):
            self.engine.set_enterprise_state(change.enterprise, change.state)
        elif change.deleted:
            self.engine.device_removed(change.enterprise, change.device)
        else:
            self.engine.device_changed(change.enterprise, change.device)

    async def on_data(self, records: Sequence[Record]) -> list[Transition]:
        records = await self.snapshots.admit(self.engine, records)
        by_partition: dict[int, list[ReadingBatch]] = defaultdict(list)
        events: dict[int, list[Event]] = defaultdict(list)
        statuses: list[Status] = []
        for rec in records:
            try:
                if rec.topic == Topics.READINGS:
                    by_partition[rec.partition].append(decoded(rec, ReadingBatch.from_bytes))
                elif rec.topic == Topics.EVENTS:
                    events[rec.partition].append(decoded(rec, EVENT_DECODER.decode))
                elif rec.topic == Topics.STATUS:
                    statuses.append(decoded(rec, STATUS_DECODER.decode))
            except (msgspec.DecodeError, ValueError, TypeError) as exc:
                self._bad(rec, exc)
        out: list[Transition] = []
        for partition, batches in by_partition.items():
            out.extend(self.engine.on_batch(ReadingBatch.concat(batches), partition))
        for partition, evs in events.items():
            out.extend(self.engine.on_events(evs, partition))
        if statuses:
            # The maintenance windows first, so the alerts these statuses cause are marked.
            await self._retried(lambda: status_marks.apply(self.pool, statuses))
            out.extend(self.engine.on_status(statuses))
        self._count()
        return out

    def _count(self) -> None:
        """Push the engine's counters into the metrics (the engine itself does no I/O)."""
        e, seen = self.engine, self._seen
        now = (e.readings, e.late_readings, e.events.late_events, self.snapshots.skipped)
        for metric, before, after in zip(
            (READINGS, LATE, LATE_EVENTS, SKIPPED), seen, now, strict=True
        ):
            if after > before:
                metric.inc(after - before)
        self._seen = now

    def _bad(self, rec: Record, exc: Exception) -> None:
        self.bad_records += 1
        BAD.inc()
        log.warning(
            "skipped a bad record on %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, exc
        )

    async def publish(self, transitions: Sequence[Transition]) -> None:
        changes = self.engine.composites.drain()
        if changes:  # group rules are judged by each group's owner (groups.py)
            grouped = encode_changes(changes)
            await self._retried(lambda: self.bus.publish(Topics.GROUPS, grouped), "bus")
        if transitions:
            records = [(t.key.encode(), tr.ENCODER.encode(t)) for t in transitions]
            await self._retried(lambda: self.bus.publish(Topics.TRANSITIONS, records), "bus")
            self.published += len(transitions)
            TRANSITIONS.inc(len(transitions))

    async def _retried(self, work: Callable[[], Awaitable[T]], needs: str | None = None) -> T:
        return await (self._retry or _direct)(work, needs)

    async def tick(self, data: Consumer) -> None:
        now = self._clock()
        if now - self._last_tick >= TICK_S * 1000:
            self._last_tick = now
            await self.publish(self.engine.on_tick(now, owned_partitions(data)))

    async def checkpoint(self, data: Consumer, *, force: bool = False) -> None:
        """Snapshot and commit together, at most every SNAPSHOT_S: between two
        checkpoints transitions are published but offsets not yet committed."""
        if not self._dirty or (not force and time.monotonic() - self._last_snapshot < SNAPSHOT_S):
            return
        owned = owned_partitions(data)
        await self._retried(lambda: self.snapshots.save(self.engine, owned), "database")
        if self._retry is not None:
            await self._retry.commit(data)
        else:
            await data.commit()
        self._dirty = False
        self._last_snapshot = time.monotonic()

    def work(self, data: Consumer, control: Consumer) -> Work:
        """The engine in the consume loop: it commits at its checkpoints, not per batch."""

        async def poll_control(timeout_s: float) -> None:
            async def fetch() -> list[Record]:
                return await control.next_batch(timeout_s=timeout_s)

            await self.on_control(await self._retried(fetch, "bus"))

        async def handle(records: Sequence[Record]) -> None:
            # A site or rule change made before these records were sent must apply to them:
            # it may have arrived while the loop waited for data.
            await poll_control(0.001)
            await self.publish(await self.on_data(records))
            self._dirty = True

        async def every_pass() -> None:
            await self.tick(data)
            await self.checkpoint(data)
            await poll_control(0.01)

        return Work(handle, rehandle=False, every_pass=every_pass, commit_each_batch=False)


def owned_partitions(consumer: Consumer) -> set[int] | None:
    """The input partitions assigned to this engine now; None means "all" (the in-process
    bus, where one engine holds everything)."""
    return consumer.assignment()


async def run_engine(
    settings: Settings,
    bus: Bus,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    *,
    health: Health | None = None,
    clock: Callable[[], int] = wall_ms,
) -> None:
    """The engine stage: the engine, and beside it the owner of the group rules'
    partitions (`groups.py`); either failing ends the stage. An error that is not a passing
    outage fails the stage; the supervisor starts it again, and it resumes from its
    snapshots and the last committed offsets."""
    health = health or Health(time.time)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(run_groups(settings, bus, pool, stop))
        tasks.create_task(_run_points(settings, bus, pool, stop, health, clock))


async def _run_points(
    settings: Settings,
    bus: Bus,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    health: Health,
    clock: Callable[[], int],
) -> None:
    # Subscribed before the rules and site states are loaded: a site or rule change made
    # in between is then applied twice, which is harmless, rather than missed. (Start order
    # does not matter to the bus itself: both buses keep a position per group.)
    control = bus.consumer([Topics.RULES, Topics.REGISTRY], None)
    data = bus.consumer([Topics.READINGS, Topics.EVENTS, Topics.STATUS], settings.engine_group)
    retry = Retrier("engine", stop, health)
    try:
        await retry(lambda: ensure_default_rules(pool), "database")
        rules = await retry(lambda: load_rules(pool), "database")
        engine = Engine(rules, route_groups=True)
        service = EngineService(settings, bus, pool, engine, clock=clock, retry=retry)
        await retry(service.load_site_states, "database")
        log.info("engine running with %d rules", len(service.engine.entries))
        await consume("engine", data, service.work(data, control), stop, health, timeout_s=0.2)
        await service.checkpoint(data, force=True)
    except Stopped:
        log.info("engine stopped while waiting to retry; it resumes from its last snapshot")
    finally:
        await data.close()
        await control.close()


class EngineStage:
    name = "engine"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        await run_engine(rt.settings, rt.bus, rt.pool, stop, health=rt.health, clock=rt.clock.ms)
