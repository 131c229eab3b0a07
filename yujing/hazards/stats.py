"""Hazard figures per group × period: found, confirmed, rectified (signed off), overdue,
rectification rate (整改率), major hazards open and under listed supervision.

`found`, `confirmed`, `rectified` count the hazards reported in each period (a cohort, so
整改率 = signed off / (found − dismissed) of that cohort); `overdue`, `major_open` and
`major_listed` are now, for the same hazards. Groups are by enterprise; the jurisdiction
picture groups the same rows by the enterprise's division and sector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yujing.db import Conn

PERIODS = ("day", "week", "month", "all")

_FIGURES = """
SELECT enterprise AS grp, {bucket} AS period,
  count(*) AS found,
  count(*) FILTER (WHERE confirmed_at IS NOT NULL) AS confirmed,
  count(*) FILTER (WHERE state = 'rectified') AS awaiting_review,
  count(*) FILTER (WHERE state = 'signed_off') AS rectified,
  count(*) FILTER (WHERE state = 'dismissed') AS dismissed,
  count(*) FILTER (WHERE overdue AND state IN ('reported', 'confirmed', 'rectifying')) AS overdue,
  count(*) FILTER (WHERE grade = 'major' AND state IN {open}) AS major_open,
  count(*) FILTER (WHERE grade = 'major' AND state IN {open} AND listed_tier IS NOT NULL)
    AS major_listed,
  count(*) FILTER (WHERE sent_back > 0) AS sent_back
FROM hazards
WHERE reported_at >= $1 AND reported_at < $2
  AND ($3::text[] IS NULL OR enterprise = ANY($3::text[]))
GROUP BY 1, 2 ORDER BY 2, 1
"""
_OPEN = "('reported', 'confirmed', 'rectifying', 'rectified')"


async def figures(
    conn: Conn, since: datetime, until: datetime, period: str, enterprises: list[str] | None
) -> dict[str, Any]:
    bucket = "NULL::timestamptz" if period == "all" else f"date_trunc('{period}', reported_at)"
    assert period in PERIODS
    rows = await conn.fetch(_FIGURES.format(bucket=bucket, open=_OPEN), since, until, enterprises)
    groups = [_row(r) for r in rows]
    keys = ("found", "confirmed", "awaiting_review", "rectified", "dismissed", "overdue",
            "major_open", "major_listed", "sent_back")  # fmt: skip
    total = {k: sum(g[k] for g in groups) for k in keys}
    total["rectification_rate"] = _rate(total["rectified"], total["found"], total["dismissed"])
    return {
        "since": since.isoformat(), "until": until.isoformat(), "period": period,
        "group_by": "enterprise", "groups": groups, "total": total,
    }  # fmt: skip


def _row(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"enterprise": r["grp"]}
    out["period"] = r["period"].isoformat() if r["period"] else None
    for k in ("found", "confirmed", "awaiting_review", "rectified", "dismissed", "overdue",
              "major_open", "major_listed", "sent_back"):  # fmt: skip
        out[k] = int(r[k])
    out["rectification_rate"] = _rate(out["rectified"], out["found"], out["dismissed"])
    return out


def _rate(rectified: int, found: int, dismissed: int) -> float | None:
    real = found - dismissed
    return round(rectified / real, 4) if real > 0 else None
