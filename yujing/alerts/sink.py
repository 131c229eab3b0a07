"""`yujing sink`: stores what ingest accepted (readings, events, status) and what it could
not (dead letters). Offsets are committed after the rows are in PostgreSQL; a row the
database refuses is dead-lettered, never the end of the stage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import msgspec
import numpy as np
from prometheus_client import Counter

from yujing.alerts.readings import ReadingWriter
from yujing.alerts.refusals import describe, split_refused
from yujing.alerts.upkeep import Upkeep
from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.bus import Bus, Record, Topics, decoded
from yujing.pipeline.consume import Work, consume
from yujing.pipeline.health import Health
from yujing.pipeline.stage import Runtime
from yujing.registry.store import mark_seen

log = logging.getLogger(__name__)
T = TypeVar("T")

STORED = Counter("yj_sink_rows_total", "Rows stored by the sink", ["table"])
BAD = Counter("yj_sink_bad_records_total", "Undecodable records the sink skipped", ["topic"])
REFUSED = Counter(
    "yj_sink_refused_rows_total", "Rows the database refused, dead-lettered", ["table"]
)
DUPLICATES = Counter(
    "yj_sink_duplicate_readings_total", "Readings already stored (a re-read), not stored again"
)


_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_EVENTS = (
    "INSERT INTO events (ts, enterprise, device, site, type, count, seq, attrs)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
_STATUS = (
    "INSERT INTO device_status (enterprise, device, ts, state, detail)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (enterprise, device) DO UPDATE"
    " SET ts = EXCLUDED.ts, state = EXCLUDED.state, detail = EXCLUDED.detail"
    " WHERE device_status.ts <= EXCLUDED.ts"
)
_DEAD = (
    "INSERT INTO deadletters (received_at, topic, reason, detail, enterprise, device, payload)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def _text(s: str | None) -> str | None:
    """Text a dead letter can always hold (PostgreSQL text refuses NUL)."""
    return None if s is None else s.replace("\x00", "\\0")


class Sink:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime] = utcnow,
        readings: ReadingWriter | None = None,
    ) -> None:
        self._pool = pool
        self._readings = readings or ReadingWriter(pool)
        self._clock = clock

    async def write(self, records: Sequence[Record]) -> None:
        by_topic: dict[str, list[Record]] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
        readings = self._decode(by_topic.get(Topics.READINGS, []), b.ReadingBatch.from_bytes)
        batch = b.ReadingBatch.concat(readings) if readings else None
        if batch is not None:
            batch = await self._write_readings(batch)
        events = self._decode(by_topic.get(Topics.EVENTS, []), b.EVENT_DECODER.decode)
        statuses = self._decode(by_topic.get(Topics.STATUS, []), b.STATUS_DECODER.decode)
        dead = self._decode(by_topic.get(Topics.DEADLETTER, []), b.DEADLETTER_DECODER.decode)
        events = await self._rows("events", _EVENTS, events, Topics.EVENTS, lambda e: (
            _dt(e.ts), e.device.enterprise, e.device.device, e.device.site, e.type, e.count,
            e.seq, e.attrs))  # fmt: skip
        statuses = await self._rows("device_status", _STATUS, statuses, Topics.STATUS, lambda s: (
            s.device.enterprise, s.device.device, _dt(s.ts), s.state, s.detail))  # fmt: skip
        await self._rows("deadletters", _DEAD, dead, Topics.DEADLETTER, lambda d: (
            _dt(d.received_ms), d.topic, d.reason, d.detail, d.enterprise, d.device,
            d.payload))  # fmt: skip
        # Presence from what was stored (a refused row says nothing about its device).
        seen, arrived = presence(batch, events, statuses)
        async with self._pool.acquire() as conn, conn.transaction():
            await mark_seen(conn, seen, arrived)

    async def _write_readings(self, batch: b.ReadingBatch) -> b.ReadingBatch:
        """Stores the batch; returns the readings that were not refused."""
        done = await self._readings.write(batch)
        STORED.labels("readings").inc(done.stored)
        DUPLICATES.inc(done.duplicates)
        letters = []
        for i, exc in done.refused:
            info = batch.devices[int(batch.device[i])]
            row = {"enterprise": info.enterprise, "device": info.device,
                   "point": batch.points[int(batch.point[i])], "ts": int(batch.ts[i]),
                   "value": None if np.isnan(batch.value[i]) else float(batch.value[i]),
                   "quality": int(batch.quality[i])}  # fmt: skip
            letters.append(
                b.DeadLetter(Topics.READINGS, 0, "internal", describe(exc),
                             msgspec.json.encode(row), info.enterprise, info.device)
            )  # fmt: skip
        await self._refused("readings", letters)
        if not done.refused:
            return batch
        keep = np.ones(len(batch), bool)
        keep[[i for i, _ in done.refused]] = False
        return b.ReadingBatch(
            batch.devices, batch.points, batch.device[keep], batch.point[keep], batch.ts[keep],
            batch.value[keep], batch.quality[keep], batch.received_ms, batch.device_uid,
            batch.device_rev,
        )  # fmt: skip

    async def _rows(
        self, table: str, sql: str, items: list[T], topic: str, row: Callable[[T], tuple[Any, ...]]
    ) -> list[T]:
        """Stores `items`; a row the database refuses is found by splitting and dead-lettered
        (reason `internal`, the error in `detail`), the others stored and returned."""
        if not items:
            return items
        async with self._pool.acquire() as conn:

            async def attempt(lo: int, hi: int) -> None:
                async with conn.transaction():
                    await conn.executemany(sql, [row(x) for x in items[lo:hi]])

            refused = await split_refused(len(items), attempt)
        STORED.labels(table).inc(len(items) - len(refused))
        letters = []
        for i, exc in refused:
            item: Any = items[i]
            if isinstance(item, b.DeadLetter):  # keep the original bytes, make the text safe
                letters.append(b.DeadLetter(
                    _text(item.topic) or "", item.received_ms, "internal", describe(exc),
                    item.payload, _text(item.enterprise), _text(item.device)))  # fmt: skip
                continue
            device = item.device
            letters.append(b.DeadLetter(
                topic, 0, "internal", describe(exc), msgspec.json.encode(item),
                _text(device.enterprise), _text(device.device)))  # fmt: skip
        await self._refused(table, letters)
        gone = {i for i, _ in refused}
        return [x for i, x in enumerate(items) if i not in gone]

    async def _refused(self, table: str, letters: list[b.DeadLetter]) -> None:
        if not letters:
            return
        now = self._clock()
        rows = [(now if d.received_ms == 0 else _dt(d.received_ms), d.topic, d.reason,
                 _text(d.detail), d.enterprise, d.device, d.payload) for d in letters]  # fmt: skip
        async with self._pool.acquire() as conn:
            await conn.executemany(_DEAD, rows)
        REFUSED.labels(table).inc(len(letters))
        for d in letters:
            log.error("sink: a %s row dead-lettered (%s/%s): %s", table, d.enterprise, d.device,
                      d.detail)  # fmt: skip

    @staticmethod
    def _decode(records: list[Record], decode: Callable[[bytes], T]) -> list[T]:
        out: list[T] = []
        for r in records:
            try:
                out.append(decoded(r, decode))
            except (msgspec.DecodeError, ValueError) as exc:
                BAD.labels(r.topic).inc()
                log.error("undecodable %s record at %s/%s: %s", r.topic, r.partition, r.offset, exc)
        return out


def presence(
    batch: b.ReadingBatch | None, events: list[b.Event], statuses: list[b.Status]
) -> tuple[list[tuple[str, str, datetime]], datetime]:
    """Which devices reported, with the event time of their newest message, and when the
    batch arrived (ingest's clock): the register's online figures come from this."""
    newest: dict[tuple[str, str], int] = {}
    arrived = 0
    if batch is not None and len(batch):
        last = np.full(len(batch.devices), -1, np.int64)
        np.maximum.at(last, batch.device, batch.ts)
        for d in np.flatnonzero(last >= 0).tolist():
            info = batch.devices[d]
            key = (info.enterprise, info.device)
            newest[key] = max(newest.get(key, -1), int(last[d]))
        arrived = batch.received_ms
    said: list[tuple[b.DeviceInfo, int]] = [(e.device, e.ts) for e in events]
    said.extend((s.device, s.ts) for s in statuses if s.state == "online")
    for info, ts in said:  # no arrival time on these: their event time stands in
        key = (info.enterprise, info.device)
        newest[key] = max(newest.get(key, -1), ts)
        arrived = max(arrived, ts)
    # Clamped to what a Python datetime holds: PostgreSQL stores years beyond 9999.
    seen = [(e, d, _dt(min(ts, _MAX_MS))) for (e, d), ts in newest.items()]
    return seen, _dt(min(max(arrived, 0), _MAX_MS))


async def run_sink(
    settings: Settings,
    bus: Bus,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    *,
    health: Health | None = None,
    clock: Callable[[], datetime] = utcnow,
    sink: Sink | None = None,
) -> None:
    """Stores batches and commits their offsets (the consume loop: a batch is stored again
    after an outage, which the readings' duplicate check absorbs); beside it, storage
    upkeep (partitions ahead, retention) every `YJ_STORAGE_UPKEEP_S`."""
    health = health or Health(time.time)
    sink = sink or Sink(pool, clock)
    upkeep = Upkeep(pool, clock, settings.retention_raw, settings.retention_agg,
                    settings.storage_upkeep_s)  # fmt: skip
    consumer = bus.consumer(
        [Topics.READINGS, Topics.EVENTS, Topics.STATUS, Topics.DEADLETTER], settings.sink_group
    )
    try:
        async with asyncio.TaskGroup() as helpers:
            helpers.create_task(upkeep.run(stop, health), name="storage-upkeep")
            await consume(
                "sink", consumer, Work(sink.write, rehandle=True), stop, health,
                max_records=5000,
            )  # fmt: skip
    finally:
        await consumer.close()


class SinkStage:
    name = "sink"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        await run_sink(rt.settings, rt.bus, rt.pool, stop, health=rt.health, clock=rt.clock.now)
