"""`/devices/{enterprise}/{device}`: the device registry (kind, site, tags, points)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, field_validator

from yujing.api.deps import Admin, BusDep, Pool, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant, check_range
from yujing.ingest import topics
from yujing.ingest.batch import QUALITIES
from yujing.ingest.bus import Topics
from yujing.ingest.registry import upsert_device
from yujing.names import IDENTIFIER, is_identifier
from yujing.rules import store as rule_store
from yujing.rules.model import (
    CalibrationRule,
    CompositeRule,
    EventRule,
    Rule,
    ThresholdRule,
    resolve_bound,
)

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


class DevicePage(BaseModel):
    items: list[DevicePublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class DeviceSaved(DevicePublic):
    rules: dict[str, list[str]] = Field(description="per point, the rules that watch it")
    warnings: list[str] = Field(description="e.g. a point no rule watches: check kind and unit")


class UnboundDevice(BaseModel):
    enterprise: str
    device: str
    kind: str
    points: list[str] = Field(description="points no enabled rule watches")


class UnboundPage(BaseModel):
    items: list[UnboundDevice]
    next_cursor: str | None = None


@router.get("", response_model=DevicePage)
async def list_devices(
    principal: Viewer,
    pool: Pool,
    enterprise: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> DevicePage:
    scope = principal.scope(enterprise)
    after = (cursor or "").split("/", 1) if cursor else ["", ""]
    if len(after) != 2:
        raise Problem(422, "Invalid request", "cursor is the next_cursor of a previous page")
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM devices WHERE ($1::text[] IS NULL OR enterprise = ANY($1))"
            " AND (enterprise, device) > ($3, $4) ORDER BY enterprise, device LIMIT $2",
            scope, limit, after[0], after[1],
        )  # fmt: skip
    more = len(rows) == limit
    last = f"{rows[-1]['enterprise']}/{rows[-1]['device']}" if more else None
    return DevicePage(items=[_public(r) for r in rows], next_cursor=last)


def _binding(rules: list[Rule], row: Any) -> dict[str, list[str]]:
    """Per point of a device, the enabled series rules that bind to it (a rule whose
    threshold names a tag the device lacks does not; event, group and calibration rules
    watch devices, not points)."""
    tags = dict(row["tags"] or {})
    out: dict[str, list[str]] = {}
    for point in row["points"] or {}:
        out[point] = [
            r.id for r in rules
            if not isinstance(r, EventRule | CompositeRule | CalibrationRule)
            and r.binds(row["enterprise"], row["kind"], point, tags)
            and (not isinstance(r, ThresholdRule)
                 or all(resolve_bound(b, tags) is not None for b in r.levels.values()))
        ]  # fmt: skip
    return out


async def _warnings(conn: Any, row: Any, bound: dict[str, list[str]]) -> list[str]:
    out = []
    for point, rules in bound.items():
        unit = str((row["points"][point] or {}).get("unit", ""))
        if not rules:
            out.append(f"no rule watches point {point} of kind {row['kind']}: check the kind"
                       " and point names against the rules (GET /api/v1/rules)")  # fmt: skip
            continue
        # Thresholds assume a unit: the one other devices of this kind report this point in
        # (from up to 200 of them: a province's 100,000 devices are not read per request).
        units = await conn.fetch(
            "SELECT DISTINCT u FROM (SELECT points->$1->>'unit' AS u FROM devices"
            " WHERE kind = $2 AND NOT (enterprise = $3 AND device = $4) AND points ? $1"
            " LIMIT 200) AS sample",
            point, row["kind"], row["enterprise"], row["device"],
        )  # fmt: skip
        known = sorted({str(u["u"]) for u in units if u["u"]})
        if known and unit not in known:
            out.append(f"point {point} in {unit or 'no unit'}, but other {row['kind']} devices"
                       f" report it in {', '.join(known)}: rules {', '.join(rules)} compare"
                       " numbers in that unit")  # fmt: skip
    return out


@router.get("/unbound", response_model=UnboundPage)
async def unbound_devices(
    principal: Viewer, pool: Pool, enterprise: str | None = None
) -> UnboundPage:
    """Devices with points that no enabled rule watches (a misnamed kind or point)."""
    scope = principal.scope(enterprise)
    rules = [r for r, _ in await rule_store.load_rules(pool)]
    rows = await pool.fetch(
        "SELECT * FROM devices WHERE ($1::text[] IS NULL OR enterprise = ANY($1))"
        " ORDER BY enterprise, device",
        scope,
    )
    items = []
    for row in rows:
        loose = [p for p, ids in _binding(rules, row).items() if not ids]
        if loose:
            items.append(UnboundDevice(enterprise=row["enterprise"], device=row["device"],
                                       kind=row["kind"], points=loose))  # fmt: skip
    return UnboundPage(items=items)


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


@router.put("/{enterprise}/{device}", response_model=DeviceSaved)
async def put_device(
    enterprise: Ident, device: Ident, body: DeviceRecord, principal: Admin, pool: Pool, bus: BusDep
) -> DeviceSaved:
    """Register or change a device. The response names the rules that watch each point
    and warns when none does, or when a unit differs from other devices of the kind."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no enterprise {enterprise} in your scope")
    rules = [r for r, _ in await rule_store.load_rules(pool)]
    async with pool.acquire() as conn:
        row = await upsert_device(conn, enterprise, device, body.model_dump(), principal.name)
        bound = _binding(rules, row)
        warnings = await _warnings(conn, row, bound)
    public = _public(row)
    await bus.publish(
        Topics.REGISTRY, [topics.device_change(enterprise, device, public.model_dump())]
    )
    return DeviceSaved(**public.model_dump(), rules=bound, warnings=warnings)


