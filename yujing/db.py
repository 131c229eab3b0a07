"""PostgreSQL: the connection pool, the schema of every stage, and the TimescaleDB check.

Each stage keeps its tables in its own `schema.sql`; they are applied in pipeline order,
idempotently, at every start; readings storage (TimescaleDB or native partitions) is decided
in `yujing.alerts.storage`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from yujing.config import Settings

log = logging.getLogger(__name__)

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


def schema_sql(stage: str) -> str:
    path = resources.files(f"yujing.{stage}").joinpath("schema.sql")
    return path.read_text(encoding="utf-8") if path.is_file() else ""


async def migrate(pool: asyncpg.Pool, settings: Settings | None = None) -> dict[str, Any]:
    """Apply every stage's schema and bring readings storage to what this server offers;
    returns what it found: `timescaledb` (in use or not) and `storage` (one line on it)."""
    from yujing.alerts import storage

    s = settings or Settings()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        for stage in STAGES:
            sql = schema_sql(stage)
            if sql:
                await conn.execute(sql)
        cap = await storage.probe(conn, s.storage)
        said = await storage.prepare(
            conn, cap, retention_raw=s.retention_raw, retention_agg=s.retention_agg,
            now=datetime.now(UTC),
        )  # fmt: skip
    if not cap.timescale:
        log.info("TimescaleDB not used: %s", cap.why)
    return {"timescaledb": cap.timescale, "storage": said}
