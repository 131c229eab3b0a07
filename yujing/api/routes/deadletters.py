"""`/deadletters`: what ingest could not accept, with the reason and the raw bytes."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from yujing.api.deps import Pool, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant
from yujing.api.schemas import DeadLetterPage
from yujing.ingest.payloads import Reason

router = APIRouter(prefix="/deadletters", tags=["deadletters"])


@router.get("", response_model=DeadLetterPage)
async def list_deadletters(
    principal: Viewer,
    pool: Pool,
    reason: str | None = None,
    since: Annotated[Instant | None, Query(description="received at or after")] = None,
    enterprise: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    if reason is not None and reason not in Reason.ALL:
        raise Problem(422, "Invalid request", f"reason must be one of {', '.join(Reason.ALL)}")
    if cursor is not None and not cursor.isdigit():
        raise Problem(422, "Invalid request", "cursor is the next_cursor of a previous page")
    scope = principal.scope(enterprise)
    # Letters without an enterprise (a bad topic) belong to nobody's scope but the global one.
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM deadletters WHERE ($1::text IS NULL OR reason = $1)"
            " AND ($2::timestamptz IS NULL OR received_at >= $2)"
            " AND ($3::text[] IS NULL OR enterprise = ANY($3))"
            " AND ($4::bigint IS NULL OR id < $4)"
            " ORDER BY id DESC LIMIT $5",
            reason, since, scope, int(cursor) if cursor else None, limit,
        )  # fmt: skip
    items = [
        {
            "id": r["id"],
            "received_at": r["received_at"].isoformat(),
            "topic": r["topic"],
            "reason": r["reason"],
            "detail": r["detail"],
            "enterprise": r["enterprise"],
            "device": r["device"],
            "payload_b64": base64.b64encode(r["payload"]).decode(),
        }
        for r in rows
    ]
    more = len(rows) == limit
    return {"items": items, "next_cursor": str(rows[-1]["id"]) if more else None}
