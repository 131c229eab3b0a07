"""Alarm-management figures (ISA-18.2 / EEMUA 191) from the stored alert history.

- alarm rate: annunciations (raised, reopened, escalated, pushed to people) per operator
  position per 10 minutes; yujing's operator position is the enterprise's monitoring
  console, so figures are per enterprise: average, busiest 10 minutes, and the share of
  10-minute periods in flood (more than 10 alarms, the ISA-18.2 flood threshold);
- standing alarms: open (active or acknowledged) for more than 24 h;
- chattering alarms: open alerts marked chattering (marks.py);
- the ten noisiest rules and devices;
- time to acknowledge (from becoming active) and to close (from start), in seconds;
- time to on-site feedback: from start to the follow-up record (超限报警追查), in seconds.

The same figures go to `/metrics`, refreshed by `StatsRefresher` in the alerts stage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Gauge

from yujing.db import Conn
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

FLOOD_PER_10MIN = 10
STANDING_AFTER = timedelta(hours=24)
ANNUNCIATED = "transition IN ('raised', 'reopened', 'escalated') AND notify"
SCOPE = "($3::text[] IS NULL OR alert->>'enterprise' = ANY($3::text[]))"

RATE = Gauge("yj_alarm_rate_per_10min", "Alarms per 10 minutes over the last hour", ["enterprise"])
STANDING = Gauge("yj_alarms_standing", "Alarms open for more than 24 h", ["enterprise"])
CHATTERING = Gauge("yj_alarms_chattering", "Open alarms marked chattering", ["enterprise"])
ACK_S = Gauge("yj_alarm_ack_seconds", "Time to acknowledge over the last day", ["stat"])
CLOSE_S = Gauge("yj_alarm_close_seconds", "Time to close over the last day", ["stat"])
NOISIEST = Gauge("yj_alarm_noisiest_rule", "Alarms in the last day, top ten rules", ["rule"])


async def figures(
    conn: Conn, since: datetime, until: datetime, now: datetime, enterprises: list[str] | None
) -> dict[str, Any]:
    period = (since, until, enterprises)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rate": await _rate(conn, *period),
        "standing": await _open_marked(conn, enterprises, "started_at < $2", now - STANDING_AFTER),
        "chattering": await _open_marked(conn, enterprises, "chattering AND $2::bool", True),
        "top_rules": await _top(conn, "alert->>'rule_id'", *period),
        "top_devices": await _top(
            conn, "(alert->>'enterprise') || '/' || coalesce(alert->>'device', '-')", *period
        ),
        "time_to_ack_s": await _durations(conn, _ACK_DELAYS, *period),
        "time_to_close_s": await _durations(conn, _CLOSE_DELAYS, *period),
        "time_to_feedback_s": await _durations(conn, _FEEDBACK_DELAYS, *period),
    }


async def _rate(
    conn: Conn, since: datetime, until: datetime, enterprises: list[str] | None
) -> list[dict[str, Any]]:
    periods = max(1.0, (until - since).total_seconds() / 600)
    rows = await conn.fetch(
        "WITH b AS (SELECT alert->>'enterprise' AS enterprise,"
        " floor(extract(epoch FROM at) / 600) AS bucket, count(*) AS n FROM alert_transitions"
        f" WHERE at >= $1 AND at < $2 AND {SCOPE} AND {ANNUNCIATED} GROUP BY 1, 2)"
        " SELECT enterprise, sum(n) AS total, max(n) AS peak,"
        " count(*) FILTER (WHERE n > $4) AS floods FROM b GROUP BY 1 ORDER BY 2 DESC",
        since, until, enterprises, FLOOD_PER_10MIN,
    )  # fmt: skip
    return [
        {
            "enterprise": r["enterprise"],
            "alarms": int(r["total"]),
            "per_10min": round(int(r["total"]) / periods, 3),
            "peak_10min": int(r["peak"]),
            "flood_share": round(int(r["floods"]) / periods, 4),
        }
        for r in rows
    ]


async def _open_marked(
    conn: Conn, enterprises: list[str] | None, condition: str, arg: Any
) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT id, enterprise FROM alerts WHERE state IN ('active', 'acknowledged')"
        f" AND ($1::text[] IS NULL OR enterprise = ANY($1::text[])) AND {condition}"
        " ORDER BY started_at",
        enterprises, arg,
    )  # fmt: skip
    by_enterprise: dict[str, int] = {}
    for r in rows:
        by_enterprise[r["enterprise"]] = by_enterprise.get(r["enterprise"], 0) + 1
    return {"count": len(rows), "by_enterprise": by_enterprise, "ids": [r["id"] for r in rows][:50]}


async def _top(
    conn: Conn, what: str, since: datetime, until: datetime, enterprises: list[str] | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {what} AS name, count(*) AS n FROM alert_transitions"
        f" WHERE at >= $1 AND at < $2 AND {SCOPE} AND {ANNUNCIATED}"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
        since, until, enterprises,
    )  # fmt: skip
    return [{"name": r["name"], "alarms": int(r["n"])} for r in rows]


# Acknowledged: from the moment the alert became active (its active_since just before).
_ACK_DELAYS = (
    "SELECT extract(epoch FROM t.at - (SELECT (p.alert->>'active_since')::timestamptz"
    " FROM alert_transitions p WHERE p.alert_id = t.alert_id AND p.seq < t.seq"
    " ORDER BY p.seq DESC LIMIT 1)) AS s FROM alert_transitions t"
    " WHERE t.transition = 'acknowledged'"
)
_CLOSE_DELAYS = (
    "SELECT extract(epoch FROM t.at - (t.alert->>'started_at')::timestamptz) AS s"
    " FROM alert_transitions t WHERE t.transition = 'closed'"
)

# Follow-ups in the period, by when they were recorded, shaped like the rows above.
_FEEDBACK_DELAYS = (
    "SELECT extract(epoch FROM t.at - t.started_at) AS s FROM (SELECT f.recorded_at AS at,"
    " a.started_at, jsonb_build_object('enterprise', a.enterprise) AS alert"
    " FROM alert_follow_ups f JOIN alerts a ON a.id = f.alert_id) t WHERE true"
)


async def _durations(
    conn: Conn, delays: str, since: datetime, until: datetime, enterprises: list[str] | None
) -> dict[str, Any]:
    row = await conn.fetchrow(
        # A close is wall clock, a raise is event time (docs/contracts.md "Clocks"): when a
        # device's clock runs ahead (an accelerated scenario) the difference can be negative;
        # such pairs are counted apart, never averaged.
        f"SELECT count(s) FILTER (WHERE s >= 0) AS n, avg(s) FILTER (WHERE s >= 0) AS mean,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FILTER (WHERE s >= 0) AS median,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY s) FILTER (WHERE s >= 0) AS p90,"
        " max(s) FILTER (WHERE s >= 0) AS max, count(s) FILTER (WHERE s < 0) AS clock_skewed"
        f" FROM ({delays} AND t.at >= $1 AND t.at < $2"
        f" AND ($3::text[] IS NULL OR t.alert->>'enterprise' = ANY($3::text[]))) d",
        since, until, enterprises,
    )  # fmt: skip
    assert row is not None
    found = dict(row)
    out = {k: None if v is None else round(float(v), 3) for k, v in found.items()}
    return {**out, "n": int(found["n"]), "clock_skewed": int(found["clock_skewed"])}


class StatsRefresher:
    """Keeps the `/metrics` gauges current: rate over the last hour, durations and the
    noisiest rules over the last day, standing and chattering now."""

    def __init__(
        self, pool: asyncpg.Pool, clock: Callable[[], datetime], every_s: float = 60.0
    ) -> None:
        self._pool, self._clock, self._every_s = pool, clock, every_s

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        async def once() -> None:
            await self.refresh()

        await periodic("alarm-stats", once, self._every_s, stop, health=health)

    async def refresh(self) -> dict[str, Any]:
        now = self._clock()
        async with self._pool.acquire() as conn:
            hour = await figures(conn, now - timedelta(hours=1), now, now, None)
            day = await figures(conn, now - timedelta(days=1), now, now, None)
        for gauge in (RATE, STANDING, CHATTERING, NOISIEST):
            gauge.clear()  # enterprises and rules come and go: no stale series
        for r in hour["rate"]:
            RATE.labels(r["enterprise"]).set(r["per_10min"])
        for gauge, marked in ((STANDING, day["standing"]), (CHATTERING, day["chattering"])):
            for enterprise, n in marked["by_enterprise"].items():
                gauge.labels(enterprise).set(n)
        for top in day["top_rules"]:
            NOISIEST.labels(top["name"]).set(top["alarms"])
        for gauge, d in ((ACK_S, day["time_to_ack_s"]), (CLOSE_S, day["time_to_close_s"])):
            for stat in ("median", "p90", "max"):
                gauge.labels(stat).set(d[stat] if d[stat] is not None else float("nan"))
            gauge.labels("n").set(d["n"])
        return day
