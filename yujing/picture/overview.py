"""一张表: for every enterprise in scope, its colour now (the highest level among its active,
unsuppressed hazard alerts; device-health alerts counted apart), standing risk grade, active
alerts by level, open hazards (all, major, overdue) and online figures (presence.py) —
sorted by risk; totals per division and sector.

PostgreSQL does the work: one query returns the page asked for, one the totals, so a
province of 10,000 enterprises sends 200 rows and a few hundred totals, not 10,000 rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yujing.db import Conn
from yujing.levels import Level
from yujing.picture.statistics import rate
from yujing.registry import divisions
from yujing.registry.sectors import SECTORS

# Per enterprise in scope; {scope_alerts} and {where} are filled in per request (only the
# filters given are written into the SQL: a prepared `$n IS NULL OR …` lets PostgreSQL settle
# on a generic plan that ran a per-enterprise subquery 10,000 times).
_ROWS = """
SELECT e.id, e.name, e.division, e.park, e.sectors, e.state, e.supervision_class,
    e.lon, e.lat, e.risk_grade, act.colour,
    coalesce(act.red, 0) AS red, coalesce(act.orange, 0) AS orange,
    coalesce(act.yellow, 0) AS yellow, coalesce(act.blue, 0) AS blue,
    coalesce(act.health_active, 0) AS health_active, coalesce(act.suppressed, 0) AS suppressed,
    coalesce(hz.open, 0) AS hazards_open, coalesce(hz.major, 0) AS hazards_major,
    coalesce(hz.overdue, 0) AS hazards_overdue,
    coalesce(pr.devices, 0) AS devices, coalesce(pr.online, 0) AS online,
    coalesce(pr.connected, 0) AS connected
FROM enterprises e
LEFT JOIN (
    SELECT enterprise,
        max(level) FILTER (WHERE NOT health AND NOT suppressed) AS colour,
        count(*) FILTER (WHERE level = 4 AND NOT health AND NOT suppressed) AS red,
        count(*) FILTER (WHERE level = 3 AND NOT health AND NOT suppressed) AS orange,
        count(*) FILTER (WHERE level = 2 AND NOT health AND NOT suppressed) AS yellow,
        count(*) FILTER (WHERE level = 1 AND NOT health AND NOT suppressed) AS blue,
        count(*) FILTER (WHERE health) AS health_active,
        count(*) FILTER (WHERE suppressed AND NOT health) AS suppressed
    FROM alerts
    WHERE state IN ('active', 'acknowledged') {scope_alerts}
    GROUP BY enterprise
) act ON act.enterprise = e.id
LEFT JOIN (
    SELECT enterprise, count(*) AS open, count(*) FILTER (WHERE grade = 'major') AS major,
        count(*) FILTER (WHERE overdue) AS overdue
    FROM hazards
    WHERE state NOT IN ('signed_off', 'dismissed') {scope_alerts}
    GROUP BY enterprise
) hz ON hz.enterprise = e.id
LEFT JOIN enterprise_presence pr ON pr.enterprise = e.id
WHERE {where}
"""
_ORDER = """
ORDER BY colour DESC NULLS LAST, risk_grade DESC NULLS LAST, red DESC, orange DESC,
    yellow DESC, blue DESC, hazards_major DESC, hazards_open DESC, health_active DESC,
    id COLLATE "C"
