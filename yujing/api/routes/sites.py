"""`/sites/{enterprise}/{site}`: site state (operating, halted, closed) that rules consult."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from yujing.api.deps import Admin, BusDep, Pool, Viewer
from yujing.api.problems import Problem
from yujing.ingest import topics
from yujing.ingest.bus import Topics
from yujing.names import IDENTIFIER

router = APIRouter(prefix="/sites", tags=["sites"])

Ident = Annotated[str, Path(pattern=IDENTIFIER.pattern)]
SiteState = Literal["operating", "halted", "closed"]


class SitePatch(BaseModel):
    state: SiteState | None = None
    name: str | None = Field(default=None, max_length=200)


class SitePublic(BaseModel):
    enterprise: str
    site: str
    name: str
    state: SiteState
    updated_at: str
    updated_by: str


def _public(row: Any) -> SitePublic:
    return SitePublic(
        enterprise=row["enterprise"], site=row["site"], name=row["name"], state=row["state"],
        updated_at=row["updated_at"].isoformat(), updated_by=row["updated_by"],
    )  # fmt: skip


@router.get("/{enterprise}/{site}", response_model=SitePublic)
async def get_site(enterprise: Ident, site: Ident, principal: Viewer, pool: Pool) -> SitePublic:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM sites WHERE enterprise = $1 AND site = $2", enterprise, site
        )
    if row is None or not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no site {enterprise}/{site}")
    return _public(row)


@router.patch("/{enterprise}/{site}", response_model=SitePublic)
async def patch_site(
    enterprise: Ident, site: Ident, body: SitePatch, principal: Admin, pool: Pool, bus: BusDep
) -> SitePublic:
    """Creates the site if it does not exist yet (a halted mine may have no device online)."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no enterprise {enterprise} in your scope")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO sites (enterprise, site, name, state, updated_by)"
            " VALUES ($1, $2, coalesce($3, ''), coalesce($4, 'operating'), $5)"
            " ON CONFLICT (enterprise, site) DO UPDATE SET"
            " name = coalesce($3, sites.name), state = coalesce($4, sites.state),"
            " updated_at = now(), updated_by = $5 RETURNING *",
            enterprise, site, body.name, body.state, principal.name,
        )  # fmt: skip
    public = _public(row)
    await bus.publish(Topics.REGISTRY, [topics.site_change(enterprise, site, public.state)])
    return public
