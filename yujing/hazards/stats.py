"""Hazard figures per division × sector × period: found, confirmed, rectified (signed off),
overdue, rectification rate (整改率), major hazards open and under listed supervision.

Hazards are counted where they were reported (the division and sector stored on the
hazard from the register), in the period (China Standard Time) of `reported_at`, with
divisions rolled up to the level asked for. `found`, `confirmed`, `rectified` count that
cohort, so 整改率 = signed off / (found − dismissed); `overdue`, `major_open` and
`major_listed` are the cohort's state now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from yujing.db import Conn
from yujing.registry import divisions

Period = Literal["day", "week", "month", "all"]
DivisionLevel = Literal["province", "city", "county"]
COUNTS = (
    "found", "confirmed", "awaiting_review", "rectified", "dismissed", "overdue", "major_open",
    "major_listed", "sent_back",
)  # fmt: skip

_OPEN = "('reported', 'confirmed', 'rectifying', 'rectified')"
_SQL = f"""
SELECT CASE WHEN $4 = 'all' THEN NULL
            ELSE date_trunc($4, reported_at AT TIME ZONE 'Asia/Shanghai') END AS period,
    CASE WHEN division IS NULL THEN NULL ELSE rpad(left(division, $5), 6, '0') END AS division,
    sector,
    count(*) AS found,
    count(confirmed_at) AS confirmed,
    count(*) FILTER (WHERE state = 'rectified') AS awaiting_review,
    count(*) FILTER (WHERE state = 'signed_off') AS rectified,
    count(*) FILTER (WHERE state = 'dismissed') AS dismissed,
    count(*) FILTER (WHERE overdue AND state IN ('reported', 'confirmed', 'rectifying'))
        AS overdue,
    count(*) FILTER (WHERE grade = 'major' AND state IN {_OPEN}) AS major_open,
    count(*) FILTER (WHERE grade = 'major' AND state IN {_OPEN} AND listed_tier IS NOT NULL)
        AS major_listed,
    count(*) FILTER (WHERE sent_back > 0) AS sent_back
FROM hazards
WHERE ($1::text[] IS NULL OR enterprise = ANY($1)) AND reported_at >= $2 AND reported_at < $3
  AND ($6::text IS NULL OR division LIKE $6) AND ($7::text IS NULL OR sector = $7)
GROUP BY 1, 2, 3 ORDER BY 1 NULLS FIRST, 2 NULLS LAST, 3 NULLS LAST
"""


async def figures(
    conn: Conn,
    enterprises: list[str] | None,
    since: datetime,
    until: datetime,
    period: Period,
    by: DivisionLevel = "county",
    division: str | None = None,
    sector: str | None = None,
) -> dict[str, Any]:
    pattern = None if division is None else divisions.prefix(division) + "%"
    rows = await conn.fetch(
        _SQL, enterprises, since, until, period, divisions.DIGITS[by], pattern, sector
    )
    groups = [_group(r) for r in rows]
    total: dict[str, Any] = {k: sum(g[k] for g in groups) for k in COUNTS}
    total["rectification_rate"] = _rate(total)
    return {
        "since": since.isoformat(), "until": until.isoformat(), "period": period, "by": by,
        "groups": groups, "total": total,
    }  # fmt: skip


def _group(r: Any) -> dict[str, Any]:
    code = r["division"]
    out: dict[str, Any] = {
        "period": r["period"].date().isoformat() if r["period"] else None,
        "division": code,
        "division_name": divisions.full_name(code) if code else None,
        "sector": r["sector"],
    }
    out.update({k: int(r[k]) for k in COUNTS})
    out["rectification_rate"] = _rate(out)
    return out


def _rate(figures: dict[str, Any]) -> float | None:
    real = figures["found"] - figures["dismissed"]
    return round(figures["rectified"] / real, 4) if real > 0 else None
