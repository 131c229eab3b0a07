"""`yujing sink`: stores what ingest accepted (readings, events, status) and what it could
not (dead letters). Offsets are committed after the rows are in PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import msgspec
from prometheus_client import Counter

from yujing.alerts.readings import ReadingWriter
from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.bus import Bus, Record, Topics

log = logging.getLogger(__name__)
T = TypeVar("T")

STORED = Counter("yj_sink_rows_total", "Rows stored by the sink", ["table"])
BAD = Counter("yj_sink_bad_records_total", "Undecodable records the sink skipped", ["topic"])


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Sink:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._readings = ReadingWriter(pool)

    async def write(self, records: Sequence[Record]) -> None:
        by_topic: dict[str, list[Record]] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
        readings = self._decode(by_topic.get(Topics.READINGS, []), b.ReadingBatch.from_bytes)
        if readings:
            STORED.labels("readings").inc(
                await self._readings.write(b.ReadingBatch.concat(readings))
            )
        events = self._decode(by_topic.get(Topics.EVENTS, []), b.EVENT_DECODER.decode)
        statuses = self._decode(by_topic.get(Topics.STATUS, []), b.STATUS_DECODER.decode)
        dead = self._decode(by_topic.get(Topics.DEADLETTER, []), b.DEADLETTER_DECODER.decode)
        async with self._pool.acquire() as conn, conn.transaction():
            if events:
                await conn.executemany(
                    "INSERT INTO events (ts, enterprise, device, site, type, count, seq, attrs)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    [(_dt(e.ts), e.device.enterprise, e.device.device, e.device.site, e.type,
                      e.count, e.seq, e.attrs) for e in events],
                )  # fmt: skip
                STORED.labels("events").inc(len(events))
            if statuses:
                await conn.executemany(
                    "INSERT INTO device_status (enterprise, device, ts, state, detail)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (enterprise, device) DO UPDATE"
                    " SET ts = EXCLUDED.ts, state = EXCLUDED.state, detail = EXCLUDED.detail"
                    " WHERE device_status.ts <= EXCLUDED.ts",
                    [(s.device.enterprise, s.device.device, _dt(s.ts), s.state, s.detail)
                     for s in statuses],
                )  # fmt: skip
                STORED.labels("device_status").inc(len(statuses))
            if dead:
                await conn.executemany(
                    "INSERT INTO deadletters (received_at, topic, reason, detail, enterprise,"
                    " device, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [(_dt(d.received_ms), d.topic, d.reason, d.detail, d.enterprise, d.device,
                      d.payload) for d in dead],
                )  # fmt: skip
                STORED.labels("deadletters").inc(len(dead))

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
    sink = Sink(pool)
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
