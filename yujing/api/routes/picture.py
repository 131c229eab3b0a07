"""The regional picture for the caller's jurisdiction: `/overview` (一张表, also as CSV and
XLSX), `/map` (一张图, GeoJSON), `/statistics/alarms`, `/events` and mine head counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from yujing.api.auth import Principal
from yujing.api.deps import Pool, Store, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant, check_range
from yujing.api.schemas import AlarmStatistics, HeadCount, OnlineStatistics
from yujing.names import IDENTIFIER
from yujing.picture import events, export, overview
from yujing.picture.presence import PresenceFigures
from yujing.picture.statistics import (
    DivisionLevel,
    Period,
    alarm_statistics,
    online_over_period,
)
from yujing.registry.sectors import SECTORS

router = APIRouter(tags=["regional picture"])
Ident = Annotated[str, Path(pattern=IDENTIFIER.pattern)]
DivisionCode = Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")]


class OverviewPage(BaseModel):
    items: list[dict[str, Any]]
    totals: dict[str, Any]
    next_cursor: str | None
    as_of: str | None = Field(description="when the online counts were taken")


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


def _check_sector(sector: str | None) -> None:
    if sector is not None and sector not in SECTORS:
        raise Problem(422, "Invalid request", f"unknown sector {sector!r}")


async def _filters(
    request: Request, principal: Principal, division: str | None, sector: str | None,
    park: str | None,
) -> overview.Filters | None:  # fmt: skip
    """The caller's scope and filters (None: nothing in scope), with online counts that are
    at most a few seconds old."""
    _check_sector(sector)
    scope = principal.scope(None)
    if scope == []:
        return None
    presence: PresenceFigures = request.app.state.presence
    await presence.fresh()
    return overview.Filters(scope, division, sector, park)


@router.get("/overview", response_model=OverviewPage)
async def get_overview(
    request: Request,
    principal: Viewer,
    division: DivisionCode = None,
    sector: str | None = None,
    park: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    by: DivisionLevel = "county",
    format: Literal["json", "csv", "xlsx"] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,9}$")] = None,
) -> OverviewPage | Response:
    """Every enterprise in your jurisdiction, riskiest first: colour now, standing grade,
    active alerts by level, online and connection rates; totals over all of them per
    division (`by`) and per sector. `format=csv|xlsx` downloads every row."""
    filters = await _filters(request, principal, division, sector, park)
    as_of = request.app.state.presence.as_of
    start = int(cursor or 0)
    pool = request.app.state.pool
    if format != "json":
        items = [] if filters is None else await _rows(pool, filters)
        if format == "csv":
            return _download(export.to_csv(items), "text/csv; charset=utf-8", "overview.csv")
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return _download(export.to_xlsx(items), media, "overview.xlsx")
    items, sums = [], overview.no_totals()
    if filters is not None:  # the page and the totals side by side, on two connections
        items, sums = await asyncio.gather(
            _rows(pool, filters, start, limit + 1), _totals(pool, filters, by)
        )
    return OverviewPage(
        items=items[:limit], totals=sums,
        next_cursor=str(start + limit) if len(items) > limit else None,
        as_of=as_of.isoformat() if as_of else None,
    )  # fmt: skip


async def _rows(
    pool: asyncpg.Pool, filters: overview.Filters, start: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await overview.rows(conn, filters, start, limit)


async def _totals(pool: asyncpg.Pool, filters: overview.Filters, by: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await overview.totals(conn, filters, by)


def _download(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/map", response_model=FeatureCollection)
async def get_map(
    request: Request,
    principal: Viewer,
    division: DivisionCode = None,
    sector: str | None = None,
    park: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
) -> FeatureCollection:
    """GeoJSON (RFC 7946, WGS-84) points of the enterprises in your jurisdiction that have a
    location, with the overview's properties. Division boundaries are not included: no
    well-kept package ships them for offline use (see README)."""
    filters = await _filters(request, principal, division, sector, park)
    items = [] if filters is None else await _rows(request.app.state.pool, filters)
    return FeatureCollection(
        features=[
            {
                "type": "Feature",
                "id": i["enterprise"],
                "geometry": {"type": "Point", "coordinates": [i["lon"], i["lat"]]},
                "properties": {k: v for k, v in i.items() if k not in ("lon", "lat")},
            }
            for i in items
            if i["lon"] is not None
        ]
    )


@router.get("/statistics/alarms", response_model=AlarmStatistics)
async def get_alarm_statistics(
    principal: Viewer,
    pool: Pool,
    store: Store,
    since: Instant | None = None,
    until: Instant | None = None,
    period: Period = "day",
    by: DivisionLevel = "county",
    division: DivisionCode = None,
    sector: str | None = None,
    enterprise: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
) -> dict[str, Any]:
    """Alarms raised in [since, until) (default: the last 30 days), grouped by period (China
    Standard Time), division (at level `by`), sector, peak level and health; `enterprise`
    narrows them to one enterprise (its own report)."""
    _check_sector(sector)
    until = until or store.now()
    since = since or until - timedelta(days=30)
    check_range(since, until)
    scope = principal.scope(enterprise)
    groups: list[dict[str, Any]] = []
    if scope != []:
        async with pool.acquire() as conn:
            groups = await alarm_statistics(conn, scope, since, until, period, by, division, sector)
    return {"since": since.isoformat(), "until": until.isoformat(), "period": period,
            "by": by, "groups": groups}  # fmt: skip


@router.get("/statistics/online", response_model=OnlineStatistics)
async def get_online_statistics(
    principal: Viewer,
    pool: Pool,
    store: Store,
    since: Instant | None = None,
    until: Instant | None = None,
    by: DivisionLevel = "county",
) -> dict[str, Any]:
    """Online rate (在线率) over a period of whole hours (default: the last 24): the share of
    device-hours with at least one valid reading, per enterprise, division and sector."""
    until = until or store.now()
    since = since or until - timedelta(hours=24)
    check_range(since, until)
    scope = principal.scope(None)
    if scope == []:
        return {"since": since.isoformat(), "until": until.isoformat(), "hours": 0,
                "items": [], "by_division": [], "by_sector": []}  # fmt: skip
    async with pool.acquire() as conn:
        figures = await online_over_period(conn, scope, since, until, by)
    return {"since": since.isoformat(), "until": until.isoformat(), **figures}


@router.get("/events", response_model=EventPage)
async def list_events(
    principal: Viewer,
    pool: Pool,
    enterprise: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    site: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    device: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    type: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> EventPage:
    """Device events as stored, newest first: seal person and vehicle counts with their
    attrs, sparks, vents, …"""
    scope = principal.scope(enterprise)
    if scope == []:
        return EventPage(items=[], next_cursor=None)
    q = events.EventQuery(
        scope, enterprise, site, device, type, since, until,
        int(cursor) if cursor else None, limit,
    )  # fmt: skip
    async with pool.acquire() as conn:
        rows = await events.find(conn, q)
    items = [{**dict(r), "ts": r["ts"].isoformat(), "id": str(r["id"])} for r in rows]
    return EventPage(items=items, next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None)


@router.get("/enterprises/{enterprise}/headcount", response_model=HeadCount)
async def head_count(
    enterprise: Ident,
    principal: Viewer,
    pool: Pool,
    store: Store,
    since: Instant | None = None,
) -> dict[str, Any]:
    """People in each site (a mine's shafts) from the seals' `person_in` / `person_out`
    counts since `since` (default: the last 24 hours)."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no enterprise {enterprise}")
    since = since or store.now() - timedelta(hours=24)
    async with pool.acquire() as conn:
        sites = await events.head_counts(conn, enterprise, since)
    return {"enterprise": enterprise, "since": since.isoformat(), "sites": sites}
