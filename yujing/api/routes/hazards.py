"""`/hazards`: hidden hazards (隐患) in a closed loop — list, one with its history, each step
a POST, evidence upload and download, figures, time limits, the live stream — with
`/alerts/{id}/follow-up` (超限报警追查, routes/followups.py). Refusals are problem+json:
409 wrong state, 403 wrong role or level, 422 missing evidence or input, 404 outside the
caller's scope."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from yujing.alerts.store import NotFound, StoredChange
from yujing.api.auth import Principal, Role
from yujing.api.deps import Admin, Pool, SettingsDep, Store, Viewer
from yujing.api.hazard_schemas import (
    EvidencePublic,
    HazardDetail,
    HazardFigures,
    HazardPage,
    HazardPublic,
    TimeLimit,
    Vocabulary,
)
from yujing.api.limits import BodyAllowance
from yujing.api.problems import Problem
from yujing.api.routes import followups
from yujing.db import Conn
from yujing.hazards import evidence, lifecycle, limits, stats, vocabulary
from yujing.hazards.jurisdiction import Actor, tier_of_divisions
from yujing.hazards.model import Grade, Hazard, Source, State, Step
from yujing.hazards.settings import HazardSettings
from yujing.hazards.store import HazardQuery, HazardStore
from yujing.names import IDENTIFIER

hazard_router = APIRouter(prefix="/hazards", tags=["hazards"])
router = APIRouter()

Id = Annotated[str, Field(pattern=IDENTIFIER.pattern)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


def get_hazards(pool: Pool, store: Store) -> HazardStore:
    return HazardStore(pool, store.now)  # the alert store's clock: one clock for both


Hazards = Annotated[HazardStore, Depends(get_hazards)]


def actor_of(principal: Principal) -> Actor:
    """The principal as a hazard actor; a supervisor's level comes from the token's scope."""
    role = principal.role.name.lower()
    if principal.role is not Role.SUPERVISOR:
        return Actor(principal.name, role)
    scope = principal.jurisdiction
    everything = scope.divisions is None and scope.enterprises is None and scope.parks is None
    return Actor(principal.name, role, tier_of_divisions(scope.divisions, everything=everything))


class HazardReport(BaseModel):
    enterprise: Id
    source: Source
    grade: Grade = Grade.GENERAL
    category: str = Field(description="GET /api/v1/hazards/vocabulary lists them")
    description: Text
    site: Id | None = None
    device: Id | None = None
    point: Id | None = None
    installation: Id | None = None
    alert_ids: list[str] = Field(default_factory=list, max_length=1000)


class ConfirmBody(BaseModel):
    grade: Grade | None = None
    note: str | None = Field(default=None, max_length=4000)


class ReasonBody(BaseModel):
    reason: Text


class NoteBody(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class RectifiedBody(BaseModel):
    note: Text = Field(description="what was done")


class PlanBody(BaseModel):
    responsible_unit: Text
    responsible_person: Text
    measures: Text
    deadline: datetime


class ListBody(BaseModel):
    deadline: datetime
    note: str | None = Field(default=None, max_length=4000)


class LinkBody(BaseModel):
    alert_ids: list[str] = Field(min_length=1, max_length=1000)


class LimitBody(BaseModel):
    ack_s: float | None = Field(default=None, gt=0)
    feedback_s: float = Field(gt=0)


def refused(exc: lifecycle.Refused) -> Problem:
    title = {403: "Forbidden", 409: "Conflict", 422: "Invalid request"}[exc.status]
    return Problem(exc.status, title, str(exc))


@hazard_router.get("", response_model=HazardPage)
async def list_hazards(
    principal: Viewer,
    hazards: Hazards,
    state: Annotated[list[State] | None, Query()] = None,
    grade: Grade | None = None,
    source: Source | None = None,
    category: str | None = None,
    enterprise: str | None = None,
    site: str | None = None,
    device: str | None = None,
    overdue: bool | None = None,
    listed: bool | None = None,
    alert_id: str | None = None,
    division: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")] = None,
    sector: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> HazardPage:
    """`division` (a city or province covers the divisions below) and `sector` select where
    the hazard was reported, as stored on it."""
    if cursor is not None and not cursor.isdigit():
        raise Problem(422, "Invalid request", "cursor is the next_cursor of a previous page")
    query = HazardQuery(
        enterprises=principal.scope(enterprise), states=[s.value for s in state or ()],
        grade=grade, source=source, category=category, site=site, device=device,
        overdue=overdue, listed=listed, alert_id=alert_id, division=division, sector=sector,
        since=since, until=until,
        cursor=int(cursor) if cursor else None, limit=limit,
    )  # fmt: skip
    found = [] if query.enterprises == [] else await hazards.find(query)
    more = len(found) == limit
    return HazardPage(
        items=[h.public() for h in found], next_cursor=str(found[-1].seq) if more else None
    )


@hazard_router.get("/vocabulary", response_model=Vocabulary)
async def vocab(principal: Viewer) -> dict[str, Any]:
    """Categories (by sector, after the major-hazard criteria), causes, and who does what."""
    return {
        "categories": vocabulary.CATEGORIES, "standards": vocabulary.STANDARDS,
        "causes": vocabulary.CAUSES, "sources": [s.value for s in Source],
        "grades": [g.value for g in Grade], "states": [s.value for s in State],
        "steps": {s.value: sorted(lifecycle.WHO_MAY.get(s, {"system"})) for s in Step},
    }  # fmt: skip


@hazard_router.get("/stats", response_model=HazardFigures)
async def hazard_stats(
    principal: Viewer,
    pool: Pool,
    store: Store,
    enterprise: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    period: stats.Period = "all",
    by: stats.DivisionLevel = "county",
    division: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")] = None,
    sector: str | None = None,
) -> dict[str, Any]:
    """Figures for hazards reported in [since, until) (default: the last 30 days), per
    division (rolled up to `by`) × sector × period."""
    until = until or store.now()
    since = since or until - timedelta(days=30)
    if since >= until:
        raise Problem(422, "Invalid request", "since must be before until")
    scope = principal.scope(enterprise)
    async with pool.acquire() as conn:
        return await stats.figures(conn, scope, since, until, period, by, division, sector)


@hazard_router.get("/limits", response_model=list[TimeLimit])
async def get_limits(principal: Viewer, pool: Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        current = await limits.load(conn)
    return [current[s].public() for s in limits.SUBJECTS]


@hazard_router.put("/limits/{subject}", response_model=TimeLimit)
async def put_limit(
    subject: str, body: LimitBody, principal: Admin, pool: Pool, store: Store
) -> dict[str, Any]:
    """An alert level (red, orange, yellow, blue: ack_s and feedback_s) or a hazard grade
    (major, general: feedback_s is the time per level climbed past the deadline)."""
    if subject not in limits.SUBJECTS:
        raise Problem(404, "Not found", f"no time limit {subject}; one of {limits.SUBJECTS}")
    limit = limits.Limit(subject, body.ack_s, body.feedback_s)
    async with pool.acquire() as conn:
        await limits.save(conn, limit, principal.name, store.now())
    return limit.public()


@hazard_router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "Server-Sent Events: one event per hazard step, named"
                                    " after the step (`event: confirmed`)"}},
)  # fmt: skip
async def stream(
    request: Request,
    principal: Viewer,
    settings: SettingsDep,
    enterprise: str | None = None,
    grade: Grade | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events of hazard steps; `id:` is the feed `seq` shared with alerts."""
    scope = principal.scope(enterprise)

    def accept(change: StoredChange) -> bool:
        h = change.alert
        return (scope is None or h["enterprise"] in scope) and (
            grade is None or h["grade"] == grade.value
        )

    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    events = request.app.state.hub.subscribe(accept, last, settings.sse_heartbeat_s, "hazard")
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _alerts_of(conn: Conn, enterprise: str, alert_ids: list[str]) -> None:
    found = await conn.fetchval(
        "SELECT count(*) FROM alerts WHERE id = ANY($1::text[]) AND enterprise = $2",
        alert_ids, enterprise,
    )  # fmt: skip
    if found != len(set(alert_ids)):
        raise lifecycle.Invalid(f"alert_ids must be alerts of enterprise {enterprise}")


