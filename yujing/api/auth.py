"""Bearer tokens with a role (viewer < supervisor < operator < admin) and an enterprise scope.

`supervisor` (监管部门) reads what its scope covers and takes the review steps of hazards
(sign-off, send back, listed supervision); it does not act on alerts or configuration. The
order only says who may do the generic things (read, operate, administer); hazard steps
check the role itself (yujing/hazards/lifecycle.py), so an operator's higher rank never
lets them sign off."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import IntEnum

import asyncpg


class Role(IntEnum):
    VIEWER = 1
    SUPERVISOR = 2
    OPERATOR = 3
    ADMIN = 4


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    enterprises: frozenset[str] | None  # None: every enterprise

    def can_see(self, enterprise: str) -> bool:
        return self.enterprises is None or enterprise in self.enterprises

    def scope(self, wanted: str | None) -> list[str] | None:
        """The enterprises a list query may return: None = all, [] = none."""
        if wanted is not None:
            return [wanted] if self.can_see(wanted) else []
        return None if self.enterprises is None else sorted(self.enterprises)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def lookup(pool: asyncpg.Pool, token: str) -> Principal | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT name, role, enterprises FROM api_tokens"
            " WHERE token_sha256 = $1 AND revoked_at IS NULL",
            digest(token),
        )
    if row is None:
        return None
    ents = list(row["enterprises"])
    return Principal(
        row["name"], Role[row["role"].upper()], None if "*" in ents else frozenset(ents)
    )


async def create_token(
    pool: asyncpg.Pool, name: str, role: Role, enterprises: list[str], token: str | None = None
) -> str:
    token = token or "yj_" + secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO api_tokens (token_sha256, name, role, enterprises) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (token_sha256) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role,"
            " enterprises = EXCLUDED.enterprises, revoked_at = NULL",
            digest(token), name, role.name.lower(), enterprises,
        )  # fmt: skip
    return token


async def ensure_admin(pool: asyncpg.Pool, configured: str) -> str | None:
    """The first admin token: `YJ_ADMIN_TOKEN` if set; else, if there is no admin yet, a new
    one, returned so the caller prints it once. None when an admin already exists."""
    if configured:
        await create_token(pool, "admin", Role.ADMIN, ["*"], configured)
        return None
    async with pool.acquire() as conn:
        if await conn.fetchval(
            "SELECT 1 FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL"
        ):
            return None
    return await create_token(pool, "admin", Role.ADMIN, ["*"])
