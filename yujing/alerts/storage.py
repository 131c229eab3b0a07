"""How readings are stored: TimescaleDB when it is really usable (preloaded, extension
creatable), each licensed feature only where the licence has it; else native monthly range
partitions. A database that changed between the two is converted, or refused, never half.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from yujing.alerts.upkeep import ensure_partitions
from yujing.db import Conn

log = logging.getLogger(__name__)

READINGS_DDL = (
    "CREATE TABLE readings (ts timestamptz NOT NULL, series integer NOT NULL,"
    " value double precision, quality smallint NOT NULL)"
)
# One reading per (series, event time): a re-read stores nothing twice. Both partitioned
# tables and hypertables allow it because it includes the partitioning column.
UNIQUE_INDEX = "readings_series_ts_key"
AGGREGATES = {"readings_1m": "1 minute", "readings_1h": "1 hour"}
# The sink updates a bucket many times while it is current: room on the page keeps those
# updates HOT (no index churn).
_AGG_TABLE = (
    "CREATE TABLE IF NOT EXISTS {name} (series integer NOT NULL, bucket timestamptz NOT NULL,"
    " min double precision NOT NULL, max double precision NOT NULL,"
    " sum double precision NOT NULL, count bigint NOT NULL,"
    " last double precision NOT NULL, last_ts timestamptz NOT NULL,"
    " PRIMARY KEY (series, bucket)) WITH (fillfactor = 70);"
    " CREATE INDEX IF NOT EXISTS {name}_bucket ON {name} (bucket)"
)


class StorageRefused(RuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


class Layout(StrEnum):
    NONE = "none"
    PARTITIONED = "partitioned"
    HYPERTABLE = "hypertable"
    TABLE = "table"  # an unpartitioned table: converted whichever way storage goes


@dataclass(frozen=True)
class Capability:
    """What this server offers; `why` says why TimescaleDB is not used, or which one is."""

    timescale: bool
    why: str
    license: str = ""

    @property
    def licensed(self) -> bool:
        """Compression, policies and continuous aggregates are not in the Apache build."""
        return self.timescale and self.license == "timescale"


def plan(layout: Layout, cap: Capability) -> str:
    """What migration does with the readings table it found: create, keep, convert, refuse."""
    target = Layout.HYPERTABLE if cap.timescale else Layout.PARTITIONED
    if layout is Layout.NONE:
        return "create"
    if layout is target:
        return "keep"
    if layout is Layout.HYPERTABLE:
        # Without a loaded TimescaleDB a hypertable cannot even be read to convert it.
        raise StorageRefused(
            "readings is a TimescaleDB hypertable but TimescaleDB is not usable on this"
            f" server ({cap.why}); add timescaledb to shared_preload_libraries, or restore a"
            " dump into a server that has it (docs/storage.md)"
        )
    return "convert"


async def probe(conn: Conn, wanted: str) -> Capability:
    """Decides whether TimescaleDB is usable, creating the extension when it is."""
    if wanted == "plain":
        return Capability(False, "YJ_STORAGE=plain")
    available = await conn.fetchval(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if available is None:
        cap = Capability(False, "the timescaledb extension is not installed on the server")
    else:
        preload = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
        libs = {p.strip().strip('"') for p in str(preload).split(",")}
        if not any(lib.split("-")[0] == "timescaledb" for lib in libs):
            cap = Capability(False, "timescaledb is installed but not in shared_preload_libraries")
        else:
            cap = await _create_extension(conn)
    if wanted == "timescaledb" and not cap.timescale:
        raise StorageRefused(f"YJ_STORAGE=timescaledb but TimescaleDB is not usable: {cap.why}")
    return cap


async def _create_extension(conn: Conn) -> Capability:
    try:
        async with conn.transaction():  # a savepoint: a failure leaves the migration usable
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:
        return Capability(False, f"CREATE EXTENSION timescaledb failed: {exc}")
    version = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    )
    lic = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return Capability(True, f"TimescaleDB {version}", str(lic or "apache"))


async def layout(conn: Conn) -> Layout:
    kind = await conn.fetchval(
        "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('readings')"
    )  # fmt: skip
    if kind is None:
        return Layout.NONE
    if kind == "p":
        return Layout.PARTITIONED
    if await conn.fetchval("SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL"):
        hyper = await conn.fetchval(
            "SELECT 1 FROM _timescaledb_catalog.hypertable WHERE table_name = 'readings'"
            " AND schema_name = current_schema()"
        )
        if hyper:
            return Layout.HYPERTABLE
    return Layout.TABLE


async def prepare(
    conn: Conn, cap: Capability, *, retention_raw: timedelta | None,
    retention_agg: timedelta | None, now: datetime,
) -> str:  # fmt: skip
    """Brings readings and their aggregates to the layout `cap` calls for; returns the
    one-line description of the storage in use (the ready line)."""
    found = await layout(conn)
    action = plan(found, cap)
    if action == "convert":
        await conn.execute("ALTER TABLE readings RENAME TO readings_converting")
        for idx in await conn.fetch(
            "SELECT indexrelid::regclass::text AS name FROM pg_index"
            " WHERE indrelid = 'readings_converting'::regclass"
        ):
            await conn.execute(f"DROP INDEX {idx['name']}")
    if action in ("create", "convert"):
        await conn.execute(READINGS_DDL + ("" if cap.timescale else " PARTITION BY RANGE (ts)"))
        if cap.timescale:
            await conn.execute(
                "SELECT create_hypertable('readings', 'ts',"
                " chunk_time_interval => interval '1 day')"
            )
        else:
            await conn.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    await _unique_index(conn)
    if action == "convert":
        moved = await conn.execute(
            "INSERT INTO readings SELECT ts, series, value, quality FROM readings_converting"
            " ON CONFLICT DO NOTHING"
        )
        await conn.execute("DROP TABLE readings_converting CASCADE")
        log.warning("converted readings from %s to %s (%s)", found, cap.why, moved)
    if not cap.timescale:
        await ensure_partitions(conn, now, retention_raw)
    features = await _features(conn, cap, retention_raw, retention_agg)
    if cap.timescale:
        return f"{cap.why} hypertable, licence {cap.license}: {features}"
    return f"PostgreSQL monthly partitions ({cap.why}): {features}"


async def _unique_index(conn: Conn) -> None:
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", UNIQUE_INDEX):
        return
    # A database from before readings were idempotent may hold duplicates: keep one.
    await conn.execute(
        "DELETE FROM readings a USING readings b WHERE a.series = b.series AND a.ts = b.ts"
        " AND a.tableoid = b.tableoid AND a.ctid > b.ctid"
    )
    await conn.execute(f"CREATE UNIQUE INDEX {UNIQUE_INDEX} ON readings (series, ts)")
    await conn.execute("DROP INDEX IF EXISTS readings_series_ts")


async def _features(
    conn: Conn, cap: Capability, raw: timedelta | None, agg: timedelta | None
) -> str:
    """Compression, retention and aggregates, each where available; says what it chose."""
    said: list[str] = []
    caggs = await _aggregates(conn, cap)
    said.append("continuous aggregates 1m/1h" if caggs else "aggregate tables 1m/1h (sink)")
    if cap.licensed:
        compressed = await conn.fetchval(
            "SELECT compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'readings'"
        )
        if not compressed:
            await conn.execute(
                "ALTER TABLE readings SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'series', timescaledb.compress_orderby = 'ts')"
            )
        await conn.execute(
            "SELECT add_compression_policy('readings', interval '7 days', if_not_exists => true)"
        )
        said.append("compression after 7 days")
        await _policy(conn, "readings", raw)
        for name in AGGREGATES:
            await _policy(conn, name, agg if caggs else None)
        said.append("retention policies" if raw or agg else "retention off")
    else:
        if cap.timescale:
            log.warning(
                "TimescaleDB licence %s has no compression, policies or continuous aggregates:"
                " storage upkeep drops old chunks and the sink keeps aggregate tables",
                cap.license,
            )
        said.append("retention by storage upkeep" if raw or agg else "retention off")
    return ", ".join(said)


async def _policy(conn: Conn, table: str, keep: timedelta | None) -> None:
    await conn.execute(f"SELECT remove_retention_policy('{table}', if_exists => true)")
    if keep is not None:
        await conn.execute(f"SELECT add_retention_policy('{table}', $1::interval)", keep)


async def _aggregates(conn: Conn, cap: Capability) -> bool:
    """Continuous aggregates where licensed (unless tables of an earlier layout hold the
    history: they are kept, as converting them would lose what raw retention dropped)."""
    kinds = {
        name: await conn.fetchval(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", name
        )
        for name in AGGREGATES
    }  # fmt: skip
    if any(k == "r" for k in kinds.values()) or not cap.licensed:
        if any(k == "v" for k in kinds.values()):
            raise StorageRefused(
                "readings_1m/readings_1h are TimescaleDB continuous aggregates but this"
                f" server cannot maintain them ({cap.why}, licence {cap.license or 'none'})"
            )
        for name in AGGREGATES:
            await conn.execute(_AGG_TABLE.format(name=name))
        return False
    for name, width in AGGREGATES.items():
        if kinds[name] is None:
            await conn.execute(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous,"
                " timescaledb.materialized_only = false) AS"
                f" SELECT series, time_bucket(interval '{width}', ts) AS bucket,"
                " min(value) AS min, max(value) AS max, sum(value) AS sum,"
                " count(value) AS count, last(value, ts) AS last, max(ts) AS last_ts"
                " FROM readings WHERE quality = 0 AND value IS NOT NULL"
                " GROUP BY series, bucket WITH NO DATA"
            )
        await conn.execute(
            f"SELECT add_continuous_aggregate_policy('{name}',"
            " start_offset => interval '7 days', end_offset => interval '1 minute',"
            f" schedule_interval => interval '{width}', if_not_exists => true)"
        )
    return True
