"""The hazard lifecycle as pure functions: (hazard, actor, input, now) → (hazard, step), or a
refusal that says why (wrong state 409, wrong role or level 403, missing evidence 422).

reported → confirmed → rectifying → rectified (with evidence) → signed_off (销号) by a
supervisor who did not rectify it; or sent back to rectifying with a reason. A major hazard
may be put under listed supervision (挂牌督办) by a county, city or province supervisor with
its own deadline; then only that level signs it off (or sends it back).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ulid import ULID

from yujing.hazards.jurisdiction import Actor, Tier
from yujing.hazards.model import OPEN_STATES, Grade, Hazard, Source, State, Step
from yujing.hazards.vocabulary import CATEGORIES

# Who may take which step (the README's table says the same).
ENTERPRISE_STAFF = frozenset({"operator"})
SUPERVISORS = frozenset({"supervisor"})
REPORTERS = ENTERPRISE_STAFF | SUPERVISORS
WHO_MAY = {
    Step.REPORTED: REPORTERS,
    Step.CONFIRMED: REPORTERS,
    Step.DISMISSED: SUPERVISORS,
    Step.RECTIFYING: ENTERPRISE_STAFF,
    Step.EVIDENCE: REPORTERS,
    Step.RECTIFIED: ENTERPRISE_STAFF,
    Step.SENT_BACK: SUPERVISORS,
    Step.SIGNED_OFF: SUPERVISORS,
    Step.LISTED: SUPERVISORS,
    Step.LINKED: REPORTERS,
}


class Refused(Exception):
    """A step the hazard or the actor does not allow; `status` is the HTTP status to give."""

    status = 409


class WrongState(Refused):
    status = 409


class NotAllowed(Refused):
    status = 403


class MissingEvidence(Refused):
    status = 422


class Invalid(Refused):
    status = 422


@dataclass(frozen=True, slots=True)
class Report:
    enterprise: str
    source: Source
    grade: Grade
    category: str
    description: str
    site: str | None = None
    device: str | None = None
    point: str | None = None
    installation: str | None = None
    alert_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    responsible_unit: str
    responsible_person: str
    measures: str
    deadline: datetime


def allowed(step: Step, actor: Actor) -> None:
    if actor.role not in WHO_MAY[step]:
        who = " or ".join(sorted(WHO_MAY[step]))
        raise NotAllowed(f"{step.value} is a step for the {who} role, not {actor.role}")


def _in(hazard: Hazard, step: Step, *states: State) -> None:
    if hazard.state not in states:
        want = ", ".join(s.value for s in states)
        raise WrongState(f"hazard is {hazard.state.value}; {step.value} needs it {want}")


def report(r: Report, actor: Actor, now: datetime) -> tuple[Hazard, Step]:
    """A hazard reported by a person, or (actor `system`) proposed from repeated alarms."""
    step = Step.PROPOSED if actor.role == "system" else Step.REPORTED
    if step is Step.REPORTED:
        allowed(step, actor)
        if r.source is Source.ALARM and not r.alert_ids:
            raise Invalid("a hazard from alarms names the alerts it comes from (alert_ids)")
    if r.category not in CATEGORIES:
        raise Invalid(f"unknown category {r.category!r}; see GET /api/v1/hazards/vocabulary")
    hazard = Hazard(
        id=f"h-{ULID()}", enterprise=r.enterprise, source=r.source, grade=r.grade,
        category=r.category, description=r.description, state=State.REPORTED,
        reported_by=actor.name, reported_at=now, changed_at=now, site=r.site, device=r.device,
        point=r.point, installation=r.installation, alert_ids=list(dict.fromkeys(r.alert_ids)),
    )  # fmt: skip
    return hazard, step


def confirm(
    h: Hazard, actor: Actor, now: datetime, grade: Grade | None = None
) -> tuple[Hazard, Step]:
    allowed(Step.CONFIRMED, actor)
    _in(h, Step.CONFIRMED, State.REPORTED)
    return dataclasses.replace(
        h, state=State.CONFIRMED, confirmed_by=actor.name, confirmed_at=now, changed_at=now,
        grade=grade or h.grade,
    ), Step.CONFIRMED  # fmt: skip


def dismiss(h: Hazard, actor: Actor, reason: str, now: datetime) -> tuple[Hazard, Step]:
    allowed(Step.DISMISSED, actor)
    _in(h, Step.DISMISSED, State.REPORTED, State.CONFIRMED)
    _needs_reason(reason)
    return dataclasses.replace(
        h, state=State.DISMISSED, reason=reason, changed_at=now, overdue=False
    ), Step.DISMISSED


def plan(h: Hazard, actor: Actor, p: Plan, now: datetime) -> tuple[Hazard, Step]:
    """Start rectification (整改): who is responsible, what they will do, by when."""
    allowed(Step.RECTIFYING, actor)
    _in(h, Step.RECTIFYING, State.CONFIRMED)
    if p.deadline <= now:
        raise Invalid("the rectification deadline must be in the future")
    return dataclasses.replace(
        h, state=State.RECTIFYING, responsible_unit=p.responsible_unit,
        responsible_person=p.responsible_person, measures=p.measures, deadline=p.deadline,
        rectifying_since=now, changed_at=now,
    ), Step.RECTIFYING  # fmt: skip


def rectified(
    h: Hazard, actor: Actor, evidence_since_start: int, note: str, now: datetime
) -> tuple[Hazard, Step]:
    """Rectification done: needs at least one evidence file added since it (re)started."""
    allowed(Step.RECTIFIED, actor)
    _in(h, Step.RECTIFIED, State.RECTIFYING)
    if evidence_since_start < 1:
        raise MissingEvidence(
            "rectified needs evidence: upload a photo or PDF of the rectification first"
        )
    _needs_reason(note, "describe what was done")
    return dataclasses.replace(
        h, state=State.RECTIFIED, rectified_by=actor.name, rectified_at=now, changed_at=now,
        overdue=False,
    ), Step.RECTIFIED  # fmt: skip


def _review(h: Hazard, actor: Actor, step: Step) -> None:
    allowed(step, actor)
    _in(h, step, State.RECTIFIED)
    if actor.name == h.rectified_by:
        raise NotAllowed("nobody reviews their own rectification")
    if h.listed_tier is not None and actor.tier != h.listed_tier:
        raise NotAllowed(
            f"this hazard is under listed supervision by the {h.listed_tier.word} level;"
            " only that level signs it off or sends it back"
        )


def sign_off(h: Hazard, actor: Actor, now: datetime) -> tuple[Hazard, Step]:
    _review(h, actor, Step.SIGNED_OFF)
    return dataclasses.replace(
        h, state=State.SIGNED_OFF, signed_off_by=actor.name, signed_off_at=now, changed_at=now,
        overdue=False,
    ), Step.SIGNED_OFF  # fmt: skip


def send_back(h: Hazard, actor: Actor, reason: str, now: datetime) -> tuple[Hazard, Step]:
    """Not accepted: back to rectifying; new evidence is needed before the next `rectified`."""
    _review(h, actor, Step.SENT_BACK)
    _needs_reason(reason)
    return dataclasses.replace(
        h, state=State.RECTIFYING, reason=reason, sent_back=h.sent_back + 1,
        rectifying_since=now, rectified_by=None, rectified_at=None, changed_at=now,
    ), Step.SENT_BACK  # fmt: skip


def list_for_supervision(
    h: Hazard, actor: Actor, deadline: datetime, now: datetime
) -> tuple[Hazard, Step]:
    """挂牌督办 at the actor's level; a higher level may take over, a lower one may not."""
    allowed(Step.LISTED, actor)
    _in(h, Step.LISTED, *OPEN_STATES)
    if h.grade is not Grade.MAJOR:
        raise WrongState("only a major hazard (重大事故隐患) is put under listed supervision")
    if actor.tier is None or actor.tier < Tier.COUNTY:
        raise NotAllowed("listed supervision is by a county, city or province supervisor")
    if h.listed_tier is not None and actor.tier < h.listed_tier:
        raise NotAllowed(f"already listed by the {h.listed_tier.word} level")
    if deadline <= now:
        raise Invalid("the listed-supervision deadline must be in the future")
    return dataclasses.replace(
        h, listed_tier=actor.tier, listed_by=actor.name, listed_at=now, listed_deadline=deadline,
        changed_at=now,
    ), Step.LISTED  # fmt: skip


