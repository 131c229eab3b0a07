"""Hazard records in PostgreSQL; every step a row of `feed_changes` on the alert `seq`.

A step runs in one transaction under the alert store's seq lock, so hazard changes and
alert transitions share one commit-ordered `seq`: the outbox relay, SSE replay and the
Kafka feed carry both in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from yujing.alerts.store import NOTIFY_CHANNEL, SEQ_LOCK, NotFound, StoredChange
from yujing.db import Conn
from yujing.hazards import lifecycle
from yujing.hazards.jurisdiction import Actor
from yujing.hazards.model import COLUMNS, Hazard, Step
from yujing.registry.divisions import prefix
from yujing.registry.store import placement

RECORD = "hazard"

# A step: given the locked hazard and the transaction's connection, the hazard after it.
Action = Callable[[Hazard, Conn], Awaitable[tuple[Hazard, Step]]]

_UPSERT = (
    f"INSERT INTO hazards ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id")
)


@dataclass(slots=True)
class HazardQuery:
    enterprises: list[str] | None = None  # None: every enterprise
    states: list[str] | None = None
    grade: str | None = None
    source: str | None = None
    category: str | None = None
    site: str | None = None
    device: str | None = None
    overdue: bool | None = None
    listed: bool | None = None
    alert_id: str | None = None
    division: str | None = None  # GB/T 2260; a city or province covers the divisions below
    sector: str | None = None
    since: datetime | None = None  # on reported_at
    until: datetime | None = None
    cursor: int | None = None
    limit: int = 100

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["true"]
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            clauses.append(sql.replace("?", f"${len(args)}"))

        for sql, value in (
            ("enterprise = ANY(?::text[])", self.enterprises),
            ("state = ANY(?::text[])", self.states or None),
            ("grade = ?", self.grade), ("source = ?", self.source),
            ("category = ?", self.category), ("site = ?", self.site),
            ("device = ?", self.device), ("overdue = ?", self.overdue),
            ("(listed_tier IS NOT NULL) = ?", self.listed), ("? = ANY(alert_ids)", self.alert_id),
            ("division LIKE ?", None if self.division is None else prefix(self.division) + "%"),
            ("sector = ?", self.sector),
            ("reported_at >= ?", self.since), ("reported_at < ?", self.until),
            ("seq < ?", self.cursor),
        ):  # fmt: skip
            if value is not None:
                add(sql, value)
        return " AND ".join(clauses), args


class HazardStore:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def report(self, r: lifecycle.Report, actor: Actor) -> StoredChange:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
            hazard, step = lifecycle.report(r, actor, self._clock())
            return await record(conn, hazard, step, actor, _describe(hazard), self._clock())

    async def step(
        self, hazard_id: str, scope: Callable[[str], bool], actor: Actor, action: Action,
        note: str | None = None,
    ) -> StoredChange:  # fmt: skip
        """Take one step on a hazard the caller may see (else NotFound)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
            row = await conn.fetchrow("SELECT * FROM hazards WHERE id = $1 FOR UPDATE", hazard_id)
            if row is None or not scope(row["enterprise"]):
                raise NotFound(hazard_id)
            hazard, step = await action(Hazard.from_row(row), conn)
            return await record(conn, hazard, step, actor, note, self._clock())

    async def get(self, hazard_id: str) -> tuple[Hazard, list[StoredChange]]:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM hazards WHERE id = $1", hazard_id)
            if row is None:
                raise NotFound(hazard_id)
            history = await conn.fetch(
                "SELECT seq, record_id AS alert_id, transition, at, actor, note, data AS alert,"
                " notify, record FROM feed_changes WHERE record = $1 AND record_id = $2"
                " ORDER BY seq",
                RECORD, hazard_id,
            )  # fmt: skip
        return Hazard.from_row(row), [StoredChange.from_row(r) for r in history]

    async def find(self, query: HazardQuery) -> list[Hazard]:
        """Newest change first; `query.cursor` is the `seq` of the last hazard already seen."""
        where, args = query.where()
        args.append(query.limit)
        sql = f"SELECT * FROM hazards WHERE {where} ORDER BY seq DESC LIMIT ${len(args)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [Hazard.from_row(r) for r in rows]


async def record(
    conn: Conn, hazard: Hazard, step: Step, actor: Actor, note: str | None, at: datetime
) -> StoredChange:
    """Store the hazard after `step` and its change on the feed; the caller holds SEQ_LOCK."""
    if step in (Step.REPORTED, Step.PROPOSED):
        division, sector, installation = await placement(conn, hazard.enterprise, hazard.device)
        hazard.division, hazard.sector = division, sector
        hazard.installation = hazard.installation or installation
    hazard.seq = await conn.fetchval("SELECT nextval('alert_seq')")
    await conn.execute(_UPSERT, *(_column(hazard, c) for c in COLUMNS))
    public = hazard.public()
    await conn.execute(
        "INSERT INTO feed_changes (seq, record, record_id, transition, at, actor, note, data)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        hazard.seq, RECORD, hazard.id, step.value, at, actor.name, note, public,
    )  # fmt: skip
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(hazard.seq))
    return StoredChange(
        hazard.seq, hazard.id, step.value, at, actor.name, note, public, True, RECORD
    )


def _column(hazard: Hazard, name: str) -> Any:
    value = getattr(hazard, name)
    if name in ("listed_tier", "escalated_tier"):
        return None if value is None else int(value)
    return value.value if hasattr(value, "value") else value


def _describe(h: Hazard) -> str:
    return f"{h.grade.value} {h.category}: {h.description}"[:500]
