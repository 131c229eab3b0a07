"""Maintenance windows: an operator declares an enterprise, site, device or point under
maintenance for a period. Alerts inside a window are still recorded, marked `suppressed`,
and not pushed to people (see marks.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: int
    enterprise: str
    site: str | None
    device: str | None
    point: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in out.items()}

    @classmethod
    def from_row(cls, row: Any) -> MaintenanceWindow:
        return cls(**dict(row))


async def declare(
    pool: asyncpg.Pool,
    *,
    enterprise: str,
    site: str | None,
    device: str | None,
    point: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    who: str,
    now: datetime,
) -> MaintenanceWindow:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO maintenance_windows (enterprise, site, device, point, starts_at,"
            " ends_at, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " RETURNING *",
            enterprise, site, device, point, starts_at, ends_at, reason, who, now,
        )  # fmt: skip
    return MaintenanceWindow.from_row(row)


async def find(
    pool: asyncpg.Pool, enterprises: list[str] | None, active_at: datetime | None = None
) -> list[MaintenanceWindow]:
    """Windows of the given enterprises (None: all), newest first; only those covering
    `active_at` when it is given."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM maintenance_windows"
            " WHERE ($1::text[] IS NULL OR enterprise = ANY($1::text[]))"
            " AND ($2::timestamptz IS NULL OR (starts_at <= $2 AND ends_at > $2))"
            " ORDER BY id DESC LIMIT 1000",
            enterprises, active_at,
        )  # fmt: skip
    return [MaintenanceWindow.from_row(r) for r in rows]


async def get(pool: asyncpg.Pool, window_id: int) -> MaintenanceWindow | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM maintenance_windows WHERE id = $1", window_id)
    return MaintenanceWindow.from_row(row) if row else None


async def end(pool: asyncpg.Pool, window_id: int, now: datetime) -> MaintenanceWindow | None:
    """Ends a window early (history is kept: the window is shortened, not deleted)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "UPDATE maintenance_windows SET ends_at = GREATEST(starts_at + interval '1 ms', $2)"
            " WHERE id = $1 AND ends_at > $2 RETURNING *",
            window_id, now,
        )  # fmt: skip
    return MaintenanceWindow.from_row(row) if row else None
