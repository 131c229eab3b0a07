"""The hazard watch: a periodic check with an injected clock that
- proposes a hazard from repeated alarms on one point (or links them to its open hazard),
- flags hazards past their deadline and escalates them up the jurisdiction ladder,
- pushes alerts past their time to acknowledge or to on-site feedback up the same ladder.

Each result is recorded once (a hazard step on the feed, or a row of `alert_tier_notices`),
so two watches, or a check that runs twice, do it once. Pushes go to the webhook
subscriptions that take escalations, as the alert escalation's do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from yujing.alerts import cloudevents, webhooks
from yujing.alerts.model import Alert
from yujing.alerts.store import SEQ_LOCK, StoredChange
from yujing.db import Conn
from yujing.hazards import followup, lifecycle, limits
from yujing.hazards.jurisdiction import SYSTEM, Tier
from yujing.hazards.model import Grade, Hazard, Source, Step
from yujing.hazards.settings import HazardSettings
from yujing.hazards.store import record
from yujing.levels import Level
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

_REPEATS = """
SELECT a.enterprise, a.site, a.device, a.point, array_agg(DISTINCT t.alert_id) AS alert_ids,
       count(*) AS n
FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
WHERE t.at > $1 AND NOT a.health AND a.device IS NOT NULL
  AND a.point IS NOT NULL AND t.to_level >= $2
  AND (t.transition IN ('raised', 'reopened') OR (t.transition = 'escalated' AND t.from_level < $2))
  AND NOT EXISTS (SELECT 1 FROM hazards h WHERE t.alert_id = ANY(h.alert_ids))
