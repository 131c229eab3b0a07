"""The register in PostgreSQL: enterprises with their history, parks, device presence, and
where an alert belongs when it is raised."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yujing.db import Conn
from yujing.registry import divisions
from yujing.registry.model import EnterpriseRecord
from yujing.registry.sectors import SECTORS


class UnknownPark(ValueError):
    pass


@dataclass(slots=True)
class EnterpriseQuery:
    enterprises: list[str] | None = None  # the caller's scope; None = all
    division: str | None = None  # covers: a city code lists its counties' enterprises
    sector: str | None = None
    park: str | None = None
    state: str | None = None
    supervision_class: str | None = None
    name: str | None = None  # substring of the name
    cursor: str | None = None  # ids after this one
    limit: int = 100

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["true"]
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            clauses.append(sql.replace("?", f"${len(args)}"))

        if self.enterprises is not None:
            add("id = ANY(?::text[])", self.enterprises)
        if self.division:
            add("division LIKE ?", divisions.prefix(self.division) + "%")
        if self.sector:
            add("? = ANY(sectors)", self.sector)
        if self.park:
            add("park = ?", self.park)
        if self.state:
            add("state = ?", self.state)
        if self.supervision_class:
            add("supervision_class = ?", self.supervision_class)
        if self.name:
            add("strpos(name, ?) > 0", self.name)
        if self.cursor:
            add("id > ?", self.cursor)
        return " AND ".join(clauses), args


async def find(conn: Conn, query: EnterpriseQuery) -> list[Any]:
    where, args = query.where()
    return list(
        await conn.fetch(
            f"SELECT * FROM enterprises WHERE {where} ORDER BY id LIMIT {int(query.limit)}", *args
        )
    )


async def get(conn: Conn, enterprise: str) -> Any:
    return await conn.fetchrow("SELECT * FROM enterprises WHERE id = $1", enterprise)


async def installation_devices(conn: Conn, enterprise: str) -> dict[str, list[str]]:
    """The devices that watch each installation: those tagged `installation=<id>`."""
    return (await installation_devices_of(conn, [enterprise])).get(enterprise, {})


async def installation_devices_of(
    conn: Conn, enterprises: list[str]
) -> dict[str, dict[str, list[str]]]:
    """The same for a page of enterprises, in one query."""
    rows = await conn.fetch(
        "SELECT enterprise, tags->>'installation' AS inst, device FROM devices"
        " WHERE enterprise = ANY($1::text[]) AND tags ? 'installation' ORDER BY device",
        enterprises,
    )
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[r["enterprise"]][r["inst"]].append(r["device"])
    return {e: dict(v) for e, v in out.items()}


async def save(
    conn: Conn, enterprise: str, record: EnterpriseRecord, who: str, at: datetime
) -> tuple[Any, Any, list[str]]:
    """Create or replace; returns (row before, row after, devices whose tags changed)."""
    before = await conn.fetchrow("SELECT * FROM enterprises WHERE id = $1 FOR UPDATE", enterprise)
    if record.park is not None and not await conn.fetchval(
        "SELECT 1 FROM parks WHERE id = $1", record.park
    ):
        raise UnknownPark(record.park)
    data = record.model_dump(mode="json")
    loc = data.pop("location") or {"lon": None, "lat": None}
    installations = [{k: v for k, v in i.items() if k != "devices"} for i in data["installations"]]
    row = await conn.fetchrow(
        "INSERT INTO enterprises (id, name, uscc, division, park, sectors, supervision_class,"
        " lon, lat, address, contacts, installations, state, state_since, state_document,"
        " created_at, updated_at, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, uscc = EXCLUDED.uscc,"
        " division = EXCLUDED.division, park = EXCLUDED.park, sectors = EXCLUDED.sectors,"
        " supervision_class = EXCLUDED.supervision_class, lon = EXCLUDED.lon, lat = EXCLUDED.lat,"
        " address = EXCLUDED.address, contacts = EXCLUDED.contacts,"
        " installations = EXCLUDED.installations, state = EXCLUDED.state,"
        " state_since = EXCLUDED.state_since, state_document = EXCLUDED.state_document,"
        " updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by RETURNING *",
        enterprise, record.name, record.uscc, record.division, record.park, record.sectors,
        record.supervision_class, loc["lon"], loc["lat"], record.address, data["contacts"],
        installations, record.state, record.state_since, record.state_document, at, who,
    )  # fmt: skip
    assert row is not None
    if before is None or before["state"] != row["state"]:
        await _history(
            conn, enterprise, "state", before["state"] if before else None, row["state"], at, who,
            record.state_document,
        )  # fmt: skip
    changed = await _tag_installations(conn, enterprise, record, who)
    return before, row, changed


async def _tag_installations(
    conn: Conn, enterprise: str, record: EnterpriseRecord, who: str
) -> list[str]:
    """Make the `installation` tag of the enterprise's devices say what the record lists: the
    tag is the one truth (rules group by it, alerts record it)."""
    wanted = {d: i.id for i in record.installations for d in i.devices}
    rows = await conn.fetch(
        "SELECT device, tags->>'installation' AS inst FROM devices"
        " WHERE enterprise = $1 AND (tags ? 'installation' OR device = ANY($2::text[]))",
        enterprise, list(wanted),
    )  # fmt: skip
    known = {r["device"]: r["inst"] for r in rows}
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise ValueError(f"installations name devices that are not registered: {missing}")
    changed = [d for d, inst in known.items() if wanted.get(d) != inst]
    for device in changed:
        inst = wanted.get(device)
        await conn.execute(
            "UPDATE devices SET tags = CASE WHEN $3::text IS NULL THEN tags - 'installation'"
            " ELSE tags || jsonb_build_object('installation', $3::text) END,"
            " rev = rev + 1, updated_at = now(), updated_by = $4"
            " WHERE enterprise = $1 AND device = $2",
            enterprise, device, inst, who,
        )  # fmt: skip
    return changed


async def set_risk_grade(
    conn: Conn, enterprise: str, grade: int | None, reason: str, who: str, at: datetime
) -> Any:
    before = await conn.fetchrow("SELECT * FROM enterprises WHERE id = $1 FOR UPDATE", enterprise)
    if before is None:
        return None
    row = await conn.fetchrow(
        "UPDATE enterprises SET risk_grade = $2, risk_grade_at = $3, risk_grade_by = $4,"
        " risk_grade_reason = $5 WHERE id = $1 RETURNING *",
        enterprise, grade, at, who, reason,
    )  # fmt: skip
    old = before["risk_grade"]
    await _history(
        conn, enterprise, "risk_grade", None if old is None else str(old),
        None if grade is None else str(grade), at, who, reason,
    )  # fmt: skip
    return row


async def _history(
    conn: Conn, enterprise: str, field: str, old: str | None, new: str | None, at: datetime,
    who: str, note: str,
) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO enterprise_history (enterprise, field, old_value, new_value, at, actor, note)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        enterprise, field, old, new, at, who, note,
    )  # fmt: skip


async def history(conn: Conn, enterprise: str) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT * FROM enterprise_history WHERE enterprise = $1 ORDER BY id", enterprise
        )
    )


async def placement(
    conn: Conn, enterprise: str, device: str | None
) -> tuple[str | None, str | None, str | None]:
    """Division, sector and installation of a new alert: the device's `sector` tag when it
    names a sector of the vocabulary (packs also use coarser tags such as `coal`), else the
    enterprise's main (first) sector; the device's `installation` tag."""
    row = await conn.fetchrow(
        "SELECT e.division, e.sectors[1] AS main_sector, d.tags->>'sector' AS tagged,"
        " d.tags->>'installation' AS installation"
        " FROM (SELECT 1) one LEFT JOIN enterprises e ON e.id = $1"
        " LEFT JOIN devices d ON d.enterprise = $1 AND d.device = $2",
        enterprise, device,
    )  # fmt: skip
    assert row is not None
    sector = row["tagged"] if row["tagged"] in SECTORS else row["main_sector"]
    return row["division"], sector, row["installation"]


async def mark_seen(conn: Conn, seen: list[tuple[str, str, datetime]], arrived: datetime) -> None:
    """Presence of devices that reported: (enterprise, device, newest event time) each."""
    if not seen:
        return
    await conn.execute(
        "INSERT INTO device_presence (enterprise, device, first_seen_at, last_seen_at, last_ts)"
        " SELECT e, d, $4, $4, t"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(e, d, t)"
        " ON CONFLICT (enterprise, device) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,"
        " last_ts = greatest(device_presence.last_ts, EXCLUDED.last_ts)",
        [s[0] for s in seen], [s[1] for s in seen], [s[2] for s in seen], arrived,
    )  # fmt: skip


async def upsert_devices(conn: Conn, records: list[dict[str, Any]], who: str) -> int:
    """Create or replace many device records in one statement each for sites and devices
    (bulk registration: a province's 100,000 devices in seconds, not minutes). Each record:
    enterprise, device, kind, site, tags, points."""
    if not records:
        return 0
    cols = {k: [r[k] for r in records] for k in ("enterprise", "device", "kind", "site")}
    tags = [json.dumps(r.get("tags", {})) for r in records]
    points = [json.dumps(r.get("points", {})) for r in records]
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sites (enterprise, site, updated_by)"
            " SELECT DISTINCT e, s, $3 FROM unnest($1::text[], $2::text[]) AS u(e, s)"
            " ON CONFLICT (enterprise, site) DO NOTHING",
            cols["enterprise"], cols["site"], who,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO devices (enterprise, device, kind, site, tags, points, updated_by)"
            " SELECT e, d, k, s, t::jsonb, p::jsonb, $7"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
            " AS u(e, d, k, s, t, p)"
            " ON CONFLICT (enterprise, device) DO UPDATE SET kind = EXCLUDED.kind,"
            " site = EXCLUDED.site, tags = EXCLUDED.tags, points = EXCLUDED.points,"
            " auto_registered = false, rev = devices.rev + 1, updated_at = now(),"
            " updated_by = EXCLUDED.updated_by",
            cols["enterprise"], cols["device"], cols["kind"], cols["site"], tags, points, who,
        )  # fmt: skip
    return len(records)
