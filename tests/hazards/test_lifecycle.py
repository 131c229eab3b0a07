"""The hazard lifecycle as timelines: people and the overdue check at wall times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yujing.hazards import lifecycle, limits
from yujing.hazards.jurisdiction import SYSTEM, Actor, Tier, tier_of_division, tier_of_divisions
from yujing.hazards.model import Grade, Hazard, Source, State, Step

T0 = datetime(2025, 11, 23, 8, 0, tzinfo=UTC)
OP = Actor("op-wang", "operator")
OP2 = Actor("op-zhao", "operator")
COUNTY = Actor("sup-county", "supervisor", Tier.COUNTY)
CITY = Actor("sup-city", "supervisor", Tier.CITY)
ADMIN = Actor("admin", "admin")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def reported(grade: Grade = Grade.GENERAL) -> Hazard:
    r = lifecycle.Report(
        enterprise="ent1", source=Source.SELF_CHECK, grade=grade, category="dust.no_airlock",
        description="2号除尘器无锁气卸灰", site="ws-2", device="dc-2",
    )  # fmt: skip
    h, step = lifecycle.report(r, OP, at(0))
    assert (step, h.state, h.reported_by) == (Step.REPORTED, State.REPORTED, "op-wang")
    return h


def planned(grade: Grade = Grade.GENERAL, deadline_h: float = 72) -> Hazard:
    h, _ = lifecycle.confirm(reported(grade), COUNTY, at(1))
    p = lifecycle.Plan("设备科", "李工", "加装星型卸灰阀", at(deadline_h))
    h, step = lifecycle.plan(h, OP, p, at(2))
    assert (step, h.state, h.deadline, h.rectifying_since) == (
        Step.RECTIFYING, State.RECTIFYING, at(deadline_h), at(2),
    )  # fmt: skip
    return h


def test_reported_confirmed_rectified_signed_off() -> None:
    h = planned()
    h, step = lifecycle.rectified(h, OP, 1, "已加装并试运行", at(30))
    assert (step, h.state, h.rectified_by, h.rectified_at) == (
        Step.RECTIFIED, State.RECTIFIED, "op-wang", at(30),
    )  # fmt: skip
    h, step = lifecycle.sign_off(h, COUNTY, at(40))
    assert (step, h.state, h.signed_off_by, h.signed_off_at) == (
        Step.SIGNED_OFF, State.SIGNED_OFF, "sup-county", at(40),
    )  # fmt: skip


def test_rectified_needs_evidence_since_rectification_started() -> None:
    h = planned()
    with pytest.raises(lifecycle.MissingEvidence) as err:
        lifecycle.rectified(h, OP, 0, "已整改", at(10))
    assert err.value.status == 422


def test_sent_back_with_a_reason_and_rectified_again() -> None:
    h = planned()
    h, _ = lifecycle.rectified(h, OP, 1, "已整改", at(10))
    with pytest.raises(lifecycle.Invalid):
        lifecycle.send_back(h, COUNTY, "  ", at(11))
    h, step = lifecycle.send_back(h, COUNTY, "照片未显示卸灰阀铭牌", at(11))
    assert (step, h.state, h.sent_back, h.reason, h.rectifying_since, h.rectified_by) == (
        Step.SENT_BACK, State.RECTIFYING, 1, "照片未显示卸灰阀铭牌", at(11), None,
    )  # fmt: skip
    h, _ = lifecycle.rectified(h, OP2, 1, "补充铭牌照片", at(12))
    h, step = lifecycle.sign_off(h, COUNTY, at(13))
    assert (step, h.state) == (Step.SIGNED_OFF, State.SIGNED_OFF)


def test_roles_and_wrong_states_are_refused() -> None:
    h = reported()
    with pytest.raises(lifecycle.WrongState) as wrong:
        lifecycle.sign_off(h, COUNTY, at(1))
    assert wrong.value.status == 409
    for who in (ADMIN, Actor("v", "viewer")):
        with pytest.raises(lifecycle.NotAllowed) as denied:
            lifecycle.confirm(h, who, at(1))
        assert denied.value.status == 403
    h = planned()
    with pytest.raises(lifecycle.NotAllowed):  # supervisors review; they do not rectify
        lifecycle.rectified(h, COUNTY, 1, "x", at(3))
    h, _ = lifecycle.rectified(h, OP, 1, "x", at(3))
    with pytest.raises(lifecycle.NotAllowed):  # an operator cannot sign off, whatever rank
        lifecycle.sign_off(h, OP2, at(4))


def test_nobody_signs_off_their_own_rectification() -> None:
    h = planned()
    rectifier = Actor("li", "operator")
    h, _ = lifecycle.rectified(h, rectifier, 1, "x", at(3))
    # the same person, now holding a supervisor token
    with pytest.raises(lifecycle.NotAllowed, match="own rectification"):
        lifecycle.sign_off(h, Actor("li", "supervisor", Tier.COUNTY), at(4))


def test_listed_supervision_only_that_level_signs_off() -> None:
    general = planned()
    with pytest.raises(lifecycle.WrongState, match="major"):
        lifecycle.list_for_supervision(general, CITY, at(100), at(3))
    h = planned(Grade.MAJOR)
    h, step = lifecycle.list_for_supervision(h, CITY, at(100), at(3))
    assert (step, h.listed_tier, h.listed_deadline, h.due) == (
        Step.LISTED, Tier.CITY, at(100), at(100),
    )  # fmt: skip
    with pytest.raises(lifecycle.NotAllowed, match="already listed"):
        lifecycle.list_for_supervision(h, COUNTY, at(90), at(4))
    h, _ = lifecycle.rectified(h, OP, 1, "x", at(5))
    with pytest.raises(lifecycle.NotAllowed, match="city level"):
        lifecycle.sign_off(h, COUNTY, at(6))
    with pytest.raises(lifecycle.NotAllowed, match="city level"):
        lifecycle.send_back(h, Actor("p", "supervisor", Tier.PROVINCE), "no", at(6))
    h, step = lifecycle.sign_off(h, CITY, at(6))
    assert (step, h.state, h.signed_off_by) == (Step.SIGNED_OFF, State.SIGNED_OFF, "sup-city")


def test_past_due_flags_then_climbs_one_level_at_a_time() -> None:
    h = planned(deadline_h=72)
    assert lifecycle.past_due(h, Tier.COUNTY, at(71)) is None
    step_s = timedelta(hours=24)
    tier = limits.tier_for(at(73) - at(72), step_s)
    h, step = lifecycle.past_due(h, tier, at(73)) or (h, None)
    assert (step, h.overdue, h.escalated_tier) == (Step.OVERDUE, True, Tier.ENTERPRISE)
    h, step = lifecycle.past_due(h, tier, at(73)) or (h, None)
    assert (step, h.escalated_tier) == (Step.ESCALATED, Tier.COUNTY)
    assert lifecycle.past_due(h, tier, at(74)) is None  # county already told
    tier = limits.tier_for(at(72 + 24) - at(72), step_s)
    h, step = lifecycle.past_due(h, tier, at(96)) or (h, None)
    assert (step, h.escalated_tier) == (Step.ESCALATED, Tier.CITY)
    assert limits.tier_for(timedelta(days=30), step_s) is Tier.PROVINCE
    h, _ = lifecycle.rectified(h, OP, 1, "终于完成", at(97))
    assert not h.overdue and lifecycle.past_due(h, Tier.PROVINCE, at(200)) is None


def test_proposals_come_from_the_system_and_link_alerts() -> None:
    r = lifecycle.Report(
        enterprise="ent1", source=Source.ALARM, grade=Grade.GENERAL,
        category="general.repeated_alarm", description="3 alarms", device="gd-1", point="ch4",
        alert_ids=("a-1", "a-2", "a-1"),
    )  # fmt: skip
    h, step = lifecycle.report(r, SYSTEM, at(0))
    assert (step, h.alert_ids, h.reported_by) == (Step.PROPOSED, ["a-1", "a-2"], "yujing")
    h, step = lifecycle.link(h, SYSTEM, ["a-2", "a-3"], at(1))
    assert (step, h.alert_ids) == (Step.LINKED, ["a-1", "a-2", "a-3"])
    with pytest.raises(lifecycle.WrongState):
        lifecycle.link(h, SYSTEM, ["a-3"], at(2))
    with pytest.raises(lifecycle.Invalid, match="alert_ids"):
        lifecycle.report(
            lifecycle.Report("ent1", Source.ALARM, Grade.GENERAL, "general.other", "x"), OP, at(0)
        )
    with pytest.raises(lifecycle.Invalid, match="category"):
        lifecycle.report(
            lifecycle.Report("ent1", Source.SELF_CHECK, Grade.GENERAL, "nope", "x"), OP, at(0)
        )


def test_dismissed_only_by_a_supervisor_with_a_reason() -> None:
    h = reported()
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.dismiss(h, OP, "误报", at(1))
    h, step = lifecycle.dismiss(h, COUNTY, "传感器标校期间误报", at(1))
    assert (step, h.state, h.reason) == (Step.DISMISSED, State.DISMISSED, "传感器标校期间误报")


@pytest.mark.parametrize(
    ("codes", "everything", "tier"),
    [
        (["320000"], False, Tier.PROVINCE),
        (["320100"], False, Tier.CITY),
        (["320102"], False, Tier.COUNTY),
        (["320102", "320500"], False, Tier.CITY),
        (None, False, Tier.COUNTY),
        (None, True, Tier.PROVINCE),
    ],
)
def test_a_supervisors_level_comes_from_the_division_codes(
    codes: list[str] | None, everything: bool, tier: Tier
) -> None:
    assert tier_of_divisions(codes, everything=everything) is tier


def test_division_levels() -> None:
    assert [tier_of_division(c) for c in ("110000", "110100", "110105")] == [
        Tier.PROVINCE, Tier.CITY, Tier.COUNTY,
    ]  # fmt: skip


def test_alert_limits_climb_per_multiple_of_the_limit() -> None:
    limit_s = 300.0
    assert limits.alert_tier(at(0), limit_s, at(0) + timedelta(seconds=299)) is None
    assert limits.alert_tier(at(0), limit_s, at(0) + timedelta(seconds=300)) is Tier.COUNTY
    assert limits.alert_tier(at(0), limit_s, at(0) + timedelta(seconds=600)) is Tier.CITY
    assert limits.alert_tier(at(0), limit_s, at(0) + timedelta(seconds=900)) is Tier.PROVINCE
    assert limits.alert_tier(at(0), limit_s, at(5)) is Tier.PROVINCE
