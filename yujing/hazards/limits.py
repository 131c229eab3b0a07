"""Time limits (时限) and the jurisdiction ladder they climb.

Per alert level: time to acknowledge and time to on-site feedback (the follow-up record);
per hazard grade: how long past its deadline a hazard climbs each further level. The
defaults are yujing's own, not a regulation's; admins change them (`PUT
/api/v1/hazards/limits`), and they are kept in `time_limits`.

An alert past its limit goes to the county; each further multiple of the limit past it
climbs one more level (city, then province). A hazard past its deadline is flagged
overdue and goes to the county; each `step_s` after that, one level up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from yujing.db import Conn
from yujing.hazards.jurisdiction import Tier


@dataclass(frozen=True, slots=True)
class Limit:
    subject: str  # an alert level word (red, orange, yellow, blue) or a hazard grade
    ack_s: float | None  # alerts: time to acknowledge; hazards: unused
    feedback_s: float  # alerts: time to a follow-up record; hazards: the climb step

    def public(self) -> dict[str, Any]:
        return {"subject": self.subject, "ack_s": self.ack_s, "feedback_s": self.feedback_s}


DEFAULTS = (
    Limit("red", 5 * 60, 30 * 60),
    Limit("orange", 15 * 60, 2 * 3600),
    Limit("yellow", 3600, 24 * 3600),
    Limit("blue", 4 * 3600, 72 * 3600),
    Limit("major", None, 24 * 3600),
    Limit("general", None, 3 * 24 * 3600),
)
SUBJECTS = tuple(x.subject for x in DEFAULTS)


def tier_for(late: timedelta, step: timedelta) -> Tier:
    """Late by `late` (≥ 0) against a limit of `step`: county, then one level per step."""
    climbed = int(late / step) if step > timedelta(0) else 0
    return Tier(min(Tier.COUNTY + climbed, Tier.PROVINCE))


def alert_tier(since: datetime, limit_s: float, now: datetime) -> Tier | None:
    """The level an alert asked to act at `since` has reached by `now`, if any."""
    limit = timedelta(seconds=limit_s)
    late = now - since - limit
    return None if late < timedelta(0) else tier_for(late, limit)


async def seed(conn: Conn) -> None:
    await conn.executemany(
        "INSERT INTO time_limits (subject, ack_s, feedback_s) VALUES ($1, $2, $3)"
        " ON CONFLICT (subject) DO NOTHING",
        [(x.subject, x.ack_s, x.feedback_s) for x in DEFAULTS],
    )


async def load(conn: Conn) -> dict[str, Limit]:
    await seed(conn)
    rows = await conn.fetch("SELECT subject, ack_s, feedback_s FROM time_limits")
    return {r["subject"]: Limit(r["subject"], r["ack_s"], r["feedback_s"]) for r in rows}


async def save(conn: Conn, limit: Limit, who: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO time_limits (subject, ack_s, feedback_s, changed_by, changed_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject) DO UPDATE SET ack_s = $2,"
        " feedback_s = $3, changed_by = $4, changed_at = $5",
        limit.subject, limit.ack_s, limit.feedback_s, who, now,
    )  # fmt: skip
