"""Escalation: an active alert at or above `escalate_min_level` that nobody acknowledged
within `escalate_after_s` gets an `escalated` notice to the escalation targets (webhook
subscriptions with `escalations: true`), again every `escalate_after_s` until it is
acknowledged (or resolves, or drops below the level).

Notice n of an active period is due at `active_since + n × escalate_after_s`; each is
recorded once in `alert_escalations` (the primary key makes two escalators, or a check
that runs twice, send it once). A check that was down sends the latest due notice, not a
backlog. Alerts that are not pushed to people (suppressed, unreliable, chattering) are not
escalated either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from yujing.alerts import cloudevents, webhooks
from yujing.alerts.model import Alert
from yujing.alerts.settings import AlertSettings
from yujing.db import Conn
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

SENT = Counter("yj_alert_escalations_total", "Escalation notices recorded")

_DUE = """
SELECT * FROM alerts WHERE state = 'active' AND level >= $1 AND active_since <= $2
AND NOT suppressed AND NOT unreliable AND NOT chattering
ORDER BY active_since LIMIT 1000
"""
_RECORD = """
INSERT INTO alert_escalations (alert_id, active_since, n, at, level, targets)
SELECT $1, $2, $3, $4, $5, 0
WHERE NOT EXISTS (SELECT 1 FROM alert_escalations WHERE alert_id = $1 AND active_since = $2
                  AND n >= $3)
ON CONFLICT DO NOTHING RETURNING n
"""


@dataclass(frozen=True, slots=True)
class Notice:
    alert_id: str
    n: int
    targets: int


def notice_event(alert: Alert, n: int, now: datetime) -> dict[str, Any]:
    """A CloudEvent of type `cn.yujing.alert.escalated` with `reason: unacknowledged`."""
    assert alert.active_since is not None
    since_ms = int(alert.active_since.timestamp() * 1000)
    return {
        "specversion": cloudevents.SPEC_VERSION,
        "id": f"{alert.id}-esc-{since_ms}-{n}",
        "source": f"/yujing/enterprises/{alert.enterprise}",
        "type": cloudevents.TYPE_PREFIX + "escalated",
        "subject": alert.key,
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "seq": alert.seq,
        "actor": "escalation",
        "reason": "unacknowledged",
        "notice": n,
        "data": alert.public(),
    }


class Escalator:
    def __init__(
        self, pool: asyncpg.Pool, clock: Callable[[], datetime], settings: AlertSettings
    ) -> None:
        self._pool, self._clock, self._s = pool, clock, settings

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        async def once() -> None:
            await self.tick()

        await periodic("escalation", once, self._s.escalate_every_s, stop, health=health)

    async def tick(self) -> list[Notice]:
        """Sends the notices due now; returns them."""
        now = self._clock()
        after = timedelta(seconds=self._s.escalate_after_s)
        out: list[Notice] = []
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_DUE, int(self._s.escalate_level), now - after)
            for row in rows:
                alert = Alert.from_row(row)
                assert alert.active_since is not None
                n = int((now - alert.active_since) / after)
                async with conn.transaction():
                    notice = await self._send(conn, alert, n, now)
                if notice:
                    out.append(notice)
        return out

    async def _send(self, conn: Conn, alert: Alert, n: int, now: datetime) -> Notice | None:
        recorded = await conn.fetchval(
            _RECORD, alert.id, alert.active_since, n, now, int(alert.level)
        )
        if recorded is None:
            return None  # already sent (by us earlier, or by another process)
        event = notice_event(alert, n, now)
        targets = await webhooks.enqueue(conn, event, escalation=True, now=now)
        await conn.execute(
            "UPDATE alert_escalations SET targets = $4"
            " WHERE alert_id = $1 AND active_since = $2 AND n = $3",
            alert.id, alert.active_since, n, targets,
        )  # fmt: skip
        SENT.inc()
        if targets == 0:
            log.warning("alert %s unacknowledged, but no escalation target is subscribed", alert.id)
        return Notice(alert.id, n, targets)


async def notices(pool: asyncpg.Pool, alert_id: str) -> list[dict[str, Any]]:
    """Unacknowledged notices, then tiered pushes past a time limit (`limit`: ack or
    feedback, `tier`: the jurisdiction level it went to), each in time order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT active_since, n, at, level, targets FROM alert_escalations"
            " WHERE alert_id = $1 ORDER BY at",
            alert_id,
        )
        tiered = await conn.fetch(
            "SELECT kind, tier, at, targets FROM alert_tier_notices WHERE alert_id = $1"
            " ORDER BY at, tier",
            alert_id,
        )
    return [
        {**dict(r), "active_since": r["active_since"].isoformat(), "at": r["at"].isoformat()}
        for r in rows
    ] + [
        {"limit": r["kind"], "tier": webhooks.TIERS[r["tier"]], "at": r["at"].isoformat(),
         "targets": r["targets"]}
        for r in tiered
    ]  # fmt: skip
