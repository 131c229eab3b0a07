"""Storage upkeep while running (the sink stage runs it): monthly partitions kept ahead, the
default partition emptied into the partitions its rows belong to, retention applied where
TimescaleDB policies do not do it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from yujing.db import MIGRATION_LOCK, Conn
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

_MONTH = re.compile(r"^readings_(\d{4})(\d{2})$")
AHEAD_MONTHS = 3


def month_start(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def next_month(t: datetime) -> datetime:
    return datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)


async def ensure_partitions(
    conn: Conn, now: datetime, retention: timedelta | None, ahead: int = AHEAD_MONTHS
) -> list[str]:
    """Monthly partitions from the oldest month retention keeps (last month without
    retention) to `ahead` months on, and one for every month that has rows in the default
    partition: those rows move into it, so the default partition never blocks an attach.
    Returns the partitions created."""
    first = month_start(now - retention) if retention else month_start(now - timedelta(days=28))
    last = month_start(now)
    for _ in range(ahead):
        last = next_month(last)
    months = set()
    m = first
    while m <= last:
        months.add(m)
        m = next_month(m)
    cutoff = now - retention if retention else None
    stray = await conn.fetch(
        "SELECT DISTINCT date_trunc('month', ts, 'UTC') AS m FROM readings_default"
        " WHERE $1::timestamptz IS NULL OR ts >= $1",
        cutoff,
    )
    months.update(r["m"].astimezone(UTC) for r in stray)
    created = []
    for start in sorted(months):
        name = f"readings_{start.year:04d}{start.month:02d}"
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
            continue
        await _attach_month(conn, name, start, next_month(start))
        created.append(name)
    return created


async def _attach_month(conn: Conn, name: str, start: datetime, end: datetime) -> None:
    async with conn.transaction():
        await conn.execute(
            f"CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        moved = await conn.execute(
            f"WITH moved AS (DELETE FROM readings_default WHERE ts >= $1 AND ts < $2"
            f" RETURNING ts, series, value, quality) INSERT INTO {name} SELECT * FROM moved",
            start, end,
        )  # fmt: skip
        await conn.execute(
            f"ALTER TABLE readings ATTACH PARTITION {name}"
            f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    if moved != "INSERT 0 0":
        log.info("partition %s attached, rows moved from the default partition: %s", name, moved)


async def drop_expired_partitions(conn: Conn, cutoff: datetime) -> list[str]:
    """Drops monthly partitions wholly older than `cutoff` and the default partition's rows
    older than it (so raw readings are kept at least as long as retention says)."""
    dropped = []
    for r in await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname"
    ):
        match = _MONTH.match(r["relname"])
        if match is None:
            continue
        start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
        if next_month(start) <= cutoff:
            await conn.execute(f"DROP TABLE {r['relname']}")
            dropped.append(r["relname"])
    await conn.execute("DELETE FROM readings_default WHERE ts < $1", cutoff)
    return dropped


@dataclass
class Upkeep:
    """One pass keeps partitions ahead and applies retention; `run` repeats it."""

    pool: asyncpg.Pool
    clock: Callable[[], datetime]
    retention_raw: timedelta | None
    retention_agg: timedelta | None
    every_s: float = 3600.0

    async def once(self) -> dict[str, list[str]]:
        now = self.clock()
        done: dict[str, list[str]] = {"created": [], "dropped": []}
        async with self.pool.acquire() as conn, conn.transaction():
            # One pass at a time across processes, and never beside a migration.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            kind = await conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE oid = 'readings'::regclass"
            )
            if kind == "p":
                done["created"] = await ensure_partitions(conn, now, self.retention_raw)
                if self.retention_raw is not None:
                    done["dropped"] = await drop_expired_partitions(conn, now - self.retention_raw)
            elif self.retention_raw is not None and not await _has_policy(conn, "readings"):
                await conn.execute(
                    "SELECT drop_chunks('readings', older_than => $1::timestamptz)",
                    now - self.retention_raw,
                )
            if self.retention_agg is not None:
                for name in ("readings_1m", "readings_1h"):
                    if await conn.fetchval(
                        "SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass($1)", name
                    ):
                        await conn.execute(
                            f"DELETE FROM {name} WHERE bucket < $1", now - self.retention_agg
                        )
        if done["created"] or done["dropped"]:
            log.info("storage upkeep: %s", done)
        return done

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        # Upkeep is hours ahead of need: a pass that fails on an outage is retried.
        async def once() -> None:
            await self.once()

        await periodic("storage-upkeep", once, self.every_s, stop, health=health)


async def _has_policy(conn: Conn, table: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM timescaledb_information.jobs WHERE hypertable_name = $1"
        " AND proc_name = 'policy_retention'",
        table,
    )
    return found is not None
