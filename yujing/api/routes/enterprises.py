"""`/enterprises`: the register (一企一档) — create or replace, read, change, list by
jurisdiction; the standing risk grade with its history; `/divisions`, `/parks`, `/sectors`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, ValidationError

from yujing.api.auth import Principal, Role
from yujing.api.deps import Admin, BusDep, Pool, Store, Viewer
from yujing.api.problems import Problem
from yujing.ingest import topics
from yujing.ingest.bus import Topics
from yujing.levels import Level
from yujing.names import IDENTIFIER
from yujing.registry import divisions
from yujing.registry import store as reg
from yujing.registry.model import (
    DivisionPublic,
    EnterprisePatch,
    EnterprisePublic,
    EnterpriseRecord,
    RiskGradeBody,
    check_division,
    public,
)
from yujing.registry.scope import admits
from yujing.registry.sectors import SECTORS

router = APIRouter(tags=["enterprises"])
Ident = Annotated[str, Path(pattern=IDENTIFIER.pattern)]


class EnterprisePage(BaseModel):
    items: list[EnterprisePublic]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    field: Literal["state", "risk_grade"]
    old_value: str | None
    new_value: str | None
    at: str
    actor: str
    note: str


class Park(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    division: str


class ParkPublic(Park):
    id: str


class Sector(BaseModel):
    code: str
    zh: str
    en: str


def _check_admits(principal: Principal, enterprise: str, record: EnterpriseRecord) -> None:
    if not admits(principal.jurisdiction, enterprise, record.division, record.sectors, record.park):
        raise Problem(
            403, "Forbidden", f"enterprise {enterprise} would lie outside your jurisdiction"
        )


async def _visible(conn: Any, principal: Principal, enterprise: str) -> Any:
    row = await reg.get(conn, enterprise)
    if row is None or not principal.can_see(enterprise):
        raise Problem(404, "Not found", f"no enterprise {enterprise}")
    return row


async def _save(
    pool: asyncpg.Pool, bus: Any, store: Any, principal: Principal, enterprise: str,
    record: EnterpriseRecord, must_exist: bool,
) -> EnterprisePublic:  # fmt: skip
    _check_admits(principal, enterprise, record)
    async with pool.acquire() as conn, conn.transaction():
        existing = await reg.get(conn, enterprise)
        if existing is not None and not principal.can_see(enterprise):
            raise Problem(404, "Not found", f"no enterprise {enterprise}")
        if must_exist and existing is None:
            raise Problem(404, "Not found", f"no enterprise {enterprise}")
        try:
            before, row, retagged = await reg.save(
                conn, enterprise, record, principal.name, store.now()
            )
        except reg.UnknownPark as exc:
            raise Problem(422, "Invalid request", f"no chemical park {exc}") from None
        except ValueError as exc:
            raise Problem(422, "Invalid request", str(exc)) from None
        except asyncpg.UniqueViolationError:
            raise Problem(
                409, "Conflict", f"another enterprise has the credit code {record.uscc}"
            ) from None
        inst = await reg.installation_devices(conn, enterprise)
    messages = [topics.device_change(enterprise, d) for d in retagged]
    if before is None or before["state"] != row["state"]:
        messages.append(topics.enterprise_change(enterprise, row["state"]))
    if messages:
        await bus.publish(Topics.REGISTRY, messages)
    return public(row, inst)


@router.put("/enterprises/{enterprise}", response_model=EnterprisePublic)
async def put_enterprise(
    enterprise: Ident, body: EnterpriseRecord, principal: Admin, pool: Pool, bus: BusDep,
    store: Store,
) -> EnterprisePublic:  # fmt: skip
    """Create or replace the whole record. A state other than operating needs its date and
    document; halting or closing an enterprise gates its sites' rules at once."""
    return await _save(pool, bus, store, principal, enterprise, body, must_exist=False)


@router.patch("/enterprises/{enterprise}", response_model=EnterprisePublic)
async def patch_enterprise(
    enterprise: Ident, body: EnterprisePatch, principal: Admin, pool: Pool, bus: BusDep,
    store: Store,
) -> EnterprisePublic:  # fmt: skip
    async with pool.acquire() as conn:
        row = await _visible(conn, principal, enterprise)
        current = public(row, await reg.installation_devices(conn, enterprise))
    merged = current.model_dump(include=set(EnterpriseRecord.model_fields)) | body.model_dump(
        exclude_unset=True
    )
    if body.state == "operating" and "state_document" not in body.model_fields_set:
        merged["state_document"] = ""
        merged["state_since"] = None
    try:
        record = EnterpriseRecord.model_validate(merged)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise Problem(
            422, "Invalid request", "the changed record is not valid", errors=errors
        ) from None
    return await _save(pool, bus, store, principal, enterprise, record, must_exist=True)


@router.get("/enterprises/{enterprise}", response_model=EnterprisePublic)
async def get_enterprise(enterprise: Ident, principal: Viewer, pool: Pool) -> EnterprisePublic:
    async with pool.acquire() as conn:
        row = await _visible(conn, principal, enterprise)
        return public(row, await reg.installation_devices(conn, enterprise))


