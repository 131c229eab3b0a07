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
    return list(
        await conn.fetch(
            "SELECT id, ts, enterprise, device, site, type, count, seq, attrs FROM events"
            " WHERE ($1::text[] IS NULL OR enterprise = ANY($1))"
            " AND ($2::text IS NULL OR enterprise = $2) AND ($3::text IS NULL OR site = $3)"
            " AND ($4::text IS NULL OR device = $4) AND ($5::text IS NULL OR type = $5)"
            " AND ($6::timestamptz IS NULL OR ts >= $6) AND ($7::timestamptz IS NULL OR ts < $7)"
            " AND ($8::bigint IS NULL OR id < $8)"
            " ORDER BY id DESC LIMIT $9",
            q.enterprises,
            q.enterprise,
            q.site,
            q.device,
            q.type,
            q.since,
            q.until,
            q.cursor,
            q.limit,
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
