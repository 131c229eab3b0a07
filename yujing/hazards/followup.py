"""超限报警追查: the follow-up record of an alarm. Closing an orange or red alert of a
hazard rule needs one (cause from `vocabulary.CAUSES`, and the measures taken); health
alerts close as before. Recorded once per alert; its time counts as the on-site feedback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yujing.alerts.model import Alert
from yujing.db import Conn
from yujing.hazards.vocabulary import CAUSES
from yujing.levels import Level


@dataclass(frozen=True, slots=True)
class FollowUp:
    alert_id: str
    cause: str
    measures: str
    recorded_by: str
    recorded_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "cause": self.cause, "cause_zh": CAUSES[self.cause],
            "measures": self.measures, "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.isoformat(),
        }  # fmt: skip


def needed(alert: Alert) -> bool:
    """Orange or red (at its peak) and raised by a hazard rule, not a device-health rule."""
    return not alert.health and alert.peak_level >= Level.ORANGE


async def get(conn: Conn, alert_id: str) -> FollowUp | None:
    row = await conn.fetchrow("SELECT * FROM alert_follow_ups WHERE alert_id = $1", alert_id)
    return FollowUp(**dict(row)) if row else None


async def save(conn: Conn, f: FollowUp) -> bool:
    """False when the alert already has one (the first record stands)."""
    status = await conn.execute(
        "INSERT INTO alert_follow_ups (alert_id, cause, measures, recorded_by, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alert_id) DO NOTHING",
        f.alert_id, f.cause, f.measures, f.recorded_by, f.recorded_at,
    )  # fmt: skip
    return status.endswith(" 1")