@router.get("/enterprises", response_model=EnterprisePage)
async def list_enterprises(
    principal: Viewer,
    pool: Pool,
    division: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")] = None,
    sector: str | None = None,
    park: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
    state: Literal["operating", "halted", "closed"] | None = None,
    supervision_class: Literal["A", "B", "C", "D"] | None = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=IDENTIFIER.pattern)] = None,
) -> EnterprisePage:
    """Filters combine; `division` covers everything below it (a city lists its counties')."""
    if sector is not None and sector not in SECTORS:
        raise Problem(422, "Invalid request", f"unknown sector {sector!r}")
    scope = principal.scope(None)
    query = reg.EnterpriseQuery(
        enterprises=scope, division=division, sector=sector, park=park, state=state,
        supervision_class=supervision_class, name=name, cursor=cursor, limit=limit,
    )  # fmt: skip
    if scope == []:
        return EnterprisePage(items=[], next_cursor=None)
    async with pool.acquire() as conn:
        rows = await reg.find(conn, query)
        inst = await reg.installation_devices_of(conn, [r["id"] for r in rows])
        items = [public(r, inst.get(r["id"], {})) for r in rows]
    return EnterprisePage(items=items, next_cursor=rows[-1]["id"] if len(rows) == limit else None)


@router.put("/enterprises/{enterprise}/risk-grade", response_model=EnterprisePublic)
async def set_risk_grade(
    enterprise: Ident, body: RiskGradeBody, principal: Viewer, pool: Pool, store: Store
) -> EnterprisePublic:
    """The standing risk grade (红橙黄蓝) of the enterprise, set by the supervising
    department (role supervisor, or admin), with the reason; kept in the history."""
    if principal.role not in SUPERVISING_ROLES:
        raise Problem(403, "Forbidden", "the standing risk grade is set by a supervisor")
    grade = None if body.grade is None else int(Level.parse(body.grade))
    async with pool.acquire() as conn, conn.transaction():
        await _visible(conn, principal, enterprise)
        row = await reg.set_risk_grade(
            conn, enterprise, grade, body.reason, principal.name, store.now()
        )
        return public(row, await reg.installation_devices(conn, enterprise))


@router.get("/enterprises/{enterprise}/history", response_model=list[HistoryEntry])
async def enterprise_history(
    enterprise: Ident, principal: Viewer, pool: Pool
) -> list[HistoryEntry]:
    """Changes of state and of the standing risk grade: who, when and why."""
    async with pool.acquire() as conn:
        await _visible(conn, principal, enterprise)
        rows = await reg.history(conn, enterprise)
    return [
        HistoryEntry(
            field=r["field"],
            old_value=_grade_word(r["field"], r["old_value"]),
            new_value=_grade_word(r["field"], r["new_value"]),
            at=r["at"].isoformat(),
            actor=r["actor"],
            note=r["note"],
        )
        for r in rows
    ]


def _grade_word(field: str, value: str | None) -> str | None:
    if field != "risk_grade" or value is None:
        return value
    return Level(int(value)).word


@router.get("/divisions", response_model=list[DivisionPublic])
async def list_divisions(
    principal: Viewer,
    parent: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")] = None,
) -> list[DivisionPublic]:
    """The provinces, or the divisions directly below `parent` (GB/T 2260, shipped table)."""
    if parent is None:
        level, prefix = "province", ""
    else:
        level = {"province": "city", "city": "county"}.get(divisions.level_of(parent), "")
        prefix = divisions.prefix(parent)
    return [
        DivisionPublic(
            code=d.code, name=d.name, level=d.level, full_name=divisions.full_name(d.code)
        )
        for d in divisions.table().values()
        if d.level == level and d.code.startswith(prefix)
    ]


@router.get("/sectors", response_model=list[Sector])
async def list_sectors(principal: Viewer) -> list[Sector]:
    return [Sector(code=c, zh=zh, en=en) for c, (zh, en) in SECTORS.items()]


@router.put("/parks/{park}", response_model=ParkPublic)
async def put_park(park: Ident, body: Park, principal: Admin, pool: Pool) -> ParkPublic:
    """A chemical park (化工园区); a scoped admin may register one only in its divisions."""
    try:
        check_division(body.division)
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    scope = principal.jurisdiction
    if scope.divisions is not None and not any(
        divisions.covers(d, body.division) for d in scope.divisions
    ):
        raise Problem(403, "Forbidden", "the park would lie outside your jurisdiction")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO parks (id, name, division, updated_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, division = $3, updated_at = now(),"
            " updated_by = $4",
            park, body.name, body.division, principal.name,
        )  # fmt: skip
    return ParkPublic(id=park, name=body.name, division=body.division)


@router.get("/parks", response_model=list[ParkPublic])
async def list_parks(principal: Viewer, pool: Pool) -> list[ParkPublic]:
    """Parks with at least one enterprise in your scope (every park for a global token)."""
    scope = principal.scope(None)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM parks p WHERE $1::text[] IS NULL OR EXISTS"
            " (SELECT 1 FROM enterprises e WHERE e.park = p.id AND e.id = ANY($1)) ORDER BY id",
            scope,
        )
    return [ParkPublic(id=r["id"], name=r["name"], division=r["division"]) for r in rows]


SUPERVISING_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})
