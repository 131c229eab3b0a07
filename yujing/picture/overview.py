"""一张表: for every enterprise in scope, its colour now (the highest level among its active,
unsuppressed hazard alerts; device-health alerts counted apart), standing risk grade, active
alerts by level, and online figures (presence.py) — sorted by risk; totals per division
and sector."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from yujing.db import Conn
from yujing.levels import Level
from yujing.picture.presence import Counts
from yujing.registry import divisions
from yujing.registry.sectors import SECTORS

_SQL = """
SELECT e.id, e.name, e.division, e.park, e.sectors, e.state, e.supervision_class,
    e.lon, e.lat, e.risk_grade, act.colour,
    coalesce(act.red, 0) AS red, coalesce(act.orange, 0) AS orange,
    coalesce(act.yellow, 0) AS yellow, coalesce(act.blue, 0) AS blue,
    coalesce(act.health_active, 0) AS health_active, coalesce(act.suppressed, 0) AS suppressed
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
    WHERE state IN ('active', 'acknowledged') {alerts_in_scope}
    GROUP BY enterprise
) act ON act.enterprise = e.id
WHERE {enterprises_where}
ORDER BY act.colour DESC NULLS LAST, e.risk_grade DESC NULLS LAST, red DESC, orange DESC,
    yellow DESC, blue DESC, health_active DESC, e.id COLLATE "C"
"""


_LEVELS: tuple[str, ...] = ("red", "orange", "yellow", "blue")
_COLOURS: tuple[str, ...] = (*_LEVELS, "none")


@dataclass(slots=True)
class Filters:
    enterprises: list[str] | None  # the caller's scope; None = all
    division: str | None = None
    sector: str | None = None
    park: str | None = None


@dataclass(slots=True)
class Totals:
    enterprises: int = 0
    by_colour: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COLOURS, 0))
    active: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_LEVELS, 0))
    health_active: int = 0
    devices: int = 0
    online: int = 0
    connected: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.enterprises += 1
        self.by_colour[row["colour"] or "none"] += 1
        for level in _LEVELS:
            self.active[level] += row["active"][level]
        self.health_active += row["health_active"]
        self.devices += row["devices"]
        self.online += row["online"]
        self.connected += row["connected"]

    def public(self) -> dict[str, Any]:
        return {
            "enterprises": self.enterprises, "by_colour": self.by_colour, "active": self.active,
            "health_active": self.health_active, "devices": self.devices, "online": self.online,
            "connected": self.connected, "online_rate": rate(self.online, self.devices),
            "connection_rate": rate(self.connected, self.devices),
        }  # fmt: skip


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def enterprise_row(r: Any, counts: Counts) -> dict[str, Any]:
    colour, grade = r["colour"], r["risk_grade"]
    return {
        "enterprise": r["id"], "name": r["name"], "division": r["division"],
        "division_name": divisions.full_name(r["division"]), "park": r["park"],
        "sectors": list(r["sectors"]), "state": r["state"],
        "supervision_class": r["supervision_class"],
        "colour": None if colour is None else Level(colour).word,
        "risk_grade": None if grade is None else Level(grade).word,
        "active": {lv: r[lv] for lv in _LEVELS}, "health_active": r["health_active"],
        "suppressed": r["suppressed"], "devices": counts.devices, "online": counts.online,
        "connected": counts.connected, "online_rate": rate(counts.online, counts.devices),
        "connection_rate": rate(counts.connected, counts.devices), "lon": r["lon"],
        "lat": r["lat"],
    }  # fmt: skip


async def rows(conn: Conn, filters: Filters, presence: dict[str, Counts]) -> list[dict[str, Any]]:
    """Every enterprise in scope and filters, riskiest first. Only the filters given are
    written into the SQL: a prepared `$n IS NULL OR …` would let PostgreSQL settle on a
    generic plan that runs the device count once per enterprise (minutes at 10,000)."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where, in_scope = ["true"], ""
    if filters.enterprises is not None:
        scope = arg(filters.enterprises)
        where.append(f"e.id = ANY({scope}::text[])")
        in_scope = f"AND enterprise = ANY({scope}::text[])"
    if filters.division is not None:
        where.append(f"e.division LIKE {arg(divisions.prefix(filters.division) + '%')}")
    if filters.sector is not None:
        where.append(f"{arg(filters.sector)} = ANY(e.sectors)")
    if filters.park is not None:
        where.append(f"e.park = {arg(filters.park)}")
    sql = _SQL.format(alerts_in_scope=in_scope, enterprises_where=" AND ".join(where))
    none = Counts()
    return [enterprise_row(r, presence.get(r["id"], none)) for r in await conn.fetch(sql, *args)]


def totals(items: list[dict[str, Any]], division_level: str) -> dict[str, Any]:
    """Totals over all items, per division (at `division_level`) and per sector."""
    all_ = Totals()
    by_div: dict[str, Totals] = defaultdict(Totals)
    by_sector: dict[str, Totals] = defaultdict(Totals)
    for item in items:
        all_.add(item)
        by_div[_at_level(item["division"], division_level)].add(item)
        for sector in item["sectors"]:
            by_sector[sector].add(item)
    return {
        "all": all_.public(),
        "by_division": [
            {"division": code, "name": divisions.full_name(code), **t.public()}
            for code, t in sorted(by_div.items())
        ],
        "by_sector": [
            {"sector": s, "name": SECTORS[s][0], **t.public()} for s, t in sorted(by_sector.items())
        ],
    }


def _at_level(code: str, level: str) -> str:
    if level == "province":
        return code[:2] + "0000"
    if level == "city":
        return code[:4] + "00"
    return code
