"""Readings storage: a partitioned table written with binary COPY built by numpy.

Rows are fixed-width (ts, series id, value, quality), so a whole batch becomes the COPY
payload through one structured array — no Python loop over readings. With TimescaleDB the
table is a hypertable with compression and a 93-day retention (real-time methane values
must be kept at least 3 months, DOMAIN.md); without it, monthly range partitions.
"""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime

import asyncpg
import numpy as np
import numpy.typing as npt

from yujing.db import Conn
from yujing.ingest.batch import ReadingBatch

PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, PostgreSQL's timestamp epoch
RETENTION_DAYS = 93

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_ROW = np.dtype(
    [("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_s", ">i4"), ("s", ">i4"),
     ("l_v", ">i4"), ("v", ">f8"), ("l_q", ">i4"), ("q", ">i2")]
)  # fmt: skip
_ROW_NULL = np.dtype(
    [("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_s", ">i4"), ("s", ">i4"),
     ("l_v", ">i4"), ("l_q", ">i4"), ("q", ">i2")]
)  # fmt: skip


async def prepare_readings_storage(conn: Conn, *, timescale: bool) -> None:
    exists = await conn.fetchval("SELECT to_regclass('readings') IS NOT NULL")
    if timescale:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        if not exists:
            await conn.execute(
                "CREATE TABLE readings (ts timestamptz NOT NULL, series integer NOT NULL,"
                " value double precision, quality smallint NOT NULL)"
            )
            await conn.execute(
                "SELECT create_hypertable('readings', 'ts',"
                " chunk_time_interval => interval '1 day')"
            )
            await conn.execute(
                "ALTER TABLE readings SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'series', timescaledb.compress_orderby = 'ts')"
            )
            await conn.execute(
                "SELECT add_compression_policy('readings', interval '7 days',"
                " if_not_exists => true)"
            )
            await conn.execute(
                f"SELECT add_retention_policy('readings', interval '{RETENTION_DAYS} days',"
                " if_not_exists => true)"
            )
    else:
        if not exists:
            await conn.execute(
                "CREATE TABLE readings (ts timestamptz NOT NULL, series integer NOT NULL,"
                " value double precision, quality smallint NOT NULL) PARTITION BY RANGE (ts)"
            )
            await conn.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
        await ensure_partitions(conn, datetime.now(UTC))
    await conn.execute("CREATE INDEX IF NOT EXISTS readings_series_ts ON readings (series, ts)")


async def ensure_partitions(conn: Conn, now: datetime, ahead: int = 3) -> None:
    """Monthly partitions from last month to `ahead` months on; the default partition
    catches anything outside them, so a write never fails for want of a partition."""
    year, month = now.year, now.month - 1
    for _ in range(ahead + 2):
        if month == 0:
            year, month = year - 1, 12
        start = datetime(year, month, 1, tzinfo=UTC)
        ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
        end = datetime(ny, nm, 1, tzinfo=UTC)
        name = f"readings_{year:04d}{month:02d}"
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
            # A row already in the default partition for this range would block the attach;
            # the default partition is only a safety net, so that cannot normally happen.
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF readings"
                f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        year, month = ny, nm


def copy_payload(
    ts_ms: npt.NDArray[np.int64],
    series: npt.NDArray[np.int32],
    value: npt.NDArray[np.float64],
    quality: npt.NDArray[np.uint8],
) -> bytes:
    """The PostgreSQL binary COPY stream for (ts, series, value, quality); NaN → NULL."""
    null = np.isnan(value)
    parts = [_HEADER]
    for mask, dtype in ((~null, _ROW), (null, _ROW_NULL)):
        n = int(mask.sum())
        if not n:
            continue
        rows = np.empty(n, dtype=dtype)
        rows["n"] = 4
        rows["l_ts"] = 8
        rows["ts"] = (ts_ms[mask] - PG_EPOCH_MS) * 1000
        rows["l_s"] = 4
        rows["s"] = series[mask]
        if dtype is _ROW:
            rows["l_v"] = 8
            rows["v"] = value[mask]
        else:
            rows["l_v"] = -1
        rows["l_q"] = 2
        rows["q"] = quality[mask]
        parts.append(rows.tobytes())
    parts.append(_TRAILER)
    return b"".join(parts)


class ReadingWriter:
    """Writes reading batches: resolves (enterprise, device, point) to series ids through
    a cache, then one binary COPY per batch."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._series: dict[tuple[str, str, str], int] = {}
        self.rows_written = 0

    async def write(self, batch: ReadingBatch) -> int:
        if not len(batch):
            return 0
        pairs = np.unique(batch.device.astype(np.int64) << 32 | batch.point.astype(np.int64))
        names = [
            (batch.devices[int(p >> 32)].enterprise, batch.devices[int(p >> 32)].device,
             batch.points[int(p & 0xFFFFFFFF)])
            for p in pairs
        ]  # fmt: skip
        async with self._pool.acquire() as conn:
            await self._resolve(conn, names)
            ids = np.array([self._series[n] for n in names], dtype=np.int32)
            code = batch.device.astype(np.int64) << 32 | batch.point.astype(np.int64)
            series = ids[np.searchsorted(pairs, code)]
            payload = copy_payload(batch.ts, series, batch.value, batch.quality)
            await conn.copy_to_table(
                "readings",
                source=io.BytesIO(payload),
                columns=["ts", "series", "value", "quality"],
                format="binary",
            )
        self.rows_written += len(batch)
        return len(batch)

    async def _resolve(self, conn: Conn, names: list[tuple[str, str, str]]) -> None:
        missing = [n for n in names if n not in self._series]
        if not missing:
            return
        ents, devs, pts = (list(col) for col in zip(*missing, strict=True))
        await conn.execute(
            "INSERT INTO reading_series (enterprise, device, point)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
            " ON CONFLICT DO NOTHING",
            ents, devs, pts,
        )  # fmt: skip
        rows = await conn.fetch(
            "SELECT s.id, s.enterprise, s.device, s.point FROM reading_series s"
            " JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(e, d, p)"
            " ON s.enterprise = u.e AND s.device = u.d AND s.point = u.p",
            ents, devs, pts,
        )  # fmt: skip
        for r in rows:
            self._series[(r["enterprise"], r["device"], r["point"])] = r["id"]
