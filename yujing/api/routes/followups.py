"""`/alerts/{id}/follow-up`: the follow-up record of an alarm (超限报警追查) — what caused it
and what was done; an orange or red hazard alarm is closed only with one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from yujing.alerts.store import NotFound
from yujing.api.auth import Principal, Role
from yujing.api.deps import Pool, Store, Viewer
from yujing.api.hazard_schemas import FollowUpPublic
from yujing.api.problems import Problem
from yujing.hazards import followup

router = APIRouter(prefix="/alerts", tags=["alerts"])


class FollowUpBody(BaseModel):
    cause: Literal["sensor_fault", "real_emission", "ventilation", "calibration", "test", "other"]
    measures: str = Field(min_length=1, max_length=4000)


@router.get("/{alert_id}/follow-up", response_model=FollowUpPublic)
async def get_follow_up(
    alert_id: str, principal: Viewer, store: Store, pool: Pool
) -> dict[str, Any]:
    await _alert_visible(store, principal, alert_id)
    async with pool.acquire() as conn:
        found = await followup.get(conn, alert_id)
    if found is None:
        raise Problem(404, "Not found", f"alert {alert_id} has no follow-up record")
    return found.public()


@router.post("/{alert_id}/follow-up", status_code=201, response_model=FollowUpPublic)
async def post_follow_up(
    alert_id: str, body: FollowUpBody, principal: Viewer, store: Store, pool: Pool
) -> dict[str, Any]:
    """超限报警追查: the on-site feedback of an alarm (operator); its time counts as the
    time to feedback. One per alert: a second is a 409."""
    if principal.role < Role.OPERATOR:
        raise Problem(403, "Forbidden", "this needs the operator role")
    await _alert_visible(store, principal, alert_id)
    record = followup.FollowUp(alert_id, body.cause, body.measures, principal.name, store.now())
    async with pool.acquire() as conn:
        if not await followup.save(conn, record):
            raise Problem(409, "Conflict", f"alert {alert_id} has a follow-up record already")
    return record.public()


async def _alert_visible(store: Store, principal: Principal, alert_id: str) -> None:
    try:
        alert, _ = await store.get(alert_id)
    except NotFound:
        raise Problem(404, "Not found", f"no alert {alert_id}") from None
    if not principal.can_see(alert.enterprise):
        raise Problem(404, "Not found", f"no alert {alert_id}")
