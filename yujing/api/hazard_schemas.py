"""Response shapes of the hazards API (`/hazards`, `/alerts/{id}/follow-up`) as the OpenAPI
document shows them. The records are built in `yujing.hazards` (`Hazard.public()`,
`Evidence.public()`, `FollowUp.public()`, `Limit.public()`, `stats.figures()`); these models
describe them field for field and change nothing. Extra fields pass through, as in
`schemas.py`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yujing.api.schemas import Open, Timestamp
from yujing.hazards.model import Grade, Source, State

TierWord = Literal["enterprise", "county", "city", "province"]


class HazardPublic(BaseModel):
    """One hazard (隐患), from its report to sign-off (销号) or dismissal. Times are the wall
    clock of each step."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{
                "id": "hz-01KB8Z7Q3V2J8W3M0Y9R4T6N5P", "enterprise": "shanxi-coal-01",
                "source": "inspection", "grade": "major", "category": "coal.gas_over_limit",
                "description": "回风巷甲烷超限仍在作业", "state": "rectifying",
                "reported_by": "op-wang", "reported_at": "2026-12-01T08:00:00+00:00",
                "changed_at": "2026-12-01T09:00:00+00:00", "site": "face-1", "device": None,
                "point": None, "installation": None, "division": "140525", "sector": "coal",
                "confirmed_by": "sup-li", "confirmed_at": "2026-12-01T08:30:00+00:00",
                "responsible_unit": "通风科", "responsible_person": "张工",
                "measures": "加强通风，停止作业", "deadline": "2026-12-03T08:00:00+00:00",
                "rectifying_since": "2026-12-01T09:00:00+00:00", "rectified_by": None,
                "rectified_at": None, "signed_off_by": None, "signed_off_at": None,
                "reason": None, "sent_back": 0, "listed_tier": None, "listed_by": None,
                "listed_at": None, "listed_deadline": None, "escalated_tier": "enterprise",
                "overdue": False, "alert_ids": [], "seq": 42,
                "due": "2026-12-03T08:00:00+00:00",
            }]
        },
    )  # fmt: skip
    id: str
    enterprise: str
    source: Source = Field(description="how it was found")
    grade: Grade = Field(description="general (一般) or major (重大事故隐患)")
    category: str = Field(description="one of GET /api/v1/hazards/vocabulary `categories`")
    description: str
    state: State
    reported_by: str = Field(description="the name of the reporting token, or yujing")
    reported_at: Timestamp
    changed_at: Timestamp = Field(description="the time of the last step")
    site: str | None
    device: str | None
    point: str | None
    installation: str | None
    division: str | None = Field(
        description="GB/T 2260 code of the enterprise when it was reported"
    )
    sector: str | None = Field(description="the enterprise's sector when it was reported")
    confirmed_by: str | None
    confirmed_at: Timestamp | None
    responsible_unit: str | None = Field(description="of the rectification plan")
    responsible_person: str | None
    measures: str | None
    deadline: Timestamp | None = Field(description="the rectification deadline")
    rectifying_since: Timestamp | None = Field(
        description="when rectification last (re)started; evidence counts from here"
    )
    rectified_by: str | None
    rectified_at: Timestamp | None
    signed_off_by: str | None
    signed_off_at: Timestamp | None
    reason: str | None = Field(description="why it was last sent back or dismissed")
    sent_back: int = Field(description="how many times it was sent back")
    listed_tier: TierWord | None = Field(description="the level of listed supervision (挂牌督办)")
    listed_by: str | None
    listed_at: Timestamp | None
    listed_deadline: Timestamp | None = Field(description="the listed supervision's deadline")
    escalated_tier: TierWord = Field(description="the level it has climbed to past its deadline")
    overdue: bool = Field(description="past its deadline")
    alert_ids: list[str] = Field(description="the alerts linked to it")
    seq: int = Field(description="the feed `seq` of its last step")
    due: Timestamp | None = Field(
        description="the deadline in force: the listed one, else the rectification deadline"
    )


