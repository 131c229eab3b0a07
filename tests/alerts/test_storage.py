"""Readings storage on a real PostgreSQL: stored once per (series, event time), aggregates
that agree with the raw readings, refused rows dead-lettered, partitions kept ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import numpy as np
import pytest

from yujing import db, migrations
from yujing.alerts.readings import ReadingWriter
from yujing.alerts.sink import Sink
from yujing.alerts.storage import Capability, Layout, StorageRefused, plan
from yujing.alerts.upkeep import Upkeep
from yujing.api.auth import Role, create_token
from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import Record, Topics
from yujing.testing.alerts import Clock

T0 = 1_763_856_000_000  # 2025-11-23T00:00:00Z
GD = [DeviceInfo("ent1", "gd-1", "gas_detector", "face-3"),
      DeviceInfo("ent1", "gd-2", "gas_detector", "face-3")]  # fmt: skip
PLAIN = Capability(False, "not installed")
TIMESCALE = Capability(True, "TimescaleDB 2.17.0", "timescale")


def readings(ts: list[int], value: list[float], quality: list[int] | None = None) -> ReadingBatch:
    """Readings of gd-1/ch4 at `ts` (epoch ms)."""
    n = len(ts)
    return ReadingBatch(
        GD, ["ch4"], np.zeros(n, np.int32), np.zeros(n, np.int32), np.array(ts, np.int64),
        np.array(value, np.float64), np.array(quality or [0] * n, np.uint8),
    )  # fmt: skip


def test_plan_creates_keeps_converts_or_refuses() -> None:
    assert plan(Layout.NONE, PLAIN) == plan(Layout.NONE, TIMESCALE) == "create"
    assert plan(Layout.PARTITIONED, PLAIN) == plan(Layout.HYPERTABLE, TIMESCALE) == "keep"
    # first migrated without TimescaleDB, now served by one: converted, not left half
    assert plan(Layout.PARTITIONED, TIMESCALE) == "convert"
    assert plan(Layout.TABLE, PLAIN) == plan(Layout.TABLE, TIMESCALE) == "convert"
    with pytest.raises(StorageRefused, match="hypertable but TimescaleDB is not usable"):
        plan(Layout.HYPERTABLE, PLAIN)
    assert not Capability(True, "TimescaleDB 2.17.0", "apache").licensed


async def _timescale(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    )  # fmt: skip


async def test_plain_storage_is_said_and_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        if await _timescale(conn):
            pytest.skip("this server has TimescaleDB: test_timescaledb_storage covers it")
        found = await migrations.migrate(pool)  # a second start keeps what the first made
        assert found["timescaledb"] is False
        assert found["storage"].startswith("PostgreSQL monthly partitions (")
        assert "aggregate tables 1m/1h (sink)" in found["storage"]
        assert (
            await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'readings'")
            == "p"
        )
        index = await conn.fetchval(
            "SELECT indisunique FROM pg_index WHERE indexrelid = 'readings_series_ts_key'::regclass"
        )
        assert index is True


@pytest.mark.parametrize("sink_aggregates", [True, False], ids=["plain", "continuous-aggs"])
async def test_rereads_store_nothing_twice_and_aggregates_agree(
    pool: asyncpg.Pool, sink_aggregates: bool
) -> None:
    if not sink_aggregates:  # as under TimescaleDB continuous aggregates: COPY straight in
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE readings_1m, readings_1h")
    writer = ReadingWriter(pool)
    first = readings([T0, T0 + 20_000, T0 + 40_000, T0 + 70_000], [0.2, 0.4, 0.6, 1.0])
    assert (await writer.write(first)).stored == 4
    # a re-read overlapping the first (offset reset): the old half is skipped, the new stored
    again = readings(
        [T0 + 40_000, T0 + 70_000, T0 + 90_000, T0 + 3_600_000, T0 + 50_000],
        [0.6, 1.0, 0.8, 2.0, 9.9], [0, 0, 0, 0, 2],
    )  # fmt: skip
    done = await writer.write(again)
    assert (done.stored, done.duplicates, done.refused) == (3, 2, [])
    again_fresh_cache = await ReadingWriter(pool).write(again)
    assert (again_fresh_cache.stored, again_fresh_cache.duplicates) == (0, 5)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings") == 7
        if not sink_aggregates:
            return
        for table, width in (("readings_1m", "1 minute"), ("readings_1h", "1 hour")):
            kept = await conn.fetch(
                f"SELECT bucket, min, max, sum, count, last FROM {table} ORDER BY bucket"
            )
            raw = await conn.fetch(
                "SELECT date_bin($1::interval, ts, 'epoch'::timestamptz) AS bucket,"
                " min(value), max(value), sum(value), count(*),"
                " (array_agg(value ORDER BY ts DESC))[1] AS last FROM readings"
                " WHERE quality = 0 GROUP BY 1 ORDER BY 1",
                timedelta(minutes=1) if width == "1 minute" else timedelta(hours=1),
            )
            assert [tuple(r) for r in kept] == [tuple(r) for r in raw]
        assert len(await conn.fetch("SELECT 1 FROM readings_1m")) == 3


async def test_sink_dead_letters_the_rows_the_database_refuses(pool: asyncpg.Pool) -> None:
    """A reading before 4713 BC (no timestamptz holds it), an event count beyond int32 and a
    NUL in a status detail: each dead-lettered with the reason, every other row stored."""
    bad_ts = -300_000_000_000_000
    batch = readings([T0, T0 + 1000, bad_ts, T0 + 2000, T0 + 3000], [0.1, 0.2, 0.3, 0.4, 0.5])
    events = [
        b.Event(GD[0], T0, "person_in", 2),
        b.Event(GD[0], T0 + 1, "person_in", 3_000_000_000),
        b.Event(GD[1], T0 + 2, "person_out", 1),
    ]
    statuses = [b.Status(GD[0], T0, "online", "ok"), b.Status(GD[1], T0, "fault", "bad\x00")]
    records = [
        Record(Topics.READINGS, b"ent1/gd-1", batch.to_bytes()),
        *(Record(Topics.EVENTS, b"ent1/gd-1", b.encode(e)) for e in events),
        *(Record(Topics.STATUS, b"ent1/gd-1", b.encode(s)) for s in statuses),
    ]
    await Sink(pool, Clock(datetime(2025, 11, 23, 8, tzinfo=UTC))).write(records)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings") == 4
        assert [r["count"] for r in await conn.fetch("SELECT count FROM events ORDER BY ts")] == [
            2, 1
        ]  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM device_status") == 1
        dead = await conn.fetch(
            "SELECT topic, reason, detail, device, payload FROM deadletters ORDER BY topic"
        )
    assert [(d["topic"], d["reason"], d["device"]) for d in dead] == [
        (Topics.EVENTS, "internal", "gd-1"),
        (Topics.READINGS, "internal", "gd-1"),
        (Topics.STATUS, "internal", "gd-2"),
    ]
    assert all(d["detail"].startswith("not storable: ") for d in dead)
    assert b'"ts":-300000000000000' in dead[1]["payload"]
    assert "out of range" in dead[1]["detail"]


async def test_upkeep_keeps_partitions_ahead_and_applies_retention(pool: asyncpg.Pool) -> None:
    # Timeline: migrated now; the sink then runs for 14 months without a restart.
    now = datetime.now(UTC)
    later = Clock(now + timedelta(days=425))
    far = int((now + timedelta(days=400)).timestamp() * 1000)
    writer = ReadingWriter(pool)
    # A reading beyond the partitions made at start: it lands in the default partition.
    await writer.write(readings([far, T0], [1.0, 2.0]))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings_default") == 2
    upkeep = Upkeep(pool, later, timedelta(days=93), timedelta(days=730))
    done = await upkeep.once()
    month = later.now.strftime("%Y%m")
    assert f"readings_{month}" in done["created"]  # the month the clock is in, and ahead
    assert done["dropped"]  # the months older than 93 days before the clock
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings_default") == 0
        # the reading of 400 days on moved into its month; the 2025 one fell to retention
        assert await conn.fetchval("SELECT count(*) FROM readings") == 1
        assert await conn.fetchval("SELECT count(*) FROM readings_1m") == 1
        where = await conn.fetchval("SELECT tableoid::regclass::text FROM readings")
        assert where == "readings_" + datetime.fromtimestamp(far / 1000, UTC).strftime("%Y%m")
    assert await upkeep.once() == {"created": [], "dropped": []}  # a second pass: nothing to do
    await writer.write(readings([far + 1000], [1.5]))  # writes go on into the moved month
    keep = Upkeep(pool, Clock(later.now + timedelta(days=800)), None, timedelta(days=730))
    await keep.once()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings") == 2  # raw kept: off
        assert await conn.fetchval("SELECT count(*) FROM readings_1m") == 0  # 2 years passed


async def test_storage_timescaledb_refused_when_absent(database_url: str) -> None:
    pool = await db.create_pool(database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            if await _timescale(conn):
                pytest.skip("this server has TimescaleDB")
        with pytest.raises(StorageRefused, match="YJ_STORAGE=timescaledb"):
            await migrations.migrate(pool, Settings(storage="timescaledb"))
    finally:
        await pool.close()


async def test_readings_endpoint_reads_the_aggregates_after_raw_retention(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    viewer = {"Authorization": f"Bearer {await create_token(pool, 'v', Role.VIEWER, ['*'])}"}
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO devices (enterprise, device, kind, site)"
            " VALUES ('ent1', 'gd-1', 'gas_detector', 'face-3')"
        )
    # two hours of readings every 30 s, rising 0.01 per reading
    ts = [T0 + i * 30_000 for i in range(240)]
    await ReadingWriter(pool).write(readings(ts, [round(0.01 * i, 2) for i in range(240)]))
    path = "/api/v1/devices/ent1/gd-1/readings"
    ask = {"point": "ch4", "since": "2025-11-23T00:00:00Z", "until": "2025-11-23T02:00:00Z"}
    async with pool.acquire() as conn:  # raw retention passes; the aggregates stay
        await conn.execute("DELETE FROM readings")
    hours = (await client.get(path, params={**ask, "bucket": "1h"}, headers=viewer)).json()
    assert hours["source"] == "readings_1h"
    got = [(h["ts"], round(h["avg"], 6), h["min"], h["max"], h["count"], h["last"])
           for h in hours["items"]]  # fmt: skip
    assert got == [
        ("2025-11-23T00:00:00+00:00", 0.595, 0.0, 1.19, 120, 1.19),
        ("2025-11-23T01:00:00+00:00", 1.795, 1.2, 2.39, 120, 2.39),
    ]
    minutes = (await client.get(path, params={**ask, "bucket": "2m"}, headers=viewer)).json()
    assert minutes["source"] == "readings_1m"
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    assert [(m["ts"], round(m["avg"], 6), m["min"], m["max"], m["count"], m["last"])
            for m in minutes["items"]] == [
        ((start + timedelta(minutes=2 * k)).isoformat(), round(0.04 * k + 0.015, 6),
         round(0.04 * k, 2), round(0.04 * k + 0.03, 2), 4, round(0.04 * k + 0.03, 2))
        for k in range(60)
    ]  # fmt: skip
    seconds = (await client.get(path, params={**ask, "bucket": "30s"}, headers=viewer)).json()
    assert (seconds["source"], seconds["items"]) == ("readings", [])  # only raw answers 30s


async def test_an_unpartitioned_readings_table_is_converted_whole(pool: asyncpg.Pool) -> None:
    """A database whose readings table is neither partitioned nor a hypertable (made by hand,
    or left by an old layout) is converted at start, duplicates dropped, nothing lost."""
    async with pool.acquire() as conn:
        if await _timescale(conn):
            pytest.skip("this server has TimescaleDB: the conversion goes to a hypertable")
        await conn.execute("DROP TABLE readings CASCADE")
        await conn.execute(
            "CREATE TABLE readings (ts timestamptz NOT NULL, series integer NOT NULL,"
            " value double precision, quality smallint NOT NULL)"
        )
        await conn.execute("CREATE INDEX readings_series_ts ON readings (series, ts)")
        await conn.execute(
            "INSERT INTO readings SELECT to_timestamp(1763856000 + i * 15), 1, i, 0"
            " FROM generate_series(0, 99) i"
        )
        await conn.execute("INSERT INTO readings SELECT * FROM readings WHERE value < 10")
    found = await migrations.migrate(pool)
    assert found["storage"].startswith("PostgreSQL monthly partitions")
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'readings'")
            == "p"
        )
        assert await conn.fetchval("SELECT count(*) FROM readings") == 100
        assert await conn.fetchval("SELECT sum(value) FROM readings") == sum(range(100))
        assert await conn.fetchval("SELECT to_regclass('readings_converting')") is None
