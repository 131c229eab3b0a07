"""`Annotated` dependencies for the routes: the pool, the bus, the caller and their role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from yujing.alerts.store import AlertStore
from yujing.api.auth import Principal, Role, lookup
from yujing.api.problems import Problem
from yujing.config import Settings
from yujing.ingest.bus import Bus


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def get_bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


def get_store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
BusDep = Annotated[Bus, Depends(get_bus)]
Store = Annotated[AlertStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_principal(request: Request, pool: Pool) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>")
    principal = await lookup(pool, token.strip())
    if principal is None:
        raise Problem(401, "Unauthorized", "unknown or revoked token")
    return principal


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role < role:
            raise Problem(403, "Forbidden", f"this needs the {role.name.lower()} role")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
