"""`/tokens`: an admin issues tokens for operators, viewers and other systems."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from yujing.api.auth import Role, create_token
from yujing.api.deps import Admin, Pool
from yujing.api.problems import Problem
from yujing.names import IDENTIFIER
from yujing.registry import divisions
from yujing.registry.scope import Scope
from yujing.registry.sectors import SECTORS

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    """A scope restricts each dimension given (`["*"]` or absent: unrestricted); an
    enterprise is in scope when it satisfies all of them (yujing/registry/scope.py)."""

    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "admin"]
    enterprises: list[str] = Field(min_length=1, description='enterprise ids, or ["*"]')
    divisions: list[str] = Field(
        default=["*"], min_length=1, description="GB/T 2260 codes; a city covers its counties"
    )
    sectors: list[str] = Field(default=["*"], min_length=1, description="sector codes")
    parks: list[str] = Field(default=["*"], min_length=1, description="chemical park ids")


class TokenCreated(BaseModel):
    token: str
    name: str
    role: str
    enterprises: list[str]
    divisions: list[str]
    sectors: list[str]
    parks: list[str]


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
    return TokenCreated(token=token, name=body.name, role=body.role, **scope.public())
