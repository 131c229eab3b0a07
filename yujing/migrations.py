"""The schema of every stage, applied at each start: each stage keeps its tables in its own
`schema.sql`, applied in pipeline order, idempotently; readings storage (TimescaleDB or
native partitions) is decided in `yujing.alerts.storage`. Apart from `yujing.db` so that
the stores, which import `db`, are not imported back by it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg

from yujing.alerts import storage
from yujing.config import Settings
from yujing.db import MIGRATION_LOCK

log = logging.getLogger(__name__)

STAGES = ("ingest", "registry", "rules", "alerts", "hazards", "api")


def schema_sql(stage: str) -> str:
    path = resources.files(f"yujing.{stage}").joinpath("schema.sql")
    return path.read_text(encoding="utf-8") if path.is_file() else ""


async def migrate(pool: asyncpg.Pool, settings: Settings | None = None) -> dict[str, Any]:
    """Apply every stage's schema and bring readings storage to what this server offers;
    returns what it found: `timescaledb` (in use or not) and `storage` (one line on it)."""
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