@hazard_router.post("", status_code=201, response_model=HazardPublic)
async def report(
    body: HazardReport, principal: Viewer, hazards: Hazards, pool: Pool
) -> dict[str, Any]:
    if not principal.can_see(body.enterprise):
        raise Problem(403, "Forbidden", f"enterprise {body.enterprise} is outside your scope")
    r = lifecycle.Report(
        enterprise=body.enterprise, source=body.source, grade=body.grade,
        category=body.category, description=body.description, site=body.site,
        device=body.device, point=body.point, installation=body.installation,
        alert_ids=tuple(body.alert_ids),
    )  # fmt: skip
    try:
        if body.alert_ids:
            async with pool.acquire() as conn:
                await _alerts_of(conn, body.enterprise, body.alert_ids)
        change = await hazards.report(r, actor_of(principal))
    except lifecycle.Refused as exc:
        raise refused(exc) from None
    return change.alert


@hazard_router.get("/{hazard_id}", response_model=HazardDetail)
async def get_hazard(
    hazard_id: str, principal: Viewer, hazards: Hazards, pool: Pool
) -> dict[str, Any]:
    hazard, history = await _visible(hazards, principal, hazard_id)
    async with pool.acquire() as conn:
        files = await evidence.listing(conn, hazard_id)
    return {
        **hazard.public(),
        "history": [c.public() for c in history],
        "evidence": [e.public() for e in files],
    }


