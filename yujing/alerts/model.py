"""The alert of docs/contracts.md ("Alerts"): one per key until closed, with its states."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from yujing.levels import Level


class AlertState(enum.StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Change(enum.StrEnum):
    """The transitions of the public feed (CloudEvents type `cn.yujing.alert.<change>`)."""

    RAISED = "raised"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"


@dataclass(slots=True)
class Alert:
    id: str
    key: str
    enterprise: str
    site: str | None
    device: str | None
    point: str | None
    rule_id: str
    rule_version: int
    kind: str
    level: Level
    peak_level: Level
    state: AlertState
    value: float | None
    threshold: float | None
    unit: str
    occurrences: int
    started_at: datetime
    changed_at: datetime
    message: str
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    disposal: str | None = None
    seq: int = 0
    last_event_ts: int = 0
    # Marks (docs/contracts.md "Marks"): kept on the record and on every transition.
    health: bool = False
    suppressed: bool = False
    chattering: bool = False
    unreliable: bool = False
    active_since: datetime | None = None
    # Where it belongs, fixed when raised (yujing/registry): GB/T 2260 division of the
    # enterprise, sector, major-hazard installation of the device.
    division: str | None = None
    sector: str | None = None
    installation: str | None = None

    def public(self) -> dict[str, Any]:
        """The wire form: colour words, RFC 3339 times."""
        out = asdict(self)
        out.pop("last_event_ts")
        out["level"] = self.level.word
        out["peak_level"] = self.peak_level.word
        out["state"] = self.state.value
        for name, value in out.items():
            if isinstance(value, datetime):
                out[name] = value.isoformat()
        return out

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        data = dict(row)
        data["level"] = Level(data["level"])
        data["peak_level"] = Level(data["peak_level"])
        data["state"] = AlertState(data["state"])
        return cls(**data)


COLUMNS = (
    "id", "key", "enterprise", "site", "device", "point", "rule_id", "rule_version", "kind",
    "level", "peak_level", "state", "value", "threshold", "unit", "occurrences", "started_at",
    "changed_at", "message", "resolved_at", "acknowledged_at", "acknowledged_by", "closed_at",
    "closed_by", "disposal", "seq", "last_event_ts", "health", "suppressed", "chattering",
    "unreliable", "active_since", "division", "sector", "installation",
)  # fmt: skip