def link(h: Hazard, actor: Actor, alert_ids: Iterable[str], now: datetime) -> tuple[Hazard, Step]:
    if actor.role != "system":
        allowed(Step.LINKED, actor)
    _in(h, Step.LINKED, *OPEN_STATES)
    merged = list(dict.fromkeys([*h.alert_ids, *alert_ids]))
    if merged == h.alert_ids:
        raise WrongState("those alerts are linked already")
    return dataclasses.replace(h, alert_ids=merged, changed_at=now), Step.LINKED


def evidence_added(h: Hazard, actor: Actor, now: datetime) -> tuple[Hazard, Step]:
    allowed(Step.EVIDENCE, actor)
    _in(h, Step.EVIDENCE, *OPEN_STATES)
    return dataclasses.replace(h, changed_at=now), Step.EVIDENCE


def past_due(h: Hazard, tier: Tier, now: datetime) -> tuple[Hazard, Step] | None:
    """The overdue check's step: first `overdue`, then `escalated` to each higher tier."""
    late = h.state in (State.REPORTED, State.CONFIRMED, State.RECTIFYING)
    if not late or h.due is None or now <= h.due:
        return None
    if not h.overdue:
        return dataclasses.replace(h, overdue=True, changed_at=now), Step.OVERDUE
    if tier <= h.escalated_tier:
        return None
    return dataclasses.replace(h, escalated_tier=tier, changed_at=now), Step.ESCALATED


def _needs_reason(text: str, what: str = "give a reason") -> None:
    if not text.strip():
        raise Invalid(f"this step needs a note: {what}")
