"""一张表: for every enterprise in scope, its colour now (the highest level among its active,
unsuppressed hazard alerts; device-health alerts counted apart), standing risk grade, active
alerts by level, and online figures (presence.py) — sorted by risk; totals per division
and sector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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


# Columns of the figures matrix that totals add up, one row per enterprise.
_FIGURES = ("enterprises", *(f"colour_{c}" for c in _COLOURS), *_LEVELS, "health_active",
            "devices", "online", "connected")  # fmt: skip


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


@dataclass(slots=True)
class Overview:
    """The enterprises in scope, riskiest first, as fetched; rows are built on demand (a
    page of 200 out of 10,000) and totals are summed with numpy."""

    records: list[Any]
    presence: dict[str, Counts]

    def __len__(self) -> int:
        return len(self.records)

    def items(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        none = Counts()
        return [
            enterprise_row(r, self.presence.get(r["id"], none)) for r in self.records[start:stop]
        ]

    def totals(self, division_level: str) -> dict[str, Any]:
        """Totals over all of them, per division (at `division_level`) and per sector."""
        figures = self._figures()
        cut = {"province": 2, "city": 4, "county": 6}[division_level]
        codes = [r["division"][:cut].ljust(6, "0") for r in self.records]
        by_div = _group(figures, codes)
        pairs = [(i, s) for i, r in enumerate(self.records) for s in r["sectors"]]
        by_sector = _group(figures[[i for i, _ in pairs]], [s for _, s in pairs])
        return {
            "all": _public(figures.sum(axis=0)),
            "by_division": [
                {"division": c, "name": divisions.full_name(c), **_public(v)} for c, v in by_div
            ],
            "by_sector": [{"sector": s, "name": SECTORS[s][0], **_public(v)} for s, v in by_sector],
        }

    def _figures(self) -> npt.NDArray[np.int64]:
        none, n, recs = Counts(), len(self.records), self.records
        counts = [self.presence.get(r["id"], none) for r in recs]

        def col(values: Any) -> npt.NDArray[np.int64]:
            return np.fromiter(values, np.int64, n)

        colour = col(r["colour"] or 0 for r in recs)
        columns = [
            np.ones(n, np.int64), *(colour == lv for lv in (4, 3, 2, 1)), colour == 0,
            *(col(r[lv] for r in recs) for lv in _LEVELS), col(r["health_active"] for r in recs),
            col(c.devices for c in counts), col(c.online for c in counts),
            col(c.connected for c in counts),
        ]  # fmt: skip
        return np.column_stack(columns).astype(np.int64)


def _group(
    figures: npt.NDArray[np.int64], keys: list[str]
) -> list[tuple[str, npt.NDArray[np.int64]]]:
    if not keys:
        return []
    names, index = np.unique(np.array(keys), return_inverse=True)
    sums = np.zeros((len(names), figures.shape[1]), np.int64)
    np.add.at(sums, index, figures)
    return [(str(n), sums[k]) for k, n in enumerate(names)]


def _public(v: npt.NDArray[np.int64]) -> dict[str, Any]:
    f = dict(zip(_FIGURES, (int(x) for x in v), strict=True))
    return {
        "enterprises": f["enterprises"],
        "by_colour": {c: f[f"colour_{c}"] for c in _COLOURS},
        "active": {lv: f[lv] for lv in _LEVELS}, "health_active": f["health_active"],
        "devices": f["devices"], "online": f["online"], "connected": f["connected"],
        "online_rate": rate(f["online"], f["devices"]),
        "connection_rate": rate(f["connected"], f["devices"]),
    }  # fmt: skip


async def fetch(conn: Conn, filters: Filters, presence: dict[str, Counts]) -> Overview:
    """Every enterprise in scope and filters, riskiest first. Only the filters given are
    written into the SQL: a prepared `$n IS NULL OR …` would let PostgreSQL settle on a
    generic plan that ran a per-enterprise subquery 10,000 times."""
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
    return Overview(list(await conn.fetch(sql, *args)), presence)
