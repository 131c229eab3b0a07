"""`/devices/{enterprise}/{device}`: the device registry (kind, site, tags, points)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, field_validator

from yujing.api.deps import Admin, BusDep, Pool, Viewer
from yujing.api.problems import Problem
from yujing.ingest.bus import Topics
from yujing.ingest.registry import upsert_device
from yujing.names import IDENTIFIER, is_identifier

router = APIRouter(prefix="/devices", tags=["devices"])

Ident = Annotated[str, Path(pattern=IDENTIFIER.pattern)]


class PointSpec(BaseModel):
    unit: str = Field(default="", max_length=32)
    interval_s: float | None = Field(default=None, gt=0, description="reporting interval")


class DeviceRecord(BaseModel):
    kind: str = Field(pattern=IDENTIFIER.pattern)
    site: str = Field(pattern=IDENTIFIER.pattern)
    tags: dict[str, str] = Field(default_factory=dict)
    points: dict[str, PointSpec] = Field(default_factory=dict)

    @field_validator("points")
    @classmethod
    def _point_names(cls, points: dict[str, PointSpec]) -> dict[str, PointSpec]:
        bad = [name for name in points if not is_identifier(name)]
        if bad:
            raise ValueError(f"point names must be identifiers: {bad}")
        return points


class DevicePublic(DeviceRecord):
    enterprise: str
    device: str
    auto_registered: bool
    updated_at: str
    updated_by: str


def _public(row: Any) -> DevicePublic:
    return DevicePublic(
        enterprise=row["enterprise"], device=row["device"], kind=row["kind"], site=row["site"],
        tags=row["tags"], points=row["points"], auto_registered=row["auto_registered"],
        updated_at=row["updated_at"].isoformat(), updated_by=row["updated_by"],
    )  # fmt: skip


@router.get("")
async def list_devices(
    principal: Viewer,
    pool: Pool,
    enterprise: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    scope = principal.scope(enterprise)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM devices WHERE ($1::text[] IS NULL OR enterprise = ANY($1))"
            " ORDER BY enterprise, device LIMIT $2",
            scope, limit,
        )  # fmt: skip
    return {"items": [_public(r) for r in rows]}


@router.get("/{enterprise}/{device}", response_model=DevicePublic)
async def get_device(
    enterprise: Ident, device: Ident, principal: Viewer, pool: Pool
) -> DevicePublic:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM devices WHERE enterprise = $1 AND device = $2", enterprise, device
        )
    if row is None or not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no device {enterprise}/{device}")
    return _public(row)


@router.put("/{enterprise}/{device}", response_model=DevicePublic)
async def put_device(
    enterprise: Ident, device: Ident, body: DeviceRecord, principal: Admin, pool: Pool, bus: BusDep
) -> DevicePublic:
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no enterprise {enterprise} in your scope")
    async with pool.acquire() as conn:
        row = await upsert_device(conn, enterprise, device, body.model_dump(), principal.name)
    public = _public(row)
    await bus.publish(
        Topics.REGISTRY,
        [(f"device:{enterprise}/{device}".encode(), json.dumps(public.model_dump()).encode())],
    )
    return public