GROUP BY a.enterprise, a.site, a.device, a.point HAVING count(*) >= $3
"""
_OPEN_AT_POINT = """
SELECT * FROM hazards WHERE enterprise = $1 AND device = $2 AND point = $3
AND state IN ('reported', 'confirmed', 'rectifying', 'rectified') ORDER BY reported_at LIMIT 1
FOR UPDATE
"""
_LATE = """
SELECT * FROM hazards WHERE state IN ('reported', 'confirmed', 'rectifying')
AND coalesce(listed_deadline, deadline) < $1 ORDER BY id FOR UPDATE SKIP LOCKED
"""
# Only alerts that may be past their limit: active (or started) at least the shortest limit ago.
_UNACKED = """
SELECT * FROM alerts WHERE state = 'active' AND active_since <= $1
AND NOT suppressed AND NOT unreliable AND NOT chattering
"""
_NO_FEEDBACK = """
SELECT a.* FROM alerts a WHERE a.state <> 'closed' AND NOT a.health AND a.peak_level >= $1
AND a.started_at <= $2 AND NOT a.suppressed
AND NOT EXISTS (SELECT 1 FROM alert_follow_ups f WHERE f.alert_id = a.id)
"""


@dataclass(frozen=True, slots=True)
class TierNotice:
    alert_id: str
    limit: str  # "ack" or "feedback"
    tier: Tier
    targets: int


@dataclass(slots=True)
class Outcome:
    hazard_changes: list[StoredChange]
    alert_notices: list[TierNotice]


class HazardWatch:
    def __init__(
        self, pool: asyncpg.Pool, clock: Callable[[], datetime], settings: HazardSettings
    ) -> None:
        self._pool, self._clock, self._s = pool, clock, settings

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        async def once() -> None:
            await self.tick()

        await periodic("hazard-watch", once, self._s.hazard_watch_every_s, stop, health=health)

    async def tick(self) -> Outcome:
        now = self._clock()
        async with self._pool.acquire() as conn:
            limit_of = await limits.load(conn)
            changes = await self._proposals(conn, now)
            changes += await self._late_hazards(conn, limit_of, now)
            notices = await self._alert_limits(conn, limit_of, now)
        return Outcome(changes, notices)

    async def _proposals(self, conn: Conn, now: datetime) -> list[StoredChange]:
        since = now - timedelta(seconds=self._s.hazard_repeat_window_s)
        level, count = int(self._s.repeat_level), self._s.hazard_repeat_count
        out: list[StoredChange] = []
        # No upper bound: alarms are on event time, which may run a little ahead of this clock.
        for g in await conn.fetch(_REPEATS, since, level, count):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
                row = await conn.fetchrow(_OPEN_AT_POINT, g["enterprise"], g["device"], g["point"])
                ids = sorted(g["alert_ids"])
                if row is not None:
                    hazard, step = lifecycle.link(Hazard.from_row(row), SYSTEM, ids, now)
                else:
                    hazard, step = lifecycle.report(_proposal(g, self._s), SYSTEM, now)
                note = f"{g['n']} alarms ≥ {self._s.hazard_repeat_level} within the window"
                out.append(await record(conn, hazard, step, SYSTEM, note, now))
        return out

    async def _late_hazards(
        self, conn: Conn, limit_of: dict[str, limits.Limit], now: datetime
    ) -> list[StoredChange]:
        out: list[StoredChange] = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
            for row in await conn.fetch(_LATE, now):
                h = Hazard.from_row(row)
                assert h.due is not None
                step_s = timedelta(seconds=limit_of[h.grade.value].feedback_s)
                tier = limits.tier_for(now - h.due, step_s)
                while (result := lifecycle.past_due(h, tier, now)) is not None:
                    h, step = result
                    change = await record(conn, h, step, SYSTEM, _late_note(h, step), now)
                    out.append(change)
                    if step is Step.ESCALATED:
                        event = {**cloudevents.to_cloudevent(change), "tier": tier.word}
                        await webhooks.enqueue(conn, event, escalation=True, now=now)
        return out

    async def _alert_limits(
        self, conn: Conn, limit_of: dict[str, limits.Limit], now: datetime
    ) -> list[TierNotice]:
        out: list[TierNotice] = []
        shortest_ack = min((x.ack_s for x in limit_of.values() if x.ack_s), default=0.0)
        for row in await conn.fetch(_UNACKED, now - timedelta(seconds=shortest_ack)):
            alert = Alert.from_row(row)
            ack_s = limit_of[alert.level.word].ack_s
            assert alert.active_since is not None
            tier = None if ack_s is None else limits.alert_tier(alert.active_since, ack_s, now)
            if tier is not None:
                out += await _push(conn, alert, "ack", tier, now)
        colours = [limit_of[level.word].feedback_s for level in (Level.ORANGE, Level.RED)]
        started = now - timedelta(seconds=min(colours))
        for row in await conn.fetch(_NO_FEEDBACK, int(Level.ORANGE), started):
            alert = Alert.from_row(row)
            assert followup.needed(alert)
            feedback_s = limit_of[alert.peak_level.word].feedback_s
            tier = limits.alert_tier(alert.started_at, feedback_s, now)
            if tier is not None:
                out += await _push(conn, alert, "feedback", tier, now)
        return out


async def _push(
    conn: Conn, alert: Alert, limit: str, tier: Tier, now: datetime
) -> list[TierNotice]:
    async with conn.transaction():
        new = await conn.fetchval(
            "INSERT INTO alert_tier_notices (alert_id, kind, tier, at, targets)"
            " VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING RETURNING tier",
            alert.id, limit, int(tier), now,
        )  # fmt: skip
        if new is None:
            return []
        event = tier_event(alert, limit, tier, now)
        targets = await webhooks.enqueue(conn, event, escalation=True, now=now)
        await conn.execute(
            "UPDATE alert_tier_notices SET targets = $4"
            " WHERE alert_id = $1 AND kind = $2 AND tier = $3",
            alert.id, limit, int(tier), targets,
        )  # fmt: skip
    return [TierNotice(alert.id, limit, tier, targets)]


def tier_event(alert: Alert, limit: str, tier: Tier, now: datetime) -> dict[str, Any]:
    """`cn.yujing.alert.escalated` with `reason` ack_overdue or feedback_overdue and `tier`."""
    return {
        "specversion": cloudevents.SPEC_VERSION,
        "id": f"{alert.id}-{limit}-{tier.word}",
        "source": f"/yujing/enterprises/{alert.enterprise}",
        "type": cloudevents.TYPE_PREFIX + "escalated",
        "subject": alert.key,
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "seq": alert.seq,
        "actor": "hazard-watch",
        "reason": f"{limit}_overdue",
        "tier": tier.word,
        "data": alert.public(),
    }


def _proposal(g: Any, s: HazardSettings) -> lifecycle.Report:
    hours = s.hazard_repeat_window_s / 3600
    return lifecycle.Report(
        enterprise=g["enterprise"], source=Source.ALARM, grade=Grade.GENERAL,
        category="general.repeated_alarm", site=g["site"], device=g["device"], point=g["point"],
        description=(
            f"{g['device']}/{g['point']}: {g['n']} 次 ≥ {s.hazard_repeat_level} 报警 "
            f"({hours:g} h 内), 待核实"
        ),
        alert_ids=tuple(sorted(g["alert_ids"])),
    )  # fmt: skip


def _late_note(h: Hazard, step: Step) -> str:
    assert h.due is not None
    if step is Step.OVERDUE:
        return f"past its deadline {h.due.isoformat()}"
    return f"past its deadline {h.due.isoformat()}; pushed to the {h.escalated_tier.word} level"
