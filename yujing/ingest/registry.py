"""The device and site registry: stored in PostgreSQL, cached in ingest.

A cache miss asks the database (so a device registered through any API process is seen at
once); misses are remembered briefly so an unknown device flooding the broker costs one
query per few seconds, not one per message. Changes published on `yj.registry` evict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from yujing.db import Conn
from yujing.ingest.batch import DeviceInfo

NEGATIVE_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class Point:
    unit: str = ""
    interval_s: float | None = None


def device_info(row: Any) -> DeviceInfo:
    points = row["points"] or {}
    return DeviceInfo(
        enterprise=row["enterprise"],
        device=row["device"],
        kind=row["kind"],
        site=row["site"],
        tags={str(k): str(v) for k, v in (row["tags"] or {}).items()},
        units={name: str(p.get("unit", "")) for name, p in points.items()},
        uid=row["uid"],
        rev=row["rev"],
        intervals={
            name: float(p["interval_s"])
            for name, p in points.items()
            if isinstance(p.get("interval_s"), int | float) and p["interval_s"] > 0
        },
    )


class Registry:
    def __init__(self, pool: asyncpg.Pool, *, auto_register: bool = False) -> None:
        self._pool = pool
        self._auto = auto_register
        self._known: dict[tuple[str, str], DeviceInfo] = {}
        self._unknown: dict[tuple[str, str], float] = {}

    def cached(self, enterprise: str, device: str) -> DeviceInfo | None:
        """The cached record, without a coroutine: ingest asks this first, per message."""
        return self._known.get((enterprise, device))

    async def lookup(self, enterprise: str, device: str) -> DeviceInfo | None:
        key = (enterprise, device)
        info = self._known.get(key)
        if info is not None:
            return info
        missed = self._unknown.get(key)
        if missed is not None and time.monotonic() - missed < NEGATIVE_TTL_S:
            return None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM devices WHERE enterprise = $1 AND device = $2", enterprise, device
            )
            if row is None and self._auto:
                row = await _auto_register(conn, enterprise, device)
        if row is None:
            self._unknown[key] = time.monotonic()
            return None
        self._unknown.pop(key, None)
        info = self._known[key] = device_info(row)
        return info

    def evict(self, enterprise: str, device: str) -> None:
        self._known.pop((enterprise, device), None)
        self._unknown.pop((enterprise, device), None)


async def _auto_register(conn: Conn, enterprise: str, device: str) -> Any:
    """`YJ_AUTO_REGISTER=1`: an unknown device is registered as kind `unknown` at site
    `unassigned`, visible in the API for an admin to complete; no hazard rule selects it."""
    await upsert_site(conn, enterprise, "unassigned", "auto-register")
    return await conn.fetchrow(
        "INSERT INTO devices (enterprise, device, kind, site, auto_registered, updated_by)"
        " VALUES ($1, $2, 'unknown', 'unassigned', true, 'auto-register')"
        " ON CONFLICT (enterprise, device) DO UPDATE SET updated_at = devices.updated_at"
        " RETURNING *",
        enterprise, device,
    )  # fmt: skip


async def upsert_site(conn: Conn, enterprise: str, site: str, who: str) -> None:
    await conn.execute(
        "INSERT INTO sites (enterprise, site, updated_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (enterprise, site) DO NOTHING",
        enterprise, site, who,
    )  # fmt: skip


async def upsert_device(
    conn: Conn,
    enterprise: str,
    device: str,
    record: dict[str, Any],
    who: str,
) -> Any:
    """Create or replace a device record (`PUT /devices/...`); its site is created if new."""
    async with conn.transaction():
        await upsert_site(conn, enterprise, record["site"], who)
        return await conn.fetchrow(
            "INSERT INTO devices (enterprise, device, kind, site, tags, points, updated_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (enterprise, device) DO UPDATE SET kind = EXCLUDED.kind,"
            " site = EXCLUDED.site, tags = EXCLUDED.tags, points = EXCLUDED.points,"
            " auto_registered = false, rev = devices.rev + 1, updated_at = now(),"
            " updated_by = EXCLUDED.updated_by"
            " RETURNING *",
            enterprise, device, record["kind"], record["site"], record.get("tags", {}),
            record.get("points", {}), who,
        )  # fmt: skip