@router.delete("/{enterprise}/{device}", status_code=204)
async def delete_device(
    enterprise: Ident, device: Ident, principal: Admin, pool: Pool, bus: BusDep
) -> Response:
    """Remove a device from the registry: ingest dead-letters it from now on
    (`unknown_device`) and no rule watches it (no offline alert). Its stored readings and
    alerts stay."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no device {enterprise}/{device}")
    gone = await pool.fetchval(
        "DELETE FROM devices WHERE enterprise = $1 AND device = $2 RETURNING device",
        enterprise, device,
    )  # fmt: skip
    if gone is None:
        raise Problem(404, "Not found", f"no device {enterprise}/{device}")
    await bus.publish(Topics.REGISTRY, [topics.device_change(enterprise, device, deleted=True)])
    return Response(status_code=204)


_BUCKET = re.compile(r"^(\d{1,4})(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Readings(BaseModel):
    """Raw items are `{ts, value, quality}`; bucket items `{ts, avg, min, max, count, last}`,
    `avg` rounded to six significant digits (min and max are stored values)."""

    point: str
    unit: str = Field(description="the point's unit from the device record; '' if none")
    bucket: str | None
    source: str | None = Field(
        default=None, description="bucketed: readings, readings_1m or readings_1h"
    )
    items: list[dict[str, Any]]


def _avg(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


@router.get("/{enterprise}/{device}/readings", response_model=Readings)
async def readings(
    enterprise: Ident,
    device: Ident,
    principal: Viewer,
    pool: Pool,
    point: Annotated[str, Query(pattern=IDENTIFIER.pattern, description="a point of the device")],
    since: Annotated[Instant, Query(description="the first reading time (inclusive)")],
    until: Annotated[Instant | None, Query(description="the end (exclusive); default now")] = None,
    bucket: Annotated[str | None, Query(description="e.g. 30s, 1m, 1h, 1d")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Readings:
    """Stored readings of one point: raw (oldest first), or per `bucket` with avg, min, max,
    count and last over readings of quality `ok`. A bucket of whole hours or minutes is
    answered from the 1-hour or 1-minute aggregates (kept for `YJ_RETENTION_AGG`, longer than
    raw readings); any other from raw readings. `source` says which."""
    if not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no device {enterprise}/{device}")
    check_range(since, until)
    async with pool.acquire() as conn:
        series = await conn.fetchval(
            "SELECT id FROM reading_series WHERE enterprise = $1 AND device = $2 AND point = $3",
            enterprise, device, point,
        )  # fmt: skip
        points = await conn.fetchval(
            "SELECT points FROM devices WHERE enterprise = $1 AND device = $2", enterprise, device
        )
        if points is None:
            raise Problem(404, "Not found", f"no device {enterprise}/{device}")
        unit = str((points.get(point) or {}).get("unit", ""))
        if series is None:
            if point not in points:
                known = ", ".join(sorted(points)) or "none"
                raise Problem(404, "Not found", f"device {enterprise}/{device} has no point"
                              f" {point} (its points: {known})")  # fmt: skip
            return Readings(point=point, unit=unit, bucket=bucket, items=[])
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
            return Readings(point=point, unit=unit, bucket=None, items=items)
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
        {"ts": r["b"].isoformat(), "avg": _avg(r["avg"]), "min": r["min"], "max": r["max"],
         "count": r["n"], "last": r["last"]}
        for r in rows
    ]  # fmt: skip
    return Readings(point=point, unit=unit, bucket=bucket, source=source or "readings", items=items)


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
