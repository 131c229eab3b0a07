"""The rule store (PostgreSQL): the current rules, every version with who and when, and
the first-start load of the default packs. Versions count per rule id and never go back:
a deletion is a version too, and a rule created again after deletion continues the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from yujing.rules.model import Rule, parse_rule, rule_json
from yujing.rules.packs import default_rules

LOAD_LOCK = 0x796A_0002  # advisory lock: one process loads the packs


class RuleNotFound(LookupError):
    pass


class RuleExists(ValueError):
    pass


class VersionConflict(ValueError):
    def __init__(self, current: int) -> None:
        super().__init__(f"the rule is at version {current}")
        self.current = current


@dataclass(frozen=True)
class StoredRule:
    rule: Rule
    version: int
    changed_at: datetime
    changed_by: str


def _stored(row: asyncpg.Record) -> StoredRule:
    return StoredRule(parse_rule(row["body"]), row["version"], row["changed_at"], row["changed_by"])


async def ensure_default_rules(pool: asyncpg.Pool) -> None:
    """Load the default packs when no rule was ever stored (first start only: a rule an
    operator deleted stays deleted)."""
    rules = default_rules()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOAD_LOCK)
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rule_versions)"):
            return
        now = datetime.now(UTC)
        for rule in rules:
            await _write(conn, rule, 1, now, "system:default-packs")


async def _write(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    rule: Rule,
    version: int,
    now: datetime,
    who: str,
) -> None:
    body = rule_json(rule)
    await conn.execute(
        """INSERT INTO rules (id, version, kind, body, enabled, deleted, changed_at, changed_by)
           VALUES ($1, $2, $3, $4, $5, false, $6, $7)
           ON CONFLICT (id) DO UPDATE SET version = $2, kind = $3, body = $4, enabled = $5,
               deleted = false, changed_at = $6, changed_by = $7""",
        rule.id,
        version,
        rule.kind,
        body,
        rule.enabled,
        now,
        who,
    )
    await conn.execute(
        "INSERT INTO rule_versions (id, version, body, deleted, changed_at, changed_by)"
        " VALUES ($1, $2, $3, false, $4, $5)",
        rule.id,
        version,
        body,
        now,
        who,
    )


async def load_rules(pool: asyncpg.Pool) -> list[tuple[Rule, int]]:
    """The current enabled rules with their versions, as engines run them."""
    rows = await pool.fetch(
        "SELECT body, version FROM rules WHERE NOT deleted AND enabled ORDER BY id"
    )
    return [(parse_rule(r["body"]), r["version"]) for r in rows]


async def list_rules(pool: asyncpg.Pool) -> list[StoredRule]:
    rows = await pool.fetch(
        "SELECT body, version, changed_at, changed_by FROM rules WHERE NOT deleted ORDER BY id"
    )
    return [_stored(r) for r in rows]


async def get_rule(pool: asyncpg.Pool, rule_id: str) -> StoredRule:
    row = await pool.fetchrow(
        "SELECT body, version, changed_at, changed_by FROM rules WHERE id = $1 AND NOT deleted",
        rule_id,
    )
    if row is None:
        raise RuleNotFound(rule_id)
    return _stored(row)


async def create_rule(pool: asyncpg.Pool, rule: Rule, who: str) -> StoredRule:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT version, deleted FROM rules WHERE id = $1 FOR UPDATE", rule.id
        )
        if row is not None and not row["deleted"]:
            raise RuleExists(rule.id)
        version = 1 if row is None else row["version"] + 1
        now = datetime.now(UTC)
        await _write(conn, rule, version, now, who)
    return StoredRule(rule, version, now, who)


async def update_rule(
    pool: asyncpg.Pool, rule: Rule, who: str, *, expected_version: int | None = None
) -> StoredRule:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT version, deleted FROM rules WHERE id = $1 FOR UPDATE", rule.id
        )
        if row is None or row["deleted"]:
            raise RuleNotFound(rule.id)
        if expected_version is not None and expected_version != row["version"]:
            raise VersionConflict(row["version"])
        version = row["version"] + 1
        now = datetime.now(UTC)
        await _write(conn, rule, version, now, who)
    return StoredRule(rule, version, now, who)


async def delete_rule(pool: asyncpg.Pool, rule_id: str, who: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT version, deleted FROM rules WHERE id = $1 FOR UPDATE", rule_id
        )
        if row is None or row["deleted"]:
            raise RuleNotFound(rule_id)
        version = row["version"] + 1
        now = datetime.now(UTC)
        await conn.execute(
            "UPDATE rules SET version = $2, deleted = true, changed_at = $3, changed_by = $4"
            " WHERE id = $1",
            rule_id,
            version,
            now,
            who,
        )
        await conn.execute(
            "INSERT INTO rule_versions (id, version, body, deleted, changed_at, changed_by)"
            " VALUES ($1, $2, NULL, true, $3, $4)",
            rule_id,
            version,
            now,
            who,
        )
    return int(version)


async def rule_versions(pool: asyncpg.Pool, rule_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT version, body, deleted, changed_at, changed_by FROM rule_versions"
        " WHERE id = $1 ORDER BY version",
        rule_id,
    )
    if not rows:
        raise RuleNotFound(rule_id)
    return [dict(r) for r in rows]


async def rule_at_version(pool: asyncpg.Pool, rule_id: str, version: int) -> Rule | None:
    body = await pool.fetchval(
        "SELECT body FROM rule_versions WHERE id = $1 AND version = $2", rule_id, version
    )
    return None if body is None else parse_rule(body)
