"""Marks on an alert and whether people hear about a change (Alertmanager's inhibit/silence).

- `suppressed`: the alert's enterprise, site, device or point is inside a maintenance window.
- `unreliable`: a hazard alert on a point whose sensor has an open device-health alert
  (fault, stuck, offline): the health alert carries the weight.
- `chattering`: the alert reopened more than K times within T (ISA-18.2); people get one
  notice when it starts chattering, not one per flap.

Marks are recomputed at every change and stored on the alert and in its history. They
decide only `notify` (MQTT, webhooks, escalation); the machine feed `yj.alerts` and the
database keep every change, marked, so a subscriber can still rebuild the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from yujing.alerts.model import Alert, Change
from yujing.db import Conn


@dataclass(frozen=True, slots=True)
class Context:
    """What the store found about the alert's surroundings at the time of the change."""

    in_maintenance: bool
    point_faulty: bool
    reopens_in_window: int


def apply_marks(alert: Alert, before: Alert | None, ctx: Context, max_reopens: int) -> bool:
    """Set the marks on `alert` (the alert after the change); returns whether people are told."""
    alert.suppressed = ctx.in_maintenance
    alert.unreliable = not alert.health and ctx.point_faulty
    alert.chattering = ctx.reopens_in_window > max_reopens
    if alert.suppressed or alert.unreliable:
        return False
    if alert.chattering:
        # The change that starts the chattering is the one notice people get.
        return before is None or not before.chattering
    return True


async def context(
    conn: Conn, alert: Alert, change: Change, at: datetime, window: timedelta
) -> Context:
    """Reads the maintenance windows, health alerts and reopen history the marks depend on,
    in one round trip (it runs inside the store's per-change transaction)."""
    row = await conn.fetchrow(_CONTEXT, alert.enterprise, alert.site, alert.device, alert.point,
                              at, alert.id, alert.health, at - window)  # fmt: skip
    assert row is not None
    reopens = int(row["reopens"]) + (1 if change is Change.REOPENED else 0)
    return Context(bool(row["maintenance"]), bool(row["faulty"]), reopens)


# $1 enterprise, $2 site, $3 device, $4 point, $5 time of the change, $6 alert id, $7 is the
# alert a health alert, $8 start of the flapping window. A device-level health alert (no
# point: the device is offline) covers every point of the device. The change being recorded
# is not in the history yet, so a reopening counts itself in `context`.
_CONTEXT = """
SELECT
  EXISTS (SELECT 1 FROM maintenance_windows WHERE enterprise = $1
          AND (site IS NULL OR site = $2) AND (device IS NULL OR device = $3)
          AND (point IS NULL OR point = $4) AND starts_at <= $5 AND ends_at > $5) AS maintenance,
  (NOT $7 AND $3::text IS NOT NULL AND EXISTS (
          SELECT 1 FROM alerts WHERE health AND enterprise = $1 AND device = $3
          AND (point IS NULL OR point = $4) AND id <> $6
          AND state IN ('active', 'acknowledged'))) AS faulty,
  (SELECT count(*) FROM alert_transitions WHERE alert_id = $6 AND transition = 'reopened'
          AND at > $8 AND at <= $5) AS reopens
"""
