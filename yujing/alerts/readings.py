"""Readings storage: a partitioned table written with binary COPY built by numpy.

Rows are fixed-width (ts, series id, value, quality), so a whole batch becomes the COPY
payload through one structured array — no Python loop over readings. The table's layout
(hypertable or partitions) and retention are `yujing.alerts.storage`'s business.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import asyncpg
import numpy as np
import numpy.typing as npt

from yujing.alerts.refusals import split_refused
from yujing.db import Conn
from yujing.ingest.batch import ReadingBatch

PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, PostgreSQL's timestamp epoch

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


# The usual batch holds only new readings: it is COPYed straight into `readings` (or, where
# the sink keeps the aggregates, into a staging table inserted and aggregated in one
# statement), and the unique (series, ts) index refuses it whole if any reading is already
# stored. Then, and only then, it is merged: a reading already stored (a re-read after an
# offset reset, a replay) is skipped, and only readings really inserted feed the aggregates.
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage (ts timestamptz NOT NULL,"
    " series integer NOT NULL, value double precision, quality smallint NOT NULL)"
    " ON COMMIT DELETE ROWS"
)
_COLUMNS = ["ts", "series", "value", "quality"]
_INSERT = (
    "INSERT INTO readings (ts, series, value, quality)"
    " SELECT ts, series, value, quality FROM readings_stage"
)
_MERGE = f"{_INSERT} ON CONFLICT (series, ts) DO NOTHING RETURNING ts, series, value, quality"
# Per-minute deltas of the new readings, folded into both tables: a bucket's min, max, sum
# and count combine, and its `last` is the value of the latest event time seen.
_MINUTES = (
    "m AS (SELECT series, date_bin(interval '1 minute', ts, 'epoch'::timestamptz) AS b,"
    " min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count,"
    " (array_agg(value ORDER BY ts DESC))[1] AS last, max(ts) AS last_ts"
    " FROM {src} WHERE quality = 0 AND value IS NOT NULL GROUP BY 1, 2)"
)
_UPSERT = (
    " ON CONFLICT (series, bucket) DO UPDATE SET min = least(a.min, EXCLUDED.min),"
    " max = greatest(a.max, EXCLUDED.max), sum = a.sum + EXCLUDED.sum,"
    " count = a.count + EXCLUDED.count, last = CASE WHEN EXCLUDED.last_ts > a.last_ts"
    " THEN EXCLUDED.last ELSE a.last END, last_ts = greatest(a.last_ts, EXCLUDED.last_ts)"
)
_INTO = "INSERT INTO {name} AS a (series, bucket, min, max, sum, count, last, last_ts)"
_AGGREGATES = (
    "{minutes}, readings_1m AS (" + _INTO.format(name="readings_1m")
    + " SELECT * FROM m ORDER BY series, b" + _UPSERT + "), readings_1h AS ("
    + _INTO.format(name="readings_1h")
    + " SELECT series, date_bin(interval '1 hour', b, 'epoch'::timestamptz) AS h, min(min),"
    " max(max), sum(sum), sum(count), (array_agg(last ORDER BY last_ts DESC))[1],"
    " max(last_ts) FROM m GROUP BY 1, 2 ORDER BY 1, 2" + _UPSERT + ")"
)  # fmt: skip
MERGE_PLAIN = f"WITH ins AS ({_MERGE}) SELECT count(*) FROM ins"
MERGE_WITH_AGGREGATES = (
    f"WITH ins AS ({_MERGE}), {_AGGREGATES.format(minutes=_MINUTES.format(src='ins'))}"
    " SELECT count(*) FROM ins"
)
# All new: insert and aggregate straight from the staging table (no ON CONFLICT, no RETURNING).
INSERT_WITH_AGGREGATES = (
    f"WITH ins AS ({_INSERT}), {_AGGREGATES.format(minutes=_MINUTES.format(src='readings_stage'))}"
    " SELECT 1"
)


@dataclass
class Written:
    """What became of a batch: stored, already there (a re-read), or refused (index, why)."""

    stored: int = 0
    duplicates: int = 0
    refused: list[tuple[int, BaseException]] = field(default_factory=list)


class ReadingWriter:
    """Writes reading batches: resolves (enterprise, device, point) to series ids through
    a cache, then one binary COPY per batch (and a merge when some readings were already
    stored); rows the database refuses are found by splitting the batch and reported, the
    others stored."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._series: dict[tuple[str, str, str], int] = {}
        self._aggregates: bool | None = None  # whether the sink keeps readings_1m/1h
        self.rows_written = 0

    async def write(self, batch: ReadingBatch) -> Written:
        if not len(batch):
            return Written()
        async with self._pool.acquire() as conn:
            series = await self._series_of(conn, batch)
            if self._aggregates is None:
                self._aggregates = bool(
                    await conn.fetchval(
                        "SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass('readings_1m')"
                    )
                )
            out = Written()

            async def attempt(lo: int, hi: int) -> None:
                payload = copy_payload(
                    batch.ts[lo:hi], series[lo:hi], batch.value[lo:hi], batch.quality[lo:hi]
                )
                async with conn.transaction():
                    out.stored += await self._store(conn, payload, hi - lo)

            out.refused = await split_refused(len(batch), attempt)
        out.duplicates = len(batch) - out.stored - len(out.refused)
        self.rows_written += out.stored
        return out

    async def _store(self, conn: Conn, payload: bytes, n: int) -> int:
        """Stores one COPY payload of `n` readings inside the caller's transaction; returns
        how many were new."""
        try:
            async with conn.transaction():  # a savepoint: a duplicate undoes only this try
                if self._aggregates:
                    await self._stage(conn, payload)
                    await conn.execute(INSERT_WITH_AGGREGATES)
                else:
                    await conn.copy_to_table(
                        "readings", source=io.BytesIO(payload), columns=_COLUMNS, format="binary"
                    )
            return n
        except asyncpg.UniqueViolationError:
            pass
        await self._stage(conn, payload)
        stored: int = await conn.fetchval(
            MERGE_WITH_AGGREGATES if self._aggregates else MERGE_PLAIN
        )
        return stored

    @staticmethod
    async def _stage(conn: Conn, payload: bytes) -> None:
        await conn.execute(_STAGE)
        await conn.copy_to_table(
            "readings_stage", source=io.BytesIO(payload), columns=_COLUMNS, format="binary"
        )

    async def _series_of(self, conn: Conn, batch: ReadingBatch) -> npt.NDArray[np.int32]:
        pairs = np.unique(batch.device.astype(np.int64) << 32 | batch.point.astype(np.int64))
        names = [
            (batch.devices[int(p >> 32)].enterprise, batch.devices[int(p >> 32)].device,
             batch.points[int(p & 0xFFFFFFFF)])
            for p in pairs
        ]  # fmt: skip
        await self._resolve(conn, names)
        ids = np.array([self._series[n] for n in names], dtype=np.int32)
        code = batch.device.astype(np.int64) << 32 | batch.point.astype(np.int64)
        return ids[np.searchsorted(pairs, code)]

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
