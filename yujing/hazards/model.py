"""The hazard record (隐患) and its states, steps, grades and sources."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from yujing.hazards.jurisdiction import Tier


class State(enum.StrEnum):
    REPORTED = "reported"
    CONFIRMED = "confirmed"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    SIGNED_OFF = "signed_off"  # 销号
    DISMISSED = "dismissed"  # reviewed and found not to be a hazard


OPEN_STATES = (State.REPORTED, State.CONFIRMED, State.RECTIFYING, State.RECTIFIED)


class Step(enum.StrEnum):
    """Every change of a hazard; CloudEvents type `cn.yujing.hazard.<step>`."""

    REPORTED = "reported"
    PROPOSED = "proposed"  # by yujing, from repeated alarms on one point
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    RECTIFYING = "rectifying"  # plan set: responsible unit and person, measures, deadline
    EVIDENCE = "evidence_added"
    RECTIFIED = "rectified"
    SENT_BACK = "sent_back"
    SIGNED_OFF = "signed_off"
    LISTED = "listed"  # 挂牌督办
    LINKED = "linked"  # more alerts linked
    ESCALATED = "escalated"  # past its deadline: pushed one level up
    OVERDUE = "overdue"  # first noticed past its deadline


class Grade(enum.StrEnum):
    GENERAL = "general"  # 一般隐患
    MAJOR = "major"  # 重大事故隐患


class Source(enum.StrEnum):
    ALARM = "alarm"
    INSPECTION = "inspection"  # 监管检查
    SELF_CHECK = "self_check"  # 企业自查
    PUBLIC_REPORT = "public_report"  # 举报


@dataclass(slots=True)
class Hazard:
    id: str
    enterprise: str
    source: Source
    grade: Grade
    category: str
    description: str
    state: State
    reported_by: str
    reported_at: datetime
    changed_at: datetime
    site: str | None = None
    device: str | None = None
    point: str | None = None
    installation: str | None = None
    # Where it belongs, fixed when reported (as an alert's): from the enterprise register.
    division: str | None = None
    sector: str | None = None
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    responsible_unit: str | None = None
    responsible_person: str | None = None
    measures: str | None = None
    deadline: datetime | None = None
    rectifying_since: datetime | None = None
    rectified_by: str | None = None
    rectified_at: datetime | None = None
    signed_off_by: str | None = None
    signed_off_at: datetime | None = None
    reason: str | None = None  # why it was last sent back or dismissed
    sent_back: int = 0
    listed_tier: Tier | None = None
    listed_by: str | None = None
    listed_at: datetime | None = None
    listed_deadline: datetime | None = None
    escalated_tier: Tier = Tier.ENTERPRISE
    overdue: bool = False
    alert_ids: list[str] = field(default_factory=list)
    seq: int = 0

    @property
    def due(self) -> datetime | None:
        """The deadline in force: listed supervision's own, else the rectification deadline."""
        return self.listed_deadline or self.deadline

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        for name, value in out.items():
            if isinstance(value, datetime):
                out[name] = value.isoformat()
            elif isinstance(value, Tier):
                out[name] = value.word
            elif isinstance(value, enum.StrEnum):
                out[name] = value.value
        out["due"] = self.due.isoformat() if self.due else None
        return out

    @classmethod
    def from_row(cls, row: Any) -> Hazard:
        data = dict(row)
        data["source"] = Source(data["source"])
        data["grade"] = Grade(data["grade"])
        data["state"] = State(data["state"])
        data["escalated_tier"] = Tier(data["escalated_tier"])
        listed = data["listed_tier"]
        data["listed_tier"] = None if listed is None else Tier(listed)
        data["alert_ids"] = list(data["alert_ids"])
        return cls(**data)


COLUMNS = tuple(Hazard.__dataclass_fields__)
