"""The outbox relay: publishes stored alert changes in `seq` order to every publisher.

Changes are written to PostgreSQL first (by the engine path and by operators alike), and
this relay tails them, so the feeds carry exactly what is stored, in order, at least once.
One relay is active at a time across processes (a session advisory lock); the others wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg
from prometheus_client import Counter

from yujing.alerts.publishers import Publisher, PublishError
from yujing.alerts.store import NOTIFY_CHANNEL, AlertStore
from yujing.db import Conn
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

RELAY_LOCK = 0x796A_0003
PUBLISHED = Counter("yj_alert_feed_published_total", "Alert changes published", ["publisher"])
FAILED = Counter("yj_alert_feed_failures_total", "Failed publish attempts", ["publisher"])


class FeedRelay:
    def __init__(
        self, pool: asyncpg.Pool, store: AlertStore, publishers: Sequence[Publisher]
    ) -> None:
        self._pool = pool
        self._store = store
        self._publishers = list(publishers)
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        """Relays while this process holds the relay lock; waits for it otherwise. A lost
        connection ends the session, which the periodic loop starts again."""

        async def session() -> None:
            await self._session(stop)

        await periodic("alert-feed", session, 2.0, stop, health=health)

    async def _session(self, stop: asyncio.Event) -> None:
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                return  # another process relays; try again in a while
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            try:
                await self._relay(conn, stop)
            finally:
                if not conn.is_closed():
                    await conn.remove_listener(NOTIFY_CHANNEL, self._notified)
                    await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _relay(self, conn: Conn, stop: asyncio.Event) -> None:
        cursors = {p.name: await _cursor(conn, p.name) for p in self._publishers}
        backoff = 0.5
        while not stop.is_set():
            self._wake.clear()
            progressed = False
            for p in self._publishers:
                changes = await self._store.changes_since(cursors[p.name], limit=500)
                if not changes:
                    continue
                try:
                    await p.publish(changes)
                except PublishError as exc:
                    FAILED.labels(p.name).inc()
                    log.warning("publisher %s failed (retry=%s): %s", p.name, exc.retryable, exc)
                    if exc.retryable:
                        continue  # the cursor stays: the same changes go out again
                PUBLISHED.labels(p.name).inc(len(changes))
                cursors[p.name] = changes[-1].seq
                await conn.execute(
                    "INSERT INTO feed_cursor (name, seq) VALUES ($1, $2)"
                    " ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq",
                    p.name, cursors[p.name],
                )  # fmt: skip
                progressed = True
            if progressed:
                backoff = 0.5
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
            if stop.is_set():
                return


async def _cursor(conn: Conn, name: str) -> int:
    seq = await conn.fetchval("SELECT seq FROM feed_cursor WHERE name = $1", name)
    return int(seq or 0)