"""
_SUMS = """
count(*) AS enterprises,
count(*) FILTER (WHERE colour = 4) AS colour_red,
count(*) FILTER (WHERE colour = 3) AS colour_orange,
count(*) FILTER (WHERE colour = 2) AS colour_yellow,
count(*) FILTER (WHERE colour = 1) AS colour_blue,
count(*) FILTER (WHERE colour IS NULL) AS colour_none,
sum(red) AS red, sum(orange) AS orange, sum(yellow) AS yellow, sum(blue) AS blue,
sum(health_active) AS health_active, sum(devices) AS devices, sum(online) AS online,
sum(connected) AS connected, sum(hazards_open) AS hazards_open,
sum(hazards_major) AS hazards_major, sum(hazards_overdue) AS hazards_overdue
"""
_TOTALS = (
    "WITH r AS ({rows})"
    " SELECT 'all' AS kind, '' AS key, " + _SUMS + " FROM r"
    " UNION ALL SELECT 'division', rpad(left(division, {cut}), 6, '0'), "
    + _SUMS
    + " FROM r GROUP BY 2"
    " UNION ALL SELECT 'sector', s, " + _SUMS + " FROM r, unnest(sectors) AS s GROUP BY 2"
    " ORDER BY 1, 2"
)
_LEVELS: tuple[str, ...] = ("red", "orange", "yellow", "blue")
_COLOURS: tuple[str, ...] = (*_LEVELS, "none")


@dataclass(slots=True)
class Filters:
    enterprises: list[str] | None  # the caller's scope; None = all
    division: str | None = None
    sector: str | None = None
    park: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """The per-enterprise query for these filters, and its arguments."""
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        where, in_scope = ["true"], ""
        if self.enterprises is not None:
            scope = arg(self.enterprises)
            where.append(f"e.id = ANY({scope}::text[])")
            in_scope = f"AND enterprise = ANY({scope}::text[])"
        if self.division is not None:
            where.append(f"e.division LIKE {arg(divisions.prefix(self.division) + '%')}")
        if self.sector is not None:
            where.append(f"{arg(self.sector)} = ANY(e.sectors)")
        if self.park is not None:
            where.append(f"e.park = {arg(self.park)}")
        return _ROWS.format(scope_alerts=in_scope, where=" AND ".join(where)), args


def enterprise_row(r: Any) -> dict[str, Any]:
    colour, grade = r["colour"], r["risk_grade"]
    return {
        "enterprise": r["id"], "name": r["name"], "division": r["division"],
        "division_name": divisions.full_name(r["division"]), "park": r["park"],
        "sectors": list(r["sectors"]), "state": r["state"],
        "supervision_class": r["supervision_class"],
        "colour": None if colour is None else Level(colour).word,
        "risk_grade": None if grade is None else Level(grade).word,
        "active": {lv: r[lv] for lv in _LEVELS}, "health_active": r["health_active"],
        "suppressed": r["suppressed"], "devices": r["devices"], "online": r["online"],
        "connected": r["connected"], "online_rate": rate(r["online"], r["devices"]),
        "connection_rate": rate(r["connected"], r["devices"]), "lon": r["lon"],
        "lat": r["lat"],
        "hazards": {"open": r["hazards_open"], "major": r["hazards_major"],
                    "overdue": r["hazards_overdue"]},
    }  # fmt: skip


async def rows(
    conn: Conn, filters: Filters, offset: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """The enterprises in scope and filters, riskiest first (a page, or all)."""
    sql, args = filters.sql()
    sql += _ORDER + f" OFFSET {int(offset)}" + ("" if limit is None else f" LIMIT {int(limit)}")
    return [enterprise_row(r) for r in await conn.fetch(sql, *args)]


async def totals(conn: Conn, filters: Filters, division_level: str) -> dict[str, Any]:
    """Totals over every enterprise in scope and filters, per division (at
    `division_level`) and per sector."""
    sql, args = filters.sql()
    found = await conn.fetch(_TOTALS.format(rows=sql, cut=divisions.DIGITS[division_level]), *args)
    out = no_totals()
    for r in found:
        if r["kind"] == "all":
            out["all"] = _public(r)
        elif r["kind"] == "division":
            out["by_division"].append(
                {"division": r["key"], "name": divisions.full_name(r["key"]), **_public(r)}
            )
        else:
            name = SECTORS[r["key"]][0]
            out["by_sector"].append({"sector": r["key"], "name": name, **_public(r)})
    return out


def no_totals() -> dict[str, Any]:
    return {"all": _public(None), "by_division": [], "by_sector": []}


def _public(r: Any) -> dict[str, Any]:
    def f(name: str) -> int:
        return 0 if r is None or r[name] is None else int(r[name])

    return {
        "enterprises": f("enterprises"),
        "by_colour": {c: f(f"colour_{c}") for c in _COLOURS},
        "active": {lv: f(lv) for lv in _LEVELS}, "health_active": f("health_active"),
        "devices": f("devices"), "online": f("online"), "connected": f("connected"),
        "online_rate": rate(f("online"), f("devices")),
        "connection_rate": rate(f("connected"), f("devices")),
        "hazards": {"open": f("hazards_open"), "major": f("hazards_major"),
                    "overdue": f("hazards_overdue")},
    }  # fmt: skip
