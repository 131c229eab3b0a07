"""Bearer tokens with a role (viewer < operator < admin) and a jurisdiction scope: divisions,
sectors, parks and enterprises (yujing/registry/scope.py), resolved at each request into the
enterprise ids the caller may see."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import IntEnum

import asyncpg

from yujing.registry.scope import GLOBAL, Scope, resolve


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    enterprises: frozenset[str] | None  # what the scope resolves to now; None: every one
    jurisdiction: Scope = GLOBAL  # the scope as granted

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
            "SELECT name, role, enterprises, divisions, sectors, parks FROM api_tokens"
            " WHERE token_sha256 = $1 AND revoked_at IS NULL",
            digest(token),
        )
        if row is None:
            return None
        scope = Scope.of(row["enterprises"], row["divisions"], row["sectors"], row["parks"])
        enterprises = await resolve(conn, scope)
    return Principal(row["name"], Role[row["role"].upper()], enterprises, scope)


async def create_token(
    pool: asyncpg.Pool,
    name: str,
    role: Role,
    enterprises: list[str],
    token: str | None = None,
    scope: Scope | None = None,
) -> str:
    """`enterprises` alone is the old enterprise-list scope; `scope` gives every dimension."""
    token = token or "yj_" + secrets.token_urlsafe(32)
    dims = (scope or Scope.of(enterprises)).public()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO api_tokens (token_sha256, name, role, enterprises, divisions, sectors,"
            " parks) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (token_sha256) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role,"
            " enterprises = EXCLUDED.enterprises, divisions = EXCLUDED.divisions,"
            " sectors = EXCLUDED.sectors, parks = EXCLUDED.parks, revoked_at = NULL",
            digest(token), name, role.name.lower(), dims["enterprises"], dims["divisions"],
            dims["sectors"], dims["parks"],
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
