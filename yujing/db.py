"""PostgreSQL: the connection pool, the schema of every stage, and the TimescaleDB check.

Each stage keeps its tables in its own `schema.sql`; they are applied in pipeline order,
idempotently, at every start. With the TimescaleDB extension available the readings table
becomes a hypertable with compression and retention; without it, native range partitions.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection, whether taken from a pool or opened alone.
Conn = asyncpg.Connection | PoolConnectionProxy

STAGES = ("ingest", "registry", "rules", "alerts", "api")
MIGRATION_LOCK = 0x796A_0001  # advisory lock id: one migrator at a time across processes


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # JIT off: yujing's queries are short; on aggregate queries over the register the planner's
    # cost estimates start LLVM compilation that took seconds (measured: bench/overview.py).
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection,
        server_settings={"jit": "off"},
    )  # fmt: skip
    assert pool is not None
    return pool


async def has_timescaledb(conn: Conn) -> bool:
    row = await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return row is not None


def schema_sql(stage: str) -> str:
    path = resources.files(f"yujing.{stage}").joinpath("schema.sql")
    return path.read_text(encoding="utf-8") if path.is_file() else ""


async def migrate(pool: asyncpg.Pool) -> dict[str, Any]:
    """Apply every stage's schema; returns what it found (e.g. whether TimescaleDB is on)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        for stage in STAGES:
            sql = schema_sql(stage)
            if sql:
                await conn.execute(sql)
        timescale = await has_timescaledb(conn)
        from yujing.alerts.readings import prepare_readings_storage

        await prepare_readings_storage(conn, timescale=timescale)
    return {"timescaledb": timescale}
