"""Online and connection counts per enterprise, kept fresh beside the API.

Counting 100,000 devices against their reporting intervals takes a scan of the device and
presence tables; the wall screens of a province ask for the overview every few seconds. So
one task per API process recounts every `EVERY_S` seconds into `enterprise_presence`, and
the overview joins that table (its `as_of` says when it was counted); a request finding no
count, or one older than `STALE_S` (nothing refreshing, as in a bare app), counts first.

Online: a device whose last report arrived within 3 reporting intervals of its slowest
registered point (`DEFAULT_INTERVAL_S` when it registers none) and whose own status
message, if newer than that report, does not say offline or fault. Connected (入网): it has
reported at least once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

DEFAULT_INTERVAL_S = 25.0  # AQ 6201's polling cycle; 3 missed = the health rule's 75 s
MISSED_INTERVALS = 3
EVERY_S = 5.0
STALE_S = 15.0
log = logging.getLogger(__name__)

_COUNT = """
WITH counted AS (
    SELECT d.enterprise, count(*) AS devices, count(p.device) AS connected,
        count(*) FILTER (
            WHERE p.last_seen_at >= $1::timestamptz
                - make_interval(secs => $2 * coalesce(d.report_interval_s, $3))
            AND NOT (s.state IN ('offline', 'fault') AND s.ts >= p.last_ts)
        ) AS online
    FROM devices d
    LEFT JOIN device_presence p ON p.enterprise = d.enterprise AND p.device = d.device
    LEFT JOIN device_status s ON s.enterprise = d.enterprise AND s.device = d.device
    GROUP BY d.enterprise
), saved AS (
    INSERT INTO enterprise_presence (enterprise, devices, connected, online, counted_at)
    SELECT enterprise, devices, connected, online, $1 FROM counted
    ON CONFLICT (enterprise) DO UPDATE SET devices = EXCLUDED.devices,
        connected = EXCLUDED.connected, online = EXCLUDED.online,
        counted_at = EXCLUDED.counted_at
)
DELETE FROM enterprise_presence
WHERE counted_at <> $1 AND enterprise NOT IN (SELECT enterprise FROM counted)
"""


@dataclass
class PresenceFigures:
    pool: asyncpg.Pool
    clock: Callable[[], datetime]
    as_of: datetime | None = None
    _counted_at: float = -1e9  # monotonic
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self) -> None:
        async with self._lock:
            now = self.clock()
            async with self.pool.acquire() as conn:
                await conn.execute(_COUNT, now, float(MISSED_INTERVALS), DEFAULT_INTERVAL_S)
            self.as_of, self._counted_at = now, time.monotonic()

    async def fresh(self) -> datetime | None:
        """When the counts the overview will read were taken; counts first when this
        process has no recent count."""
        if time.monotonic() - self._counted_at > STALE_S:
            await self.refresh()
        return self.as_of

    async def run(
        self, stop: asyncio.Event, every_s: float = EVERY_S, health: Health | None = None
    ) -> None:
        async def once() -> None:
            await self.refresh()

        await periodic("online-counts", once, every_s, stop, health=health)
