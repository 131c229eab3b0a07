"""`/tokens`: an admin issues, lists and revokes tokens for operators, viewers and other
systems. A token's secret is shown once, at creation; afterwards it is known by its id (the
first 16 hex digits of its SHA-256, which is all the server keeps)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from yujing.api.auth import Principal, Role, create_token, digest
from yujing.api.deps import Admin, Pool, Viewer
from yujing.api.problems import Problem
from yujing.api.routes.hazards import actor_of
from yujing.names import IDENTIFIER
from yujing.registry import divisions
from yujing.registry.scope import Scope
from yujing.registry.sectors import SECTORS

router = APIRouter(prefix="/tokens", tags=["tokens"])

ID_LEN = 16
TokenId = Annotated[str, Path(pattern=f"^[0-9a-f]{{{ID_LEN}}}$", description="a token's id")]


class TokenCreate(BaseModel):
    """A scope restricts each dimension given (`["*"]` or absent: unrestricted); an
    enterprise is in scope when it satisfies all of them (yujing/registry/scope.py)."""

    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "supervisor", "operator", "admin"]
    enterprises: list[str] = Field(min_length=1, description='enterprise ids, or ["*"]')
    divisions: list[str] = Field(
        default=["*"], min_length=1, description="GB/T 2260 codes; a city covers its counties"
    )
    sectors: list[str] = Field(default=["*"], min_length=1, description="sector codes")
    parks: list[str] = Field(default=["*"], min_length=1, description="chemical park ids")


class TokenPublic(BaseModel):
    id: str = Field(description="use with DELETE /tokens/{id}; not the secret")
    name: str
    role: str
    enterprises: list[str]
    divisions: list[str]
    sectors: list[str]
    parks: list[str]
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown only now, send as Authorization: Bearer")


class TokenPage(BaseModel):
    items: list[TokenPublic]
    next_cursor: str | None = None


def _scope(row: Any) -> Scope:
    return Scope.of(row["enterprises"], row["divisions"], row["sectors"], row["parks"])


def _public(row: Any) -> TokenPublic:
    return TokenPublic(
        id=row["token_sha256"][:ID_LEN], name=row["name"], role=row["role"],
        created_at=row["created_at"], revoked_at=row["revoked_at"], **_scope(row).public(),
    )  # fmt: skip


def _manages(principal: Principal, row: Any) -> bool:
    """An admin manages the tokens whose scope lies inside its own."""
    return _scope(row).within(principal.jurisdiction)


@router.post("", status_code=201, response_model=TokenCreated)
async def create(body: TokenCreate, principal: Admin, pool: Pool) -> TokenCreated:
    for ent in body.enterprises:
        if ent != "*" and not IDENTIFIER.fullmatch(ent):
            raise Problem(422, "Invalid request", f"{ent!r} is not an enterprise id")
    for code in body.divisions:
        if code != "*" and divisions.get(code) is None:
            raise Problem(422, "Invalid request", f"{code!r} is not a GB/T 2260 division code")
    for sector in body.sectors:
        if sector != "*" and sector not in SECTORS:
            raise Problem(422, "Invalid request", f"unknown sector {sector!r}")
    scope = Scope.of(body.enterprises, body.divisions, body.sectors, body.parks)
    if not scope.within(principal.jurisdiction):
        raise Problem(403, "Forbidden", "you can grant only a scope inside your own")
    token = await create_token(
        pool, body.name, Role[body.role.upper()], body.enterprises, scope=scope
    )
    row = await pool.fetchrow("SELECT * FROM api_tokens WHERE token_sha256 = $1", digest(token))
    return TokenCreated(**_public(row).model_dump(), token=token)


class Me(BaseModel):
    """The caller's own token: what a screen needs to offer only the steps it may take."""

    name: str
    role: str
    tier: str | None = Field(
        description="a supervisor's level, county | city | province (from the division"
        " scope, as the hazard steps read it); null for the other roles"
    )
    enterprises: list[str]
    divisions: list[str]
    sectors: list[str]
    parks: list[str]


@router.get("/me", response_model=Me)
async def me(principal: Viewer) -> Me:
    """Any role: the name, role, level and scope of the token that asks."""
    tier = actor_of(principal).tier
    return Me(
        name=principal.name, role=principal.role.name.lower(),
        tier=tier.word if tier else None,
        **principal.jurisdiction.public(),
    )  # fmt: skip


@router.get("", response_model=TokenPage)
async def list_tokens(
    principal: Admin,
    pool: Pool,
    revoked: Annotated[bool, Query(description="include revoked tokens")] = False,
) -> TokenPage:
    """The tokens inside your scope, never their secrets."""
    rows = await pool.fetch(
        "SELECT * FROM api_tokens WHERE ($1 OR revoked_at IS NULL) ORDER BY created_at, name",
        revoked,
    )
    return TokenPage(items=[_public(r) for r in rows if _manages(principal, r)])


async def _find(conn: asyncpg.pool.PoolConnectionProxy[Any], token_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM api_tokens WHERE left(token_sha256, $2) = $1 FOR UPDATE", token_id, ID_LEN
    )


@router.delete("/{token_id}", status_code=204)
async def revoke(token_id: TokenId, principal: Admin, pool: Pool) -> Response:
    """Revoke a token: from now on it gets 401 "unknown or revoked token"."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _find(conn, token_id)
        if row is None or not _manages(principal, row):
            raise Problem(404, "Not found", f"no token {token_id}")
        if row["revoked_at"] is not None:
            raise Problem(409, "Conflict", f"token {token_id} is already revoked")
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = $1",
            row["token_sha256"],
        )
    return Response(status_code=204)
