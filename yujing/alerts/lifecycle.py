"""The alert lifecycle as pure functions: (alert, input, clock) → (alert, change) or a refusal.

active → acknowledged (operator) → resolved (condition cleared) → closed (operator, with a
disposal note). A level rise re-arms an acknowledged alert; a condition that returns before
the alert is closed reopens the same alert.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from ulid import ULID

from yujing.alerts.model import Alert, AlertState, Change
from yujing.levels import Level
from yujing.rules.transition import Transition


class LifecycleError(Exception):
    """An operator action the alert's state does not allow (HTTP 409)."""


def event_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def on_level_change(alert: Alert | None, t: Transition) -> tuple[Alert, Change] | None:
    """Apply an engine level change to the open alert of its key (None if there is none).
    Returns None when the change does not alter the alert (e.g. a replayed or stale one)."""
    to = Level(t.to_level)
    at = event_time(t.ts)
    if alert is None:
        if to is Level.NONE:
            return None
        return _raise(t, to, at), Change.RAISED
    if t.ts < alert.last_event_ts:
        return None  # older than what the alert already reflects
    if to is Level.NONE:
        if alert.state not in (AlertState.ACTIVE, AlertState.ACKNOWLEDGED):
            return None
        resolved = dataclasses.replace(
            alert, state=AlertState.RESOLVED, resolved_at=at, value=t.value, changed_at=at,
            last_event_ts=t.ts, message=t.message(), active_since=None,
        )  # fmt: skip
        return resolved, Change.RESOLVED
    if alert.state is AlertState.RESOLVED:
        # The condition came back before anyone closed the alert: same alert, once more.
        change, state, occurrences = Change.REOPENED, AlertState.ACTIVE, alert.occurrences + 1
        acknowledged_at, acknowledged_by = None, None
    elif to != alert.level:
        # A rise re-arms an acknowledged alert: people must look again.
        rise = to > alert.level
        change = Change.ESCALATED if rise else Change.DEESCALATED
        state = AlertState.ACTIVE if rise else alert.state
        occurrences = alert.occurrences
        acknowledged_at, acknowledged_by = alert.acknowledged_at, alert.acknowledged_by
    else:
        return None
    # Escalation counts unacknowledged time from the moment people were (again) asked to look.
    active_since = alert.active_since if alert.state is AlertState.ACTIVE else at
    updated = dataclasses.replace(
        alert, state=state, level=to, peak_level=max(alert.peak_level, to), value=t.value,
        threshold=t.threshold, rule_version=t.rule_version, occurrences=occurrences,
        resolved_at=None, acknowledged_at=acknowledged_at, acknowledged_by=acknowledged_by,
        changed_at=at, last_event_ts=t.ts, message=t.message(),
        active_since=active_since if state is AlertState.ACTIVE else alert.active_since,
    )  # fmt: skip
    return updated, change


def _raise(t: Transition, to: Level, at: datetime) -> Alert:
    return Alert(
        id=f"a-{ULID()}",
        key=t.key,
        enterprise=t.enterprise,
        site=t.site,
        device=t.device,
        point=t.point,
        rule_id=t.rule_id,
        rule_version=t.rule_version,
        kind=t.kind,
        level=to,
        peak_level=to,
        state=AlertState.ACTIVE,
        value=t.value,
        threshold=t.threshold,
        unit=t.unit,
        occurrences=1,
        started_at=at,
        changed_at=at,
        message=t.message(),
        last_event_ts=t.ts,
        health=t.health,
        active_since=at,
    )


def acknowledge(alert: Alert, who: str, now: datetime) -> tuple[Alert, Change]:
    if alert.state is not AlertState.ACTIVE:
        raise LifecycleError(f"alert is {alert.state.value}; only an active alert is acknowledged")
    return dataclasses.replace(
        alert, state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=who,
        changed_at=now, active_since=None,
    ), Change.ACKNOWLEDGED  # fmt: skip


def close(alert: Alert, who: str, disposal: str, now: datetime) -> tuple[Alert, Change]:
    if not disposal.strip():
        raise LifecycleError("closing an alert needs a disposal note (闭环)")
    if alert.state is AlertState.CLOSED:
        raise LifecycleError(f"alert is already closed (by {alert.closed_by})")
    if alert.state is not AlertState.RESOLVED:
        raise LifecycleError(
            f"alert is {alert.state.value}; it can be closed only after the condition has resolved"
        )
    return dataclasses.replace(
        alert, state=AlertState.CLOSED, closed_at=now, closed_by=who, disposal=disposal,
        changed_at=now,
    ), Change.CLOSED  # fmt: skip
