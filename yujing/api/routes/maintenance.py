"""`/maintenance`: windows during which an enterprise, site, device or point is under
maintenance; its alerts are recorded, marked `suppressed`, and not pushed to people."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from yujing.alerts import maintenance
from yujing.api.deps import Operator, Pool, Store, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant
from yujing.api.schemas import MaintenancePage, MaintenanceWindowPublic
from yujing.names import IDENTIFIER

router = APIRouter(prefix="/maintenance", tags=["maintenance"])

Name = Annotated[str, Field(pattern=IDENTIFIER.pattern)]


class WindowCreate(BaseModel):
    enterprise: Name
    site: Name | None = None
    device: Name | None = None
    point: Name | None = None
    starts_at: Instant | None = Field(default=None, description="default: now")
    ends_at: Instant
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _point_needs_device(self) -> WindowCreate:
        if self.point is not None and self.device is None:
            raise ValueError("a point is named together with its device")
        return self


@router.post("", status_code=201, response_model=MaintenanceWindowPublic)
async def declare(
    body: WindowCreate, principal: Operator, pool: Pool, store: Store
) -> dict[str, Any]:
    if not principal.can_see(body.enterprise):
        raise Problem(404, "Not found", f"no enterprise {body.enterprise}")
    now = store.now()
    starts = body.starts_at or now
    if body.ends_at <= starts:
        raise Problem(422, "Invalid request", "ends_at must be after starts_at")
    window = await maintenance.declare(
        pool, enterprise=body.enterprise, site=body.site, device=body.device, point=body.point,
        starts_at=starts, ends_at=body.ends_at, reason=body.reason, who=principal.name, now=now,
    )  # fmt: skip
    return window.public()


@router.get("", response_model=MaintenancePage)
async def list_windows(
    principal: Viewer,
    pool: Pool,
    enterprise: str | None = None,
    active_at: Annotated[Instant | None, Query(description="only windows covering it")] = None,
) -> dict[str, Any]:
    scope = principal.scope(enterprise)
    windows = [] if scope == [] else await maintenance.find(pool, scope, active_at)
    return {"items": [w.public() for w in windows]}


@router.post("/{window_id}/end", response_model=MaintenanceWindowPublic)
async def end_window(
    window_id: int, principal: Operator, pool: Pool, store: Store
) -> dict[str, Any]:
    window = await maintenance.get(pool, window_id)
    if window is None or not principal.can_see(window.enterprise):
        raise Problem(404, "Not found", f"no maintenance window {window_id}")
    ended = await maintenance.end(pool, window_id, store.now())
    if ended is None:
        raise Problem(409, "Conflict", "the window has already ended")
    return ended.public()
