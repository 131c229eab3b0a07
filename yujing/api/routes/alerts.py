"""`/alerts`: list, one with its history, acknowledge, close, and the live SSE stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from yujing.alerts.lifecycle import LifecycleError
from yujing.alerts.store import AlertQuery, NotFound, StoredChange
from yujing.api.auth import Principal
from yujing.api.deps import Operator, SettingsDep, Store, Viewer
from yujing.api.problems import Problem
from yujing.levels import Level

router = APIRouter(prefix="/alerts", tags=["alerts"])

STATES = ("active", "acknowledged", "resolved", "closed")


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class CloseBody(BaseModel):
    disposal: str = Field(min_length=1, max_length=4000, description="处置记录: what was done")


class AlertPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


def _filters(
    principal: Principal,
    state: list[str] | None,
    min_level: str | None,
    enterprise: str | None,
    site: str | None,
    device: str | None,
) -> AlertQuery:
    for s in state or ():
        if s not in STATES:
            raise Problem(422, "Invalid request", f"state must be one of {', '.join(STATES)}")
    try:
        level = Level.parse(min_level) if min_level else Level.BLUE
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    return AlertQuery(
        states=state or None, min_level=level, enterprises=principal.scope(enterprise),
        site=site, device=device,
    )  # fmt: skip


@router.get("", response_model=AlertPage)
async def list_alerts(
    principal: Viewer,
    store: Store,
    state: Annotated[list[str] | None, Query()] = None,
    min_level: str | None = None,
    enterprise: str | None = None,
    site: str | None = None,
    device: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> AlertPage:
    query = _filters(principal, state, min_level, enterprise, site, device)
    query.since, query.until, query.limit = since, until, limit
    if cursor:
        if not cursor.isdigit():
            raise Problem(422, "Invalid request", "cursor is the next_cursor of a previous page")
        query.cursor = int(cursor)
    alerts = [] if query.enterprises == [] else await store.find(query)
    more = len(alerts) == limit
    return AlertPage(
        items=[a.public() for a in alerts], next_cursor=str(alerts[-1].seq) if more else None
    )


@router.get("/stream")
async def stream(
    request: Request,
    principal: Viewer,
    settings: SettingsDep,
    state: Annotated[list[str] | None, Query()] = None,
    min_level: str | None = None,
    enterprise: str | None = None,
    site: str | None = None,
    device: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    query = _filters(principal, state, min_level, enterprise, site, device)

    def accept(change: StoredChange) -> bool:
        a = change.alert
        return (
            (query.enterprises is None or a["enterprise"] in query.enterprises)
            and (not query.states or a["state"] in query.states)
            and Level.parse(a["level"]) >= query.min_level
            and (site is None or a["site"] == site)
            and (device is None or a["device"] == device)
        )

    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    events = request.app.state.hub.subscribe(accept, last, settings.sse_heartbeat_s)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{alert_id}")
async def get_alert(alert_id: str, principal: Viewer, store: Store) -> dict[str, Any]:
    try:
        alert, history = await store.get(alert_id)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    if not principal.can_see(alert.enterprise):
        raise Problem(404, "Not found", f"no alert {alert_id}")
    return {**alert.public(), "transitions": [c.public() for c in history]}


@router.post("/{alert_id}/ack")
async def acknowledge(
    alert_id: str, body: AckBody, principal: Operator, store: Store
) -> dict[str, Any]:
    try:
        change = await store.acknowledge(alert_id, principal.name, body.note, principal.can_see)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    except LifecycleError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    return change.alert


@router.post("/{alert_id}/close")
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
