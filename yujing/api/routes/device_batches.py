"""`POST /devices/bulk`: register a province's fleet, 2,000 devices a request, all or nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from yujing.api.deps import Admin, BusDep, Pool
from yujing.api.problems import Problem
from yujing.api.routes.devices import DeviceRecord
from yujing.ingest import topics
from yujing.ingest.bus import Topics
from yujing.names import IDENTIFIER
from yujing.registry.store import upsert_devices

router = APIRouter(prefix="/devices", tags=["devices"])
MAX_BULK = 2_000  # about 400 KB of JSON: inside the request body limit (1 MiB)
Ident = Annotated[str, Field(pattern=IDENTIFIER.pattern)]


class DeviceEntry(DeviceRecord):
    enterprise: Ident
    device: Ident


class BulkBody(BaseModel):
    devices: list[DeviceEntry] = Field(min_length=1, max_length=MAX_BULK)


class BulkResult(BaseModel):
    registered: int


@router.post("/bulk", response_model=BulkResult)
async def register_devices(body: BulkBody, principal: Admin, pool: Pool, bus: BusDep) -> BulkResult:
    """Create or replace up to 2,000 device records in one transaction: every record is
    checked first, and one refused record (invalid, a duplicate in the list, or outside your
    scope) refuses the whole request, naming it."""
    seen: set[tuple[str, str]] = set()
    for i, d in enumerate(body.devices):
        key = (d.enterprise, d.device)
        if key in seen:
            raise Problem(422, "Invalid request", f"devices[{i}]: {d.enterprise}/{d.device} twice")
        seen.add(key)
        if not principal.can_see(d.enterprise):
            raise Problem(403, "Forbidden", f"devices[{i}]: {d.enterprise} is outside your scope")
    records = [d.model_dump() for d in body.devices]
    async with pool.acquire() as conn:
        n = await upsert_devices(conn, records, principal.name)
    await bus.publish(
        Topics.REGISTRY,
        [topics.device_change(d.enterprise, d.device) for d in body.devices],
    )
    return BulkResult(registered=n)
