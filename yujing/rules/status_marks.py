"""A device's own `maintenance` status marks its alerts as a maintenance window does: the
engine opens a device-wide window when the status arrives and ends it at the device's next
other status (online, offline, fault). Replays are harmless: a window is opened only if
none from a status is open for the device, and ending one twice changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from yujing.ingest.batch import Status

WHO = "device-status"
# A device that announces maintenance and then never speaks again is not silenced forever.
LONGEST = timedelta(days=30)

_OPEN = """
INSERT INTO maintenance_windows (enterprise, site, device, point, starts_at, ends_at, reason,
                                 created_by, created_at)
SELECT $1::text, NULL, $2::text, NULL, $3::timestamptz, $3::timestamptz + $4::interval,
       $5::text, $6::text, $3::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM maintenance_windows WHERE enterprise = $1 AND device = $2
                  AND created_by = $6 AND starts_at <= $3 AND ends_at > $3)
"""
_END = """
UPDATE maintenance_windows SET ends_at = GREATEST(starts_at + interval '1 ms', $3::timestamptz)
WHERE enterprise = $1 AND device = $2 AND created_by = $4 AND starts_at <= $3 AND ends_at > $3
"""


async def apply(pool: asyncpg.Pool, statuses: Sequence[Status]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for st in statuses:
            at = datetime.fromtimestamp(st.ts / 1000, UTC)
            ent, dev = st.device.enterprise, st.device.device
            if st.state == "maintenance":
                reason = f"device status: maintenance {st.detail}".strip()
                await conn.execute(_OPEN, ent, dev, at, LONGEST, reason, WHO)
            else:
                await conn.execute(_END, ent, dev, at, WHO)
