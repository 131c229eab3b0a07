"""`/tokens`: an admin issues tokens for operators, viewers and other systems."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from yujing.api.auth import Role, create_token
from yujing.api.deps import Admin, Pool
from yujing.api.problems import Problem
from yujing.names import IDENTIFIER

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "supervisor", "operator", "admin"]
    enterprises: list[str] = Field(min_length=1, description='enterprise ids, or ["*"]')


class TokenCreated(BaseModel):
    token: str
    name: str
    role: str
    enterprises: list[str]


@router.post("", status_code=201, response_model=TokenCreated)
async def create(body: TokenCreate, principal: Admin, pool: Pool) -> TokenCreated:
    for ent in body.enterprises:
        if ent != "*" and not IDENTIFIER.fullmatch(ent):
            raise Problem(422, "Invalid request", f"{ent!r} is not an enterprise id")
        if not principal.can_see(ent) if ent != "*" else principal.enterprises is not None:
            raise Problem(403, "Forbidden", f"you cannot grant {ent!r}")
    token = await create_token(pool, body.name, Role[body.role.upper()], body.enterprises)
    return TokenCreated(token=token, name=body.name, role=body.role, enterprises=body.enterprises)
