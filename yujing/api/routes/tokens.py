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
from yujing.api.deps import Admin, Pool
from yujing.api.problems import Problem
from yujing.names import IDENTIFIER

router = APIRouter(prefix="/tokens", tags=["tokens"])

ID_LEN = 16
TokenId = Annotated[str, Path(pattern=f"^[0-9a-f]{{{ID_LEN}}}$", description="a token's id")]


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "admin"]
    enterprises: list[str] = Field(min_length=1, description='enterprise ids, or ["*"]')


class TokenPublic(BaseModel):
    id: str = Field(description="use with DELETE /tokens/{id}; not the secret")
    name: str
    role: str
    enterprises: list[str]
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown only now, send as Authorization: Bearer")


class TokenPage(BaseModel):
    items: list[TokenPublic]
    next_cursor: str | None = None


def _public(row: Any) -> TokenPublic:
    return TokenPublic(
        id=row["token_sha256"][:ID_LEN], name=row["name"], role=row["role"],
        enterprises=list(row["enterprises"]), created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )  # fmt: skip


def _manages(principal: Principal, enterprises: list[str]) -> bool:
    """A scoped admin manages only tokens whose every enterprise is in its scope."""
    if principal.enterprises is None:
        return True
    return "*" not in enterprises and set(enterprises) <= principal.enterprises


@router.post("", status_code=201, response_model=TokenCreated)
async def create(body: TokenCreate, principal: Admin, pool: Pool) -> TokenCreated:
    for ent in body.enterprises:
        if ent != "*" and not IDENTIFIER.fullmatch(ent):
            raise Problem(422, "Invalid request", f"{ent!r} is not an enterprise id")
        if not principal.can_see(ent) if ent != "*" else principal.enterprises is not None:
            raise Problem(403, "Forbidden", f"you cannot grant {ent!r}")
    token = await create_token(pool, body.name, Role[body.role.upper()], body.enterprises)
    row = await pool.fetchrow("SELECT * FROM api_tokens WHERE token_sha256 = $1", digest(token))
    return TokenCreated(**_public(row).model_dump(), token=token)


@router.get("", response_model=TokenPage)
async def list_tokens(
    principal: Admin,
    pool: Pool,
    revoked: Annotated[bool, Query(description="include revoked tokens")] = False,
) -> TokenPage:
    rows = await pool.fetch(
        "SELECT * FROM api_tokens WHERE ($1 OR revoked_at IS NULL) ORDER BY created_at, name",
        revoked,
    )
    return TokenPage(
        items=[_public(r) for r in rows if _manages(principal, list(r["enterprises"]))]
    )


async def _find(conn: asyncpg.pool.PoolConnectionProxy[Any], token_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM api_tokens WHERE left(token_sha256, $2) = $1 FOR UPDATE", token_id, ID_LEN
    )


@router.delete("/{token_id}", status_code=204)
async def revoke(token_id: TokenId, principal: Admin, pool: Pool) -> Response:
    """Revoke a token: from now on it gets 401 "unknown or revoked token"."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _find(conn, token_id)
        if row is None or not _manages(principal, list(row["enterprises"])):
            raise Problem(404, "Not found", f"no token {token_id}")
        if row["revoked_at"] is not None:
            raise Problem(409, "Conflict", f"token {token_id} is already revoked")
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = $1",
            row["token_sha256"],
        )
    return Response(status_code=204)
