"""Readings write speed, side by side on one server: the old plain binary COPY into the
partitioned table (no idempotent key) against today's writer (COPY refused whole by the
unique (series, ts) index when a reading is already stored, then merged with
`INSERT … ON CONFLICT DO NOTHING`), without and with the 1-minute/1-hour aggregate tables
the sink keeps on plain PostgreSQL, and a re-read of batches already stored.

    .venv/bin/python bench/readings_copy.py [--series 1000] [--batch 10000] [--batches 20]
                                            [--repeat 3]

The server is `YJ_DATABASE_URL` (else `YJ_TEST_DATABASE_URL`, else the embedded wheel); each
variant gets a fresh database; variants run interleaved `--repeat` times and the median is
shown. One asyncio client, so the figure is per sink process.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
import uuid

import asyncpg
import numpy as np

from yujing import db, migrations
from yujing.alerts.readings import ReadingWriter, copy_payload
from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.testing import servers

T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def batches(series: int, size: int, count: int) -> list[ReadingBatch]:
    """`count` batches of `size` readings over `series` series (100 devices × points),
    every series reporting every 15 s of event time."""
    devices = [DeviceInfo("ent-1", f"dev-{d}", "gas_detector", "site-1") for d in range(100)]
    points = [f"p{p}" for p in range(series // 100)]
    rng = np.random.default_rng(7)
    out, t = [], 0
    for _ in range(count):
        s = np.arange(t, t + size) % series
        step = np.arange(t, t + size) // series
        out.append(ReadingBatch(
            devices, points, (s % 100).astype(np.int32), (s // 100).astype(np.int32),
            T0 + step.astype(np.int64) * 15_000, rng.normal(0.4, 0.1, size),
            np.zeros(size, np.uint8)))  # fmt: skip
        t += size
    return out


async def old_copy(pool: asyncpg.Pool, data: list[ReadingBatch]) -> None:
    """The write path before readings were idempotent: COPY straight into the table, with
    the non-unique (series, ts) index it had."""
    async with pool.acquire() as conn:
        await conn.execute("DROP INDEX readings_series_ts_key")
        await conn.execute("CREATE INDEX readings_series_ts ON readings (series, ts)")
    ids = await _series_ids(pool, data[0])
    for batch in data:
        series = ids[batch.device * 1000 + batch.point]
        payload = copy_payload(batch.ts, series, batch.value, batch.quality)
        async with pool.acquire() as conn:
            await conn.copy_to_table(
                "readings", source=io.BytesIO(payload),
                columns=["ts", "series", "value", "quality"], format="binary",
            )  # fmt: skip


async def _series_ids(pool: asyncpg.Pool, batch: ReadingBatch) -> np.ndarray:
    writer = ReadingWriter(pool)
    ids = np.zeros(100 * 1000, np.int32)
    async with pool.acquire() as conn:
        all_pairs = ReadingBatch(
            batch.devices, batch.points,
            np.repeat(np.arange(100, dtype=np.int32), len(batch.points)),
            np.tile(np.arange(len(batch.points), dtype=np.int32), 100),
            np.zeros(100 * len(batch.points), np.int64), np.zeros(100 * len(batch.points)),
            np.zeros(100 * len(batch.points), np.uint8),
        )  # fmt: skip
        found = await writer._series_of(conn, all_pairs)
    ids[all_pairs.device * 1000 + all_pairs.point] = found
    return ids


async def staged(pool: asyncpg.Pool, data: list[ReadingBatch], aggregates: bool) -> None:
    if not aggregates:  # as with TimescaleDB continuous aggregates: the sink keeps none
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE readings_1m, readings_1h")
    writer = ReadingWriter(pool)
    await _series_ids(pool, data[0])
    for batch in data:
        await writer.write(batch)


async def reread(pool: asyncpg.Pool, data: list[ReadingBatch]) -> None:
    """Every batch written twice; the second pass is timed (all duplicates)."""
    writer = ReadingWriter(pool)
    for batch in data:
        await writer.write(batch)


async def run_variant(server: str, name: str, data: list[ReadingBatch]) -> float:
    dbname = f"yj_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{dbname}" TEMPLATE template0')
    pool = await db.create_pool(servers.with_database(server, dbname), max_size=2)
    try:
        await migrations.migrate(pool, Settings(retention_raw=None, retention_agg=None))
        rows = sum(len(b) for b in data)
        if name == "re-read (all duplicates)":
            await reread(pool, data)
        started = time.perf_counter()
        if name == "before: COPY, no unique key":
            await old_copy(pool, data)
        elif name.startswith("after: COPY, unique key"):
            await staged(pool, data, aggregates=False)
        else:
            await staged(pool, data, aggregates=True)
        took = time.perf_counter() - started
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT count(*) FROM readings")
        assert stored == rows, (name, stored, rows)
        return rows / took
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()


VARIANTS = (
    "before: COPY, no unique key",
    "after: COPY, unique key (aggregates elsewhere)",
    "after: COPY + sink aggregates 1m/1h (plain PG)",
    "re-read (all duplicates)",
)


async def main(args: argparse.Namespace) -> None:
    data = batches(args.series, args.batch, args.batches)
    given = os.environ.get("YJ_DATABASE_URL") or os.environ.get("YJ_TEST_DATABASE_URL")
    with servers.postgres() if not given else _given(given) as server:
        conn = await asyncpg.connect(server)
        version = await conn.fetchval("SHOW server_version")
        await conn.close()
        print("command:   .venv/bin/python bench/readings_copy.py " + " ".join(sys.argv[1:]))
        print(f"server:    PostgreSQL {version}; {args.batches} batches of {args.batch:,}"
              f" readings over {args.series:,} series")  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeat):  # interleaved, so a busy moment hits every variant
            for name in VARIANTS:
                rates[name].append(await run_variant(server, name, data))
        for name, got in rates.items():
            runs = " ".join(f"{r:,.0f}" for r in got)
            print(f"{name:<48} median {statistics.median(got):>8,.0f} readings/s  ({runs})")


class _given:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
