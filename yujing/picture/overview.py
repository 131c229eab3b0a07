"""一张表: for every enterprise in scope, its colour now (the highest level among its active,
unsuppressed hazard alerts; device-health alerts counted apart), standing risk grade, active
alerts by level, and online figures — sorted by risk; totals per division and sector.

Online (在线): a device whose last report arrived within 3 reporting intervals of its slowest
registered point (`DEFAULT_INTERVAL_S` when it registers none) and whose own status message,
if newer than that report, does not say offline or fault. Connected (入网): it has reported
at least once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yujing.db import Conn
from yujing.levels import Level
from yujing.registry import divisions
from yujing.registry.sectors import SECTORS

DEFAULT_INTERVAL_S = 25.0  # AQ 6201's polling cycle; 3 missed = the health rule's 75 s
MISSED_INTERVALS = 3

_SQL = """
WITH ent AS (
    SELECT * FROM enterprises
    WHERE ($1::text[] IS NULL OR id = ANY($1))
      AND ($3::text IS NULL OR division LIKE $3)
      AND ($4::text IS NULL OR $4 = ANY(sectors))
      AND ($5::text IS NULL OR park = $5)
), act AS (
    SELECT a.enterprise,
        max(a.level) FILTER (WHERE NOT a.health AND NOT a.suppressed) AS colour,
        count(*) FILTER (WHERE a.level = 4 AND NOT a.health AND NOT a.suppressed) AS red,
        count(*) FILTER (WHERE a.level = 3 AND NOT a.health AND NOT a.suppressed) AS orange,
        count(*) FILTER (WHERE a.level = 2 AND NOT a.health AND NOT a.suppressed) AS yellow,
        count(*) FILTER (WHERE a.level = 1 AND NOT a.health AND NOT a.suppressed) AS blue,
        count(*) FILTER (WHERE a.health) AS health_active,
        count(*) FILTER (WHERE a.suppressed AND NOT a.health) AS suppressed
    FROM alerts a JOIN ent ON ent.id = a.enterprise
    WHERE a.state IN ('active', 'acknowledged')
    GROUP BY a.enterprise
), dev AS (
    SELECT d.enterprise, count(*) AS devices, count(p.device) AS connected,
        count(*) FILTER (
            WHERE p.last_seen_at >= $2::timestamptz - make_interval(secs => $6 * coalesce(
                (SELECT max((v->>'interval_s')::float8) FROM jsonb_each(d.points) AS x(k, v)),
                $7))
            AND NOT (s.state IN ('offline', 'fault') AND s.ts >= p.last_ts)
        ) AS online
    FROM devices d JOIN ent ON ent.id = d.enterprise
    LEFT JOIN device_presence p ON p.enterprise = d.enterprise AND p.device = d.device
    LEFT JOIN device_status s ON s.enterprise = d.enterprise AND s.device = d.device
    GROUP BY d.enterprise
)
SELECT ent.id, ent.name, ent.division, ent.park, ent.sectors, ent.state, ent.supervision_class,
    ent.lon, ent.lat, ent.risk_grade, act.colour,
    coalesce(act.red, 0) AS red, coalesce(act.orange, 0) AS orange,
    coalesce(act.yellow, 0) AS yellow, coalesce(act.blue, 0) AS blue,
    coalesce(act.health_active, 0) AS health_active, coalesce(act.suppressed, 0) AS suppressed,
    coalesce(dev.devices, 0) AS devices, coalesce(dev.online, 0) AS online,
    coalesce(dev.connected, 0) AS connected
FROM ent LEFT JOIN act ON act.enterprise = ent.id LEFT JOIN dev ON dev.enterprise = ent.id
ORDER BY act.colour DESC NULLS LAST, ent.risk_grade DESC NULLS LAST, red DESC, orange DESC,
    yellow DESC, blue DESC, health_active DESC, ent.id
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
        "connection_rate": rate(r["connected"], r["devices"]), "lon": r["lon"], "lat": r["lat"],
    }  # fmt: skip


async def rows(conn: Conn, filters: Filters, now: datetime) -> list[dict[str, Any]]:
    """Every enterprise in scope and filters, riskiest first."""
    pattern = None if filters.division is None else divisions.prefix(filters.division) + "%"
    found = await conn.fetch(
        _SQL, filters.enterprises, now, pattern, filters.sector, filters.park,
        float(MISSED_INTERVALS), DEFAULT_INTERVAL_S,
    )  # fmt: skip
    return [enterprise_row(r) for r in found]


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
