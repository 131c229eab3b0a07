"""`/devices/{enterprise}/{device}`: the device registry (kind, site, tags, points)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, field_validator

from yujing.api.deps import Admin, BusDep, Pool, Viewer
from yujing.api.problems import Problem
from yujing.ingest.batch import QUALITIES
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


_BUCKET = re.compile(r"^(\d{1,4})(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@router.get("/{enterprise}/{device}/readings")
async def readings(
    enterprise: Ident,
    device: Ident,
    principal: Viewer,
    pool: Pool,
    point: Annotated[str, Query(pattern=IDENTIFIER.pattern)],
    since: datetime,
    until: datetime | None = None,
    bucket: Annotated[str | None, Query(description="e.g. 30s, 1m, 1h, 1d")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """Stored readings of one point: raw (oldest first), or per `bucket` with avg, min, max,
    count and last over readings of quality `ok`. A bucket of whole hours or minutes is
    answered from the 1-hour or 1-minute aggregates (kept for `YJ_RETENTION_AGG`, longer than
    raw readings); any other from raw readings. `source` says which."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no device {enterprise}/{device}")
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise Problem(422, "Invalid request", "since and until need a UTC offset")
    async with pool.acquire() as conn:
        series = await conn.fetchval(
            "SELECT id FROM reading_series WHERE enterprise = $1 AND device = $2 AND point = $3",
            enterprise, device, point,
        )  # fmt: skip
        if series is None:
            known = await conn.fetchval(
                "SELECT 1 FROM devices WHERE enterprise = $1 AND device = $2", enterprise, device
            )
            if not known:
                raise Problem(404, "Not found", f"no device {enterprise}/{device}")
            return {"point": point, "bucket": bucket, "items": []}
        end = until or datetime.now(UTC)
        if bucket is None:
            rows = await conn.fetch(
                "SELECT ts, value, quality FROM readings WHERE series = $1 AND ts >= $2"
                " AND ts < $3 ORDER BY ts LIMIT $4",
                series, since, end, limit,
            )  # fmt: skip
            items = [
                {"ts": r["ts"].isoformat(), "value": r["value"], "quality": QUALITIES[r["quality"]]}
                for r in rows
            ]
            return {"point": point, "bucket": None, "items": items}
        width = _bucket(bucket)
        source = _source(width)
        if source is None:
            rows = await conn.fetch(_RAW_BUCKETS, series, since, end, width, limit)
        else:
            # Whole buckets of the aggregate: `since` is floored to its width.
            rows = await conn.fetch(
                _AGG_BUCKETS.format(source=source), series, since, end, width, limit,
                _AGG_WIDTH[source],
            )  # fmt: skip
    items = [
        {"ts": r["b"].isoformat(), "avg": r["avg"], "min": r["min"], "max": r["max"],
         "count": r["n"], "last": r["last"]}
        for r in rows
    ]  # fmt: skip
    return {"point": point, "bucket": bucket, "source": source or "readings", "items": items}


_RAW_BUCKETS = (
    "SELECT date_bin($4::interval, ts, 'epoch'::timestamptz) AS b, avg(value) AS avg,"
    " min(value) AS min, max(value) AS max, count(value) AS n,"
    " (array_agg(value ORDER BY ts DESC) FILTER (WHERE value IS NOT NULL))[1] AS last"
    " FROM readings WHERE series = $1 AND ts >= $2 AND ts < $3 AND quality = 0"
    " GROUP BY b ORDER BY b LIMIT $5"
)
_AGG_BUCKETS = (
    "SELECT date_bin($4::interval, bucket, 'epoch'::timestamptz) AS b,"
    " sum(sum) / sum(count) AS avg, min(min) AS min, max(max) AS max,"
    " sum(count)::bigint AS n, (array_agg(last ORDER BY last_ts DESC))[1] AS last"
    " FROM {source} WHERE series = $1"
    " AND bucket >= date_bin($6::interval, $2::timestamptz, 'epoch'::timestamptz)"
    " AND bucket < $3 GROUP BY b ORDER BY b LIMIT $5"
)
_AGG_WIDTH = {"readings_1h": timedelta(hours=1), "readings_1m": timedelta(minutes=1)}


def _source(width: timedelta) -> str | None:
    """The coarsest aggregate (TimescaleDB continuous aggregate or sink-kept table) whose
    buckets tile `width`; None: only raw readings can answer (e.g. 30s)."""
    for name, unit in _AGG_WIDTH.items():
        if width % unit == timedelta(0):
            return name
    return None


def _bucket(text: str) -> timedelta:
    match = _BUCKET.fullmatch(text)
    if match is None:
        raise Problem(422, "Invalid request", "bucket is a number and s, m, h or d, e.g. 1m")
    width = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if width.total_seconds() < 1:
        raise Problem(422, "Invalid request", "bucket must be at least 1s")
    return width