class HazardPage(BaseModel):
    items: list[HazardPublic] = Field(description="newest change first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class HazardChange(BaseModel):
    """One step of a hazard, as the feed carries it."""

    model_config = Open
    seq: int = Field(description="global order of changes (shared with alerts); SSE event id")
    transition: str = Field(description="the step: reported, confirmed, rectifying, ...")
    at: Timestamp
    actor: str = Field(description="yujing, or the name of the person's token")
    note: str | None
    notify: bool
    hazard: dict[str, Any] = Field(description="the hazard as it was after this step")


class EvidencePublic(BaseModel):
    """One evidence file of a hazard (a photo or a PDF)."""

    model_config = Open
    id: str
    hazard_id: str
    filename: str = Field(description="as uploaded (at most 200 characters)")
    content_type: str = Field(
        description="image/jpeg, image/png or application/pdf (read from the bytes)"
    )
    size: int = Field(description="bytes")
    sha256: str = Field(description="hex digest of the bytes")
    uploaded_by: str
    uploaded_at: Timestamp
    href: str = Field(description="where to download it")


class HazardDetail(HazardPublic):
    history: list[HazardChange] = Field(description="every step, oldest first")
    evidence: list[EvidencePublic] = Field(description="the files, oldest first")


class Vocabulary(BaseModel):
    """The words hazard records use."""

    model_config = Open
    categories: dict[str, str] = Field(description="category → its wording (Chinese)")
    standards: dict[str, str] = Field(description="sector → the standard its categories follow")
    causes: dict[str, str] = Field(description="follow-up causes → their wording (Chinese)")
    sources: list[str]
    grades: list[str]
    states: list[str]
    steps: dict[str, list[str]] = Field(description="step → the roles that may take it")


class TimeLimit(BaseModel):
    """A time limit (时限) of an alert level or a hazard grade."""

    model_config = Open
    subject: str = Field(description="red, orange, yellow, blue (alerts) or major, general")
    ack_s: float | None = Field(description="alerts: seconds to acknowledge; hazards: none")
    feedback_s: float = Field(
        description="alerts: seconds to the follow-up record; hazards: seconds per level"
        " climbed past the deadline"
    )


class HazardCounts(BaseModel):
    model_config = Open
    found: int = Field(description="hazards reported")
    confirmed: int
    awaiting_review: int = Field(description="rectified, waiting for sign-off")
    rectified: int = Field(description="signed off (销号)")
    dismissed: int
    overdue: int = Field(description="open and past their deadline now")
    major_open: int
    major_listed: int = Field(description="major, open and under listed supervision")
    sent_back: int = Field(description="sent back at least once")
    rectification_rate: float | None = Field(
        description="整改率: signed off / (found − dismissed); none when nothing counts"
    )


class HazardGroup(HazardCounts):
    period: str | None = Field(description="the first day of the period; none for `all`")
    division: str | None = Field(description="GB/T 2260 code, rolled up to `by`")
    division_name: str | None
    sector: str | None


class HazardFigures(BaseModel):
    """Hazards reported in [since, until), per period × division × sector."""

    model_config = Open
    since: Timestamp
    until: Timestamp
    period: Literal["day", "week", "month", "all"]
    by: Literal["province", "city", "county"] = Field(description="the division level of groups")
    groups: list[HazardGroup]
    total: HazardCounts


class FollowUpPublic(BaseModel):
    """超限报警追查: the follow-up record of an alarm."""

    model_config = Open
    alert_id: str
    cause: str = Field(description="one of GET /api/v1/hazards/vocabulary `causes`")
    cause_zh: str = Field(description="the cause in Chinese")
    measures: str = Field(description="what was done")
    recorded_by: str
    recorded_at: Timestamp = Field(description="counts as the time of on-site feedback")
