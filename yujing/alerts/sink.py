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
import numpy as np
from prometheus_client import Counter

from yujing.alerts.readings import ReadingWriter
from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.bus import Bus, Record, Topics
from yujing.registry.store import mark_seen

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
        batch = b.ReadingBatch.concat(readings) if readings else None
        if batch is not None:
            STORED.labels("readings").inc(await self._readings.write(batch))
        events = self._decode(by_topic.get(Topics.EVENTS, []), b.EVENT_DECODER.decode)
        statuses = self._decode(by_topic.get(Topics.STATUS, []), b.STATUS_DECODER.decode)
        dead = self._decode(by_topic.get(Topics.DEADLETTER, []), b.DEADLETTER_DECODER.decode)
        async with self._pool.acquire() as conn, conn.transaction():
            seen, arrived = presence(batch, events, statuses)
            await mark_seen(conn, seen, arrived)
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
    seen = [(e, d, _dt(ts)) for (e, d), ts in newest.items()]
    return seen, _dt(arrived)


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
