"""Device events as stored (seal person and vehicle counts with their attrs, sparks, …) and
each site's running head count from `person_in` / `person_out` (煤矿井下人数)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yujing.db import Conn


@dataclass(slots=True)
class EventQuery:
    enterprises: list[str] | None
    enterprise: str | None = None
    site: str | None = None
    device: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = None  # events with a smaller id
    limit: int = 100


async def find(conn: Conn, q: EventQuery) -> list[Any]:
    """Newest first. Only the filters given are written into the SQL (a prepared
    `$n IS NULL OR …` may get a generic plan that walks the whole table by id)."""
    args: list[Any] = []
    where = ["true"]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if q.enterprises is not None:
        add("enterprise = ANY(?::text[])", q.enterprises)
    for column, value in (("enterprise", q.enterprise), ("site", q.site),
                          ("device", q.device), ("type", q.type)):  # fmt: skip
        if value is not None:
            add(f"{column} = ?", value)
    if q.since is not None:
        add("ts >= ?", q.since)
    if q.until is not None:
        add("ts < ?", q.until)
    if q.cursor is not None:
        add("id < ?", q.cursor)
    return list(
        await conn.fetch(
            "SELECT id, ts, enterprise, device, site, type, count, seq, attrs FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {int(q.limit)}",
            *args,
        )
    )


async def head_counts(conn: Conn, enterprise: str, since: datetime) -> list[dict[str, Any]]:
    """Per site: people in, out, and in − out since `since` (a count below zero means the
    cameras missed someone going in: it is shown as it is, for an inspector to check)."""
    rows = await conn.fetch(
        "SELECT site, coalesce(sum(count) FILTER (WHERE type = 'person_in'), 0) AS entered,"
        " coalesce(sum(count) FILTER (WHERE type = 'person_out'), 0) AS left_,"
        " max(ts) AS last_at FROM events"
        " WHERE enterprise = $1 AND ts >= $2 AND type IN ('person_in', 'person_out')"
        " GROUP BY site ORDER BY site",
        enterprise, since,
    )  # fmt: skip
    return [
        {
            "site": r["site"],
            "entered": r["entered"],
            "left": r["left_"],
            "present": r["entered"] - r["left_"],
            "last_at": r["last_at"].isoformat(),
        }
        for r in rows
    ]
