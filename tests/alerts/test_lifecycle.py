"""The alert lifecycle as timelines: level changes at event times, operators in between."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from yujing.alerts import lifecycle, marks
from yujing.alerts.model import Alert, AlertState, Change
from yujing.levels import Level
from yujing.rules.transition import Transition

T0 = 1_763_856_000_000


def level(at_s: float, frm: Level, to: Level, value: float = 1.0) -> Transition:
    return Transition(
        key="ent1/dev-17/ch4/coal-face-ch4", enterprise="ent1", site="face-3", device="dev-17",
        point="ch4", rule_id="coal-face-ch4", rule_version=3, kind="threshold",
        from_level=int(frm), to_level=int(to), ts=T0 + int(at_s * 1000), value=value,
        threshold=1.0, unit="%CH4", rule_name="采煤工作面甲烷",
    )  # fmt: skip


def wall(at_s: float) -> datetime:
    return datetime.fromtimestamp((T0 + at_s * 1000) / 1000, tz=UTC)


def step(alert: Alert | None, t: Transition) -> tuple[Alert, Change]:
    result = lifecycle.on_level_change(alert, t)
    assert result is not None
    return result


def test_raise_escalate_ack_resolve_close() -> None:
    a, change = step(None, level(1, Level.NONE, Level.ORANGE, 1.1))
    assert (change, a.state, a.level, a.peak_level) == (
        Change.RAISED, AlertState.ACTIVE, Level.ORANGE, Level.ORANGE,
    )  # fmt: skip
    assert a.message == "采煤工作面甲烷 1.1 %CH4 ≥ 1（橙色）"
    a, change = step(a, level(5, Level.ORANGE, Level.RED, 1.6))
    assert (change, a.level, a.peak_level) == (Change.ESCALATED, Level.RED, Level.RED)
    a, change = lifecycle.acknowledge(a, "op-wang", wall(8))
    assert (change, a.state, a.acknowledged_by) == (
        Change.ACKNOWLEDGED, AlertState.ACKNOWLEDGED, "op-wang",
    )  # fmt: skip
    a, change = step(a, level(20, Level.RED, Level.ORANGE, 1.2))
    assert (change, a.state, a.level, a.peak_level) == (
        Change.DEESCALATED, AlertState.ACKNOWLEDGED, Level.ORANGE, Level.RED,
    )  # fmt: skip
    a, change = step(a, level(30, Level.ORANGE, Level.NONE, 0.4))
    assert (change, a.state, a.resolved_at) == (Change.RESOLVED, AlertState.RESOLVED, wall(30))
    a, change = lifecycle.close(a, "insp-li", "通风恢复, 已复电", wall(60))
    assert (change, a.state, a.disposal, a.closed_by) == (
        Change.CLOSED, AlertState.CLOSED, "通风恢复, 已复电", "insp-li",
    )  # fmt: skip


def test_a_rise_re_arms_an_acknowledged_alert() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.YELLOW))
    a, _ = lifecycle.acknowledge(a, "op", wall(2))
    a, change = step(a, level(3, Level.YELLOW, Level.ORANGE))
    assert (change, a.state) == (Change.ESCALATED, AlertState.ACTIVE)


def test_a_returning_condition_reopens_the_same_alert() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.ORANGE))
    a, _ = lifecycle.acknowledge(a, "op", wall(2))
    a, _ = step(a, level(3, Level.ORANGE, Level.NONE))
    first_id = a.id
    a, change = step(a, level(9, Level.NONE, Level.YELLOW))
    assert (change, a.id, a.state, a.occurrences, a.level) == (
        Change.REOPENED, first_id, AlertState.ACTIVE, 2, Level.YELLOW,
    )  # fmt: skip
    assert a.acknowledged_by is None and a.resolved_at is None
    assert a.peak_level is Level.ORANGE


def test_close_needs_resolution_and_a_disposal_note() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.RED))
    with pytest.raises(lifecycle.LifecycleError, match="only after the condition has resolved"):
        lifecycle.close(a, "op", "done", wall(2))
    a, _ = step(a, level(3, Level.RED, Level.NONE))
    with pytest.raises(lifecycle.LifecycleError, match="disposal"):
        lifecycle.close(a, "op", "  ", wall(4))


def test_only_an_active_alert_is_acknowledged() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.RED))
    a, _ = lifecycle.acknowledge(a, "op", wall(2))
    with pytest.raises(lifecycle.LifecycleError, match="acknowledged"):
        lifecycle.acknowledge(a, "op", wall(3))


def test_replays_and_stale_changes_change_nothing() -> None:
    assert lifecycle.on_level_change(None, level(1, Level.ORANGE, Level.NONE)) is None
    a, _ = step(None, level(5, Level.NONE, Level.ORANGE))
    assert lifecycle.on_level_change(a, level(5, Level.NONE, Level.ORANGE)) is None
    assert lifecycle.on_level_change(a, level(2, Level.ORANGE, Level.RED)) is None


def test_active_since_counts_from_when_people_were_asked_to_look() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.ORANGE))
    assert a.active_since == wall(1)
    a, _ = step(a, level(4, Level.ORANGE, Level.RED))  # still the same unanswered call
    assert a.active_since == wall(1)
    a, _ = lifecycle.acknowledge(a, "op", wall(5))
    assert a.active_since is None
    a, _ = step(a, level(6, Level.RED, Level.ORANGE))  # a fall does not re-arm
    assert (a.state, a.active_since) == (AlertState.ACKNOWLEDGED, None)
    a, _ = step(a, level(7, Level.ORANGE, Level.RED))  # a rise does
    assert (a.state, a.active_since) == (AlertState.ACTIVE, wall(7))
    a, _ = step(a, level(8, Level.RED, Level.NONE))
    assert a.active_since is None
    a, _ = step(a, level(9, Level.NONE, Level.YELLOW))  # reopened
    assert a.active_since == wall(9)


def test_marks_decide_who_is_told() -> None:
    a, _ = step(None, level(1, Level.NONE, Level.RED))
    quiet = marks.Context(in_maintenance=False, point_faulty=False, reopens_in_window=0)
    assert marks.apply_marks(a, None, quiet, max_reopens=3)
    assert not marks.apply_marks(a, None, dataclasses.replace(quiet, in_maintenance=True), 3)
    assert a.suppressed
    assert not marks.apply_marks(a, None, dataclasses.replace(quiet, point_faulty=True), 3)
    assert a.unreliable and not a.suppressed
    health = dataclasses.replace(a, health=True)
    assert marks.apply_marks(health, None, dataclasses.replace(quiet, point_faulty=True), 3)
    assert not health.unreliable  # the health alert itself carries the weight
    flapping = dataclasses.replace(quiet, reopens_in_window=4)
    before = dataclasses.replace(a, chattering=False)
    assert marks.apply_marks(a, before, flapping, 3) and a.chattering  # the one notice
    assert not marks.apply_marks(a, dataclasses.replace(a), flapping, 3)  # then quiet
