"""`yujing sink`: stores what ingest accepted (readings, events, status) and what it could
not (dead letters). Offsets are committed after the rows are in PostgreSQL; a row the
database refuses is dead-lettered, never the end of the stage."""

from __future__ import annotations

import asyncio
import logging
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
from yujing.ingest.bus import Bus, Record, Topics

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
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime] = utcnow) -> None:
        self._pool = pool
        self._readings = ReadingWriter(pool)
        self._clock = clock

    async def write(self, records: Sequence[Record]) -> None:
        by_topic: dict[str, list[Record]] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
        readings = self._decode(by_topic.get(Topics.READINGS, []), b.ReadingBatch.from_bytes)
        if readings:
            await self._write_readings(b.ReadingBatch.concat(readings))
        events = self._decode(by_topic.get(Topics.EVENTS, []), b.EVENT_DECODER.decode)
        statuses = self._decode(by_topic.get(Topics.STATUS, []), b.STATUS_DECODER.decode)
        dead = self._decode(by_topic.get(Topics.DEADLETTER, []), b.DEADLETTER_DECODER.decode)
        await self._rows("events", _EVENTS, events, Topics.EVENTS, lambda e: (
            _dt(e.ts), e.device.enterprise, e.device.device, e.device.site, e.type, e.count,
            e.seq, e.attrs))  # fmt: skip
        await self._rows("device_status", _STATUS, statuses, Topics.STATUS, lambda s: (
            s.device.enterprise, s.device.device, _dt(s.ts), s.state, s.detail))  # fmt: skip
        await self._rows("deadletters", _DEAD, dead, Topics.DEADLETTER, lambda d: (
            _dt(d.received_ms), d.topic, d.reason, d.detail, d.enterprise, d.device,
            d.payload))  # fmt: skip

    async def _write_readings(self, batch: b.ReadingBatch) -> None:
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

    async def _rows(
        self, table: str, sql: str, items: list[T], topic: str, row: Callable[[T], tuple[Any, ...]]
    ) -> None:
        """Stores `items`; a row the database refuses is found by splitting and dead-lettered
        (reason `internal`, the error in `detail`), the others stored."""
        if not items:
            return
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
                out.append(decode(r.value))
            except (msgspec.DecodeError, ValueError) as exc:
                BAD.labels(r.topic).inc()
                log.error("undecodable %s record at %s/%s: %s", r.topic, r.partition, r.offset, exc)
        return out


async def run_sink(settings: Settings, bus: Bus, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Stores batches and commits their offsets; beside it, storage upkeep (partitions
    ahead, retention) every `YJ_STORAGE_UPKEEP_S`."""
    sink = Sink(pool)
    upkeep = Upkeep(pool, utcnow, settings.retention_raw, settings.retention_agg,
                    settings.storage_upkeep_s)  # fmt: skip
    upkeep_task = asyncio.create_task(upkeep.run(stop), name="storage-upkeep")
    consumer = bus.consumer(
        [Topics.READINGS, Topics.EVENTS, Topics.STATUS, Topics.DEADLETTER], settings.sink_group
    )
    try:
        while not stop.is_set():
            records = await consumer.next_batch(timeout_s=0.5, max_records=5000)
            if records:
                await sink.write(records)
                await consumer.commit()
    finally:
        await consumer.close()
        stop.set()
        await upkeep_task
