"""Alarm statistics by division × sector × level × period — the figures provincial reports
quote: raised, acknowledged, closed, median time to acknowledge and to close, and the share
of chattering and unreliable alarms. Alerts are counted where they were raised (the division
and sector stored on the alert), in the period (China Standard Time) of `started_at`, at their
peak level; device-health alerts are counted apart (`health` in each group)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from yujing.db import Conn
from yujing.levels import Level
from yujing.registry import divisions

Period = Literal["day", "week", "month"]
DivisionLevel = Literal["province", "city", "county"]

_SQL = """
SELECT date_trunc($4, started_at AT TIME ZONE 'Asia/Shanghai') AS period,
    CASE WHEN division IS NULL THEN NULL
         ELSE rpad(left(division, $5), 6, '0') END AS division,
    sector, peak_level AS level, health,
    count(*) AS raised,
    count(acknowledged_at) AS acknowledged,
    count(closed_at) AS closed,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM acknowledged_at - started_at)) AS median_ack_s,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM closed_at - started_at)) AS median_close_s,
    avg(chattering::int) AS chattering_share,
    avg(unreliable::int) AS unreliable_share
FROM alerts
WHERE ($1::text[] IS NULL OR enterprise = ANY($1)) AND started_at >= $2 AND started_at < $3
  AND ($6::text IS NULL OR division LIKE $6) AND ($7::text IS NULL OR sector = $7)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2 NULLS LAST, 3 NULLS LAST, 4 DESC, 5
"""


async def alarm_statistics(
    conn: Conn,
    enterprises: list[str] | None,
    since: datetime,
    until: datetime,
    period: Period,
    by: DivisionLevel,
    division: str | None = None,
    sector: str | None = None,
) -> list[dict[str, Any]]:
    pattern = None if division is None else divisions.prefix(division) + "%"
    found = await conn.fetch(
        _SQL, enterprises, since, until, period, divisions.DIGITS[by], pattern, sector
    )
    return [
        {
            "period": r["period"].date().isoformat(),
            "division": r["division"],
            "division_name": divisions.full_name(r["division"]) if r["division"] else None,
            "sector": r["sector"],
            "level": Level(r["level"]).word,
            "health": r["health"],
            "raised": r["raised"],
            "acknowledged": r["acknowledged"],
            "closed": r["closed"],
            "median_ack_s": _round(r["median_ack_s"]),
            "median_close_s": _round(r["median_close_s"]),
            "chattering_share": _round(r["chattering_share"], 4),
            "unreliable_share": _round(r["unreliable_share"], 4),
        }
        for r in found
    ]


def _round(v: Any, digits: int = 1) -> float | None:
    return None if v is None else round(float(v), digits)


_ONLINE_SQL = """
SELECT e.id, e.division, e.sectors, coalesce(d.devices, 0) AS devices,
    coalesce(h.device_hours, 0) AS device_hours
FROM enterprises e
LEFT JOIN (SELECT enterprise, count(*) AS devices FROM devices GROUP BY enterprise) d
    ON d.enterprise = e.id
LEFT JOIN (
    SELECT s.enterprise, count(DISTINCT (s.device, a.bucket)) AS device_hours
    FROM readings_1h a JOIN reading_series s ON s.id = a.series
    WHERE a.bucket >= $1 AND a.bucket < $2
    GROUP BY s.enterprise
) h ON h.enterprise = e.id
WHERE {scope}
ORDER BY e.id
"""


async def online_over_period(
    conn: Conn, enterprises: list[str] | None, since: datetime, until: datetime,
    by: DivisionLevel,
) -> dict[str, Any]:  # fmt: skip
    """Online rate over [since, until), whole hours: the share of device-hours in which a
    device delivered at least one valid reading (the hourly aggregates), per enterprise and
    totalled per division (at level `by`) and per sector."""
    hours = max(1, int((until - since).total_seconds() // 3600))
    scope = "true"
    args: list[Any] = [since, until]
    if enterprises is not None:
        scope = "e.id = ANY($3::text[])"
        args.append(enterprises)
    rows = await conn.fetch(_ONLINE_SQL.format(scope=scope), *args)
    cut = divisions.DIGITS[by]
    by_div: dict[str, list[int]] = {}
    by_sector: dict[str, list[int]] = {}
    items = []
    for r in rows:
        dev, dh = int(r["devices"]), int(r["device_hours"])
        items.append({"enterprise": r["id"], "devices": dev, "device_hours": dh,
                      "online_rate": rate(dh, dev * hours)})  # fmt: skip
        for key, groups in ((r["division"][:cut].ljust(6, "0"), by_div),
                            *((s, by_sector) for s in r["sectors"])):  # fmt: skip
            acc = groups.setdefault(key, [0, 0])
            acc[0], acc[1] = acc[0] + dev, acc[1] + dh
    return {
        "hours": hours, "items": items,
        "by_division": [
            {"division": k, "name": divisions.full_name(k), "devices": v[0],
             "device_hours": v[1], "online_rate": rate(v[1], v[0] * hours)}
            for k, v in sorted(by_div.items())
        ],
        "by_sector": [
            {"sector": k, "devices": v[0], "device_hours": v[1],
             "online_rate": rate(v[1], v[0] * hours)}
            for k, v in sorted(by_sector.items())
        ],
    }  # fmt: skip


def rate(part: int, whole: int) -> float | None:
    """A share rounded to 4 places; None when there is nothing to share."""
    return None if whole == 0 else round(part / whole, 4)