async def _visible(
    hazards: HazardStore, principal: Principal, hazard_id: str
) -> tuple[Hazard, list[StoredChange]]:
    try:
        hazard, history = await hazards.get(hazard_id)
    except NotFound:
        raise Problem(404, "Not found", f"no hazard {hazard_id}") from None
    if not principal.can_see(hazard.enterprise):
        raise Problem(404, "Not found", f"no hazard {hazard_id}")
    return hazard, history


Act = Callable[[Hazard, Actor, Conn], Awaitable[tuple[Hazard, Step]]]


async def _take(
    hazards: HazardStore, principal: Principal, hazard_id: str, act: Act, note: str | None
) -> dict[str, Any]:
    actor = actor_of(principal)

    async def action(h: Hazard, conn: Conn) -> tuple[Hazard, Step]:
        return await act(h, actor, conn)

    try:
        change = await hazards.step(hazard_id, principal.can_see, actor, action, note)
    except NotFound:
        raise Problem(404, "Not found", f"no hazard {hazard_id}") from None
    except lifecycle.Refused as exc:
        raise refused(exc) from None
    return change.alert


@hazard_router.post("/{hazard_id}/confirm", response_model=HazardPublic)
async def confirm(
    hazard_id: str, body: ConfirmBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.confirm(h, a, hazards.now(), body.grade)

    return await _take(hazards, principal, hazard_id, act, body.note)


@hazard_router.post("/{hazard_id}/dismiss", response_model=HazardPublic)
async def dismiss(
    hazard_id: str, body: ReasonBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.dismiss(h, a, body.reason, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.reason)


@hazard_router.post("/{hazard_id}/plan", response_model=HazardPublic)
async def plan(
    hazard_id: str, body: PlanBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    """Start rectification (整改): responsible unit and person, measures, deadline."""
    p = lifecycle.Plan(body.responsible_unit, body.responsible_person, body.measures, body.deadline)

    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.plan(h, a, p, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.measures)


@hazard_router.post("/{hazard_id}/rectified", response_model=HazardPublic)
async def rectified(
    hazard_id: str, body: RectifiedBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    """Rectification done; needs an evidence file uploaded since it (re)started (else 422)."""

    async def act(h: Hazard, a: Actor, conn: Conn) -> tuple[Hazard, Step]:
        files = await evidence.count_since(conn, h.id, h.rectifying_since)
        return lifecycle.rectified(h, a, files, body.note, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.note)


@hazard_router.post("/{hazard_id}/sign-off", response_model=HazardPublic)
async def sign_off(
    hazard_id: str, body: NoteBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    """销号, by a supervisor who did not rectify it (of the listing level, when listed)."""

    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.sign_off(h, a, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.note)


@hazard_router.post("/{hazard_id}/send-back", response_model=HazardPublic)
async def send_back(
    hazard_id: str, body: ReasonBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.send_back(h, a, body.reason, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.reason)


@hazard_router.post("/{hazard_id}/list", response_model=HazardPublic)
async def list_for_supervision(
    hazard_id: str, body: ListBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    """挂牌督办 of a major hazard at the supervisor's level, with its own deadline."""

    async def act(h: Hazard, a: Actor, _: Conn) -> tuple[Hazard, Step]:
        return lifecycle.list_for_supervision(h, a, body.deadline, hazards.now())

    return await _take(hazards, principal, hazard_id, act, body.note)


@hazard_router.post("/{hazard_id}/link", response_model=HazardPublic)
async def link(
    hazard_id: str, body: LinkBody, principal: Viewer, hazards: Hazards
) -> dict[str, Any]:
    async def act(h: Hazard, a: Actor, conn: Conn) -> tuple[Hazard, Step]:
        await _alerts_of(conn, h.enterprise, body.alert_ids)
        return lifecycle.link(h, a, body.alert_ids, hazards.now())

    return await _take(hazards, principal, hazard_id, act, None)


def get_hazard_settings(request: Request) -> HazardSettings:
    """The settings the app was made with (read from the environment once, at start)."""
    settings: HazardSettings = request.app.state.hazard_settings
    return settings


# Room for the multipart framing around the file (boundaries, part headers, a long name).
MULTIPART_ROOM = 64 * 1024


def body_allowances(prefix: str, settings: HazardSettings) -> list[BodyAllowance]:
    """The request bodies of this router that may pass the API's general body limit: an
    evidence upload, up to `YJ_HAZARD_EVIDENCE_MAX_BYTES` and its multipart framing."""
    upload = re.escape(prefix + hazard_router.prefix) + r"/[^/]+/evidence"
    return [(upload, settings.hazard_evidence_max_bytes + MULTIPART_ROOM)]


@hazard_router.post("/{hazard_id}/evidence", status_code=201, response_model=EvidencePublic)
async def upload(
    hazard_id: str,
    principal: Viewer,
    hazards: Hazards,
    settings: Annotated[HazardSettings, Depends(get_hazard_settings)],
    file: Annotated[UploadFile, File(description="a JPEG, PNG or PDF")],
) -> dict[str, Any]:
    """One file, kept with its SHA-256 together with an `evidence_added` step, or refused
    whole: empty 422, too large 413, not JPEG/PNG/PDF by its bytes 415."""
    limit = settings.hazard_evidence_max_bytes
    body = await file.read(limit + 1)
    try:
        kind = evidence.check(body, file.content_type, limit)
    except evidence.Refused as exc:
        titles = {413: "Content too large", 415: "Unsupported media type"}
        raise Problem(exc.status, titles.get(exc.status, "Invalid request"), exc.detail) from None
    stored: list[evidence.Evidence] = []

    async def act(h: Hazard, a: Actor, conn: Conn) -> tuple[Hazard, Step]:
        result = lifecycle.evidence_added(h, a, hazards.now())
        name = file.filename or "evidence"
        stored.append(await evidence.insert(conn, h.id, name, kind, body, a.name, hazards.now()))
        return result

    await _take(hazards, principal, hazard_id, act, file.filename)
    return stored[0].public()


@hazard_router.get(
    "/{hazard_id}/evidence/{evidence_id}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in evidence.ACCEPTED}}},
)
async def download(
    hazard_id: str, evidence_id: str, principal: Viewer, hazards: Hazards, pool: Pool
) -> Response:
    await _visible(hazards, principal, hazard_id)
    async with pool.acquire() as conn:
        found = await evidence.body(conn, hazard_id, evidence_id)
    if found is None:
        raise Problem(404, "Not found", f"hazard {hazard_id} has no evidence {evidence_id}")
    meta, data = found
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(meta.filename)}",
        "Digest": f"sha-256={meta.sha256}",
        "X-Content-SHA256": meta.sha256,
    }
    return Response(data, media_type=meta.content_type, headers=headers)


def _quote(name: str) -> str:
    return quote(name, safe="")


router.include_router(hazard_router)
router.include_router(followups.router)
