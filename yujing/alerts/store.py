"""The alert table and its history in PostgreSQL.

Every change runs in one transaction that takes a global advisory lock, so the global
`seq` is assigned in commit order: a reader that has seen seq N has seen everything below
it, which is what SSE `Last-Event-ID` replay and the outbox relay rely on. Engine changes
are applied idempotently by their transition id (`source_id`).

Each change also gets its marks (suppressed, chattering, unreliable: marks.py) and a
`notify` decision, both stored with it: the database and `yj.alerts` keep every change, the
feeds for people (MQTT, webhooks, escalation) skip those with `notify` false.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from yujing.alerts import lifecycle, marks
from yujing.alerts.model import COLUMNS, Alert, Change
from yujing.alerts.settings import AlertSettings
from yujing.db import Conn
from yujing.levels import Level
from yujing.registry import divisions
from yujing.registry.store import placement
from yujing.rules.transition import Transition

SEQ_LOCK = 0x796A_0002
NOTIFY_CHANNEL = "yj_alert_transition"


class NotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredChange:
    """One row of an alert's history: what changed, who did it, and the alert after it."""

    seq: int
    alert_id: str
    transition: str
    at: datetime
    actor: str
    note: str | None
    alert: dict[str, Any]
    notify: bool = True  # pushed to people (MQTT, webhooks)? See marks.py.

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "transition": self.transition,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "note": self.note,
            "notify": self.notify,
            "alert": self.alert,
        }

    @classmethod
    def from_row(cls, row: Any) -> StoredChange:
        return cls(
            row["seq"], row["alert_id"], row["transition"], row["at"], row["actor"],
            row["note"], row["alert"], row["notify"],
        )  # fmt: skip


@dataclass(slots=True)
class AlertQuery:
    states: list[str] | None = None
    min_level: Level = Level.BLUE
    levels: list[Level] | None = None  # exact levels, on top of min_level
    enterprises: list[str] | None = None  # None: every enterprise the caller may see
    site: str | None = None
    device: str | None = None
    division: str | None = None  # GB/T 2260 code: alerts raised anywhere below it
    sector: str | None = None
    since: datetime | None = None  # on started_at
    until: datetime | None = None
    cursor: int | None = None
    limit: int = 100

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = ["level >= $1"], [int(self.min_level)]

        def add(sql: str, value: Any) -> None:
            args.append(value)
            clauses.append(sql.replace("?", f"${len(args)}"))

        if self.states:
            add("state = ANY(?::text[])", self.states)
        if self.levels:
            add("level = ANY(?::smallint[])", [int(x) for x in self.levels])
        if self.enterprises is not None:
            add("enterprise = ANY(?::text[])", self.enterprises)
        if self.site:
            add("site = ?", self.site)
        if self.device:
            add("device = ?", self.device)
        if self.division:
            add("division LIKE ?", divisions.prefix(self.division) + "%")
        if self.sector:
            add("sector = ?", self.sector)
        if self.since:
            add("started_at >= ?", self.since)
        if self.until:
            add("started_at < ?", self.until)
        if self.cursor is not None:
            add("seq < ?", self.cursor)
        return " AND ".join(clauses), args


_INSERT_ALERT = (
    f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id")
)


class AlertStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime],
        settings: AlertSettings | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._settings = settings or AlertSettings()

    def now(self) -> datetime:
        """The injected clock, for the API routes that record operator actions."""
        return self._clock()

    @property
    def settings(self) -> AlertSettings:
        return self._settings

    async def apply(self, transitions: Sequence[Transition]) -> list[StoredChange]:
        """Apply engine level changes; returns the changes made (replays make none)."""
        out: list[StoredChange] = []
        async with self._pool.acquire() as conn:
            for t in transitions:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
                    seen = await conn.fetchval(
                        "SELECT 1 FROM alert_transitions WHERE source_id = $1", t.id
                    )
                    if seen:
                        continue
                    row = await conn.fetchrow(
                        "SELECT * FROM alerts WHERE key = $1 AND state <> 'closed' FOR UPDATE",
                        t.key,
                    )
                    result = lifecycle.on_level_change(Alert.from_row(row) if row else None, t)
                    if result is None:
                        continue
                    alert, change = result
                    out.append(
                        await self._record(
                            conn, alert, change, "engine", None, t.id,
                            Alert.from_row(row) if row else None,
                        )
                    )  # fmt: skip
        return out

    async def acknowledge(
        self, alert_id: str, who: str, note: str | None, scope: Callable[[str], bool]
    ) -> StoredChange:
        return await self._operate(
            alert_id, scope, lambda a: lifecycle.acknowledge(a, who, self._clock()), who, note
        )

    async def close(
        self, alert_id: str, who: str, disposal: str, scope: Callable[[str], bool]
    ) -> StoredChange:
        return await self._operate(
            alert_id, scope, lambda a: lifecycle.close(a, who, disposal, self._clock()), who,
            disposal,
        )  # fmt: skip

    async def _operate(
        self,
        alert_id: str,
        scope: Callable[[str], bool],
        action: Callable[[Alert], tuple[Alert, Change]],
        who: str,
        note: str | None,
    ) -> StoredChange:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK)
            row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
            if row is None or not scope(row["enterprise"]):
                raise NotFound(alert_id)
            before = Alert.from_row(row)
            alert, change = action(before)
            return await self._record(conn, alert, change, who, note, None, before)

    async def _record(
        self,
        conn: Conn,
        alert: Alert,
        change: Change,
        actor: str,
        note: str | None,
        source_id: str | None,
        before: Alert | None,
    ) -> StoredChange:
        at = self._clock() if source_id is None else alert.changed_at
        window = timedelta(seconds=self._settings.flap_window_s)
        ctx = await marks.context(conn, alert, change, at, window)
        notify = marks.apply_marks(alert, before, ctx, self._settings.flap_max_reopens)
        if before is None and alert.division is None:
            place = await placement(conn, alert.enterprise, alert.device)
            alert.division, alert.sector, alert.installation = place
        alert.seq = await conn.fetchval("SELECT nextval('alert_seq')")
        await conn.execute(_INSERT_ALERT, *(_column(alert, c) for c in COLUMNS))
        public = alert.public()
        await conn.execute(
            "INSERT INTO alert_transitions (seq, alert_id, transition, at, actor, source_id,"
            " from_state, to_state, from_level, to_level, note, alert, notify)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            alert.seq, alert.id, change.value, at, actor, source_id,
            before.state.value if before else None, alert.state.value,
            int(before.level) if before else None, int(alert.level), note, public, notify,
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(alert.seq))
        return StoredChange(alert.seq, alert.id, change.value, at, actor, note, public, notify)

    async def get(self, alert_id: str) -> tuple[Alert, list[StoredChange]]:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1", alert_id)
            if row is None:
                raise NotFound(alert_id)
            history = await conn.fetch(
                "SELECT * FROM alert_transitions WHERE alert_id = $1 ORDER BY seq", alert_id
            )
        return Alert.from_row(row), [StoredChange.from_row(r) for r in history]

    async def find(self, query: AlertQuery) -> list[Alert]:
        """Newest change first; `query.cursor` is the `seq` of the last alert already seen."""
        where, args = query.where()
        args.append(query.limit)
        sql = f"SELECT * FROM alerts WHERE {where} ORDER BY seq DESC LIMIT ${len(args)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [Alert.from_row(r) for r in rows]

    async def changes_since(self, seq: int, limit: int = 500) -> list[StoredChange]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM alert_transitions WHERE seq > $1 ORDER BY seq LIMIT $2", seq, limit
            )
        return [StoredChange.from_row(r) for r in rows]

    async def latest_changes(
        self, enterprises: list[str] | None, min_level: Level, limit: int
    ) -> list[StoredChange]:
        """Newest first, for feeds that people poll (the CAP Atom feed)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM alert_transitions"
                " WHERE ($1::text[] IS NULL OR alert->>'enterprise' = ANY($1::text[]))"
                " AND to_level >= $2 ORDER BY seq DESC LIMIT $3",
                enterprises, int(min_level), limit,
            )  # fmt: skip
        return [StoredChange.from_row(r) for r in rows]

    async def originals(self, alert_ids: Sequence[str]) -> dict[str, StoredChange]:
        """The first stored change (`raised`) of each alert."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT ON (alert_id) * FROM alert_transitions"
                " WHERE alert_id = ANY($1::text[]) ORDER BY alert_id, seq",
                list(alert_ids),
            )
        return {r["alert_id"]: StoredChange.from_row(r) for r in rows}

    async def last_seq(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_transitions"))


def _column(alert: Alert, name: str) -> Any:
    value = getattr(alert, name)
    return int(value) if isinstance(value, Level) else value
