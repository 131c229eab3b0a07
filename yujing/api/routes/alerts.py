"""`/alerts`: list, one with its history, acknowledge, close, the live SSE stream, CAP 1.2
(one transition, and an Atom feed) and the alarm-management figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from yujing.alerts import cap, escalation, stats
from yujing.alerts.lifecycle import LifecycleError
from yujing.alerts.store import AlertQuery, NotFound, StoredChange
from yujing.api.auth import Principal
from yujing.api.deps import Operator, Pool, SettingsDep, Store, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant, check_range
from yujing.api.schemas import AlarmStats, AlertDetail, AlertPage, AlertPublic
from yujing.levels import Level
from yujing.registry import divisions

router = APIRouter(prefix="/alerts", tags=["alerts"])
DivisionCode = Annotated[str | None, Query(pattern=r"^[1-9][0-9]{5}$")]

STATES = ("active", "acknowledged", "resolved", "closed")


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class CloseBody(BaseModel):
    disposal: str = Field(min_length=1, max_length=4000, description="处置记录: what was done")

    @field_validator("disposal")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the disposal says what was done; it cannot be only spaces")
        return text


def _level(word: str, name: str) -> Level:
    try:
        level = Level.parse(word)
    except ValueError as exc:
        raise Problem(422, "Invalid request", f"{name}: {exc}") from None
    if level is Level.NONE:
        raise Problem(422, "Invalid request", f"{name} is one of blue, yellow, orange, red")
    return level


def _filters(
    principal: Principal,
    state: list[str] | None,
    min_level: str | None,
    enterprise: str | None,
    site: str | None,
    device: str | None,
    division: str | None = None,
    sector: str | None = None,
    level: list[str] | None = None,
) -> AlertQuery:
    for s in state or ():
        if s not in STATES:
            raise Problem(422, "Invalid request", f"state must be one of {', '.join(STATES)}")
    return AlertQuery(
        states=state or None, min_level=_level(min_level, "min_level") if min_level else Level.BLUE,
        levels=[_level(w, "level") for w in level] if level else None,
        enterprises=principal.scope(enterprise), site=site, device=device, division=division,
        sector=sector,
    )  # fmt: skip


LevelFilter = Annotated[
    list[str] | None, Query(description="only these levels (repeat: level=red&level=orange)")
]


@router.get("", response_model=AlertPage)
async def list_alerts(
    principal: Viewer,
    store: Store,
    state: Annotated[list[str] | None, Query()] = None,
    level: LevelFilter = None,
    min_level: str | None = None,
    enterprise: str | None = None,
    site: str | None = None,
    device: str | None = None,
    division: DivisionCode = None,
    sector: str | None = None,
    since: Annotated[Instant | None, Query(description="raised at or after")] = None,
    until: Annotated[Instant | None, Query(description="raised before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> AlertPage:
    """`division` (GB/T 2260; a city covers its counties) and `sector` select where the alert
    was raised, as stored on it."""
    check_range(since, until)
    query = _filters(principal, state, min_level, enterprise, site, device, division, sector, level)
    query.since, query.until, query.limit = since, until, limit
    if cursor:
        if not cursor.isdigit():
            raise Problem(422, "Invalid request", "cursor is the next_cursor of a previous page")
        query.cursor = int(cursor)
    alerts = [] if query.enterprises == [] else await store.find(query)
    more = len(alerts) == limit
    return AlertPage(
        items=[AlertPublic.model_validate(a.public()) for a in alerts],
        next_cursor=str(alerts[-1].seq) if more else None,
    )


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "Server-Sent Events: one `change` per alert transition"}},
)  # fmt: skip
async def stream(
    request: Request,
    principal: Viewer,
    settings: SettingsDep,
    state: Annotated[list[str] | None, Query()] = None,
    level: LevelFilter = None,
    min_level: str | None = None,
    enterprise: str | None = None,
    site: str | None = None,
    device: str | None = None,
    division: DivisionCode = None,
    sector: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    query = _filters(principal, state, min_level, enterprise, site, device, division, sector, level)
    under = None if division is None else divisions.prefix(division)

    def accept(change: StoredChange) -> bool:
        a = change.alert
        return (
            (query.enterprises is None or a["enterprise"] in query.enterprises)
            and (not query.states or a["state"] in query.states)
            and Level.parse(a["level"]) >= query.min_level
            and (not query.levels or Level.parse(a["level"]) in query.levels)
            and (site is None or a["site"] == site)
            and (device is None or a["device"] == device)
            and (under is None or (a.get("division") or "").startswith(under))
            and (sector is None or a.get("sector") == sector)
        )

    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    events = request.app.state.hub.subscribe(accept, last, settings.sse_heartbeat_s)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/stats", response_model=AlarmStats)
async def alarm_stats(
    principal: Viewer,
    pool: Pool,
    store: Store,
    enterprise: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> dict[str, Any]:
    """ISA-18.2 figures over [since, until) (default: the last 24 h)."""
    now = store.now()
    until = until or now
    since = since or until - timedelta(days=1)
    if since >= until:
        raise Problem(422, "Invalid request", "since must be before until")
    async with pool.acquire() as conn:
        return await stats.figures(conn, since, until, now, principal.scope(enterprise))


CapProfile = Annotated[cap.Profile, Query(description="national (Red…Blue) or international")]


@router.get("/cap", response_class=Response, responses={200: {"content": {cap.ATOM_TYPE: {}}}})
async def cap_feed(
    request: Request,
    principal: Viewer,
    store: Store,
    profile: CapProfile = "national",
    min_level: str | None = None,
    enterprise: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """An Atom feed of the latest transitions, newest first, each a CAP 1.2 message."""
    query = _filters(principal, None, min_level, enterprise, None, None)
    scope = query.enterprises
    latest = [] if scope == [] else await store.latest_changes(scope, query.min_level, limit)
    originals = await store.originals([c.alert_id for c in latest])
    entries = [(c, originals[c.alert_id]) for c in latest]
    body = cap.feed(entries, profile, store.settings, store.now(), request.url.query)
    return Response(body, media_type=cap.ATOM_TYPE)


async def _visible(store: Store, principal: Principal, alert_id: str) -> Any:
    try:
        alert, history = await store.get(alert_id)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    if not principal.can_see(alert.enterprise):
        raise Problem(404, "Not found", f"no alert {alert_id}")
    return alert, history


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(alert_id: str, principal: Viewer, store: Store, pool: Pool) -> dict[str, Any]:
    alert, history = await _visible(store, principal, alert_id)
    return {
        **alert.public(),
        "transitions": [c.public() for c in history],
        "escalations": await escalation.notices(pool, alert_id),
    }


@router.get(
    "/{alert_id}/cap", response_class=Response, responses={200: {"content": {cap.MEDIA_TYPE: {}}}}
)
async def alert_cap(
    alert_id: str,
    principal: Viewer,
    store: Store,
    profile: CapProfile = "national",
    seq: int | None = Query(default=None, description="a transition; default the latest"),
) -> Response:
    _, history = await _visible(store, principal, alert_id)
    change = history[-1] if seq is None else next((c for c in history if c.seq == seq), None)
    if change is None:
        raise Problem(404, "Not found", f"alert {alert_id} has no transition {seq}")
    body = cap.document(change, history[0], profile, store.settings)
    return Response(body, media_type=cap.MEDIA_TYPE)


@router.post("/{alert_id}/ack", response_model=AlertPublic)
async def acknowledge(
    alert_id: str,
    principal: Operator,
    store: Store,
    body: Annotated[AckBody | None, Body(description="optional: a note")] = None,
) -> dict[str, Any]:
    note = body.note if body is not None else None
    try:
        change = await store.acknowledge(alert_id, principal.name, note, principal.can_see)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    except LifecycleError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    return change.alert


@router.post("/{alert_id}/close", response_model=AlertPublic)
async def close(
    alert_id: str, body: CloseBody, principal: Operator, store: Store
) -> dict[str, Any]:
    try:
        change = await store.close(alert_id, principal.name, body.disposal, principal.can_see)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    except LifecycleError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    return change.alert
