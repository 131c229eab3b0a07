"""Response shapes of the HTTP API as the OpenAPI document shows them, for resources whose
records are built elsewhere (alerts, maintenance windows, dead letters). Extra fields pass
through, so a stage that adds a field to its record does not lose it here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

# Kept as the record renders it (RFC 3339, `+00:00`), the same text SSE and MQTT carry.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

Open = ConfigDict(extra="allow")


class AlertPublic(BaseModel):
    """One alert: the condition of one rule on one point (or group), from raise to close.
    `started_at`, `changed_at` (of engine changes) and `resolved_at` are event time, from the
    device's readings; `acknowledged_at` and `closed_at` are the wall clock of the person's
    action (see docs/contracts.md "Clocks")."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{
                "id": "a-01KB8Z7Q3V2J8W3M0Y9R4T6N5P",
                "key": "shanxi-coal-01/gd-17/ch4/coal-face-ch4",
                "enterprise": "shanxi-coal-01", "site": "face-1", "device": "gd-17", "point": "ch4",
                "rule_id": "coal-face-ch4", "rule_version": 1, "kind": "threshold",
                "level": "red", "peak_level": "red", "state": "active", "value": 1.62,
                "threshold": 1.5, "unit": "%CH4", "occurrences": 1,
                "started_at": "2026-12-01T08:00:15+00:00",
                "changed_at": "2026-12-01T08:00:15+00:00",
                "message": "采煤工作面甲烷 1.62 %CH4 ≥ 1.5 (red)",
            }]
        },
    )  # fmt: skip
    id: str
    key: str = Field(description="enterprise/device/point/rule_id: one alert per key until closed")
    enterprise: str
    site: str | None
    device: str | None
    point: str | None
    rule_id: str
    rule_version: int
    kind: str = Field(description="the rule's kind")
    level: str = Field(description="blue, yellow, orange or red")
    peak_level: str = Field(description="the highest level it reached")
    state: Literal["active", "acknowledged", "resolved", "closed"]
    value: float | None
    threshold: float | None
    unit: str
    occurrences: int = Field(description="1, plus one for each time it came back before closing")
    started_at: Timestamp = Field(description="event time")
    changed_at: Timestamp
    message: str
    resolved_at: Timestamp | None = Field(default=None, description="event time")
    acknowledged_at: Timestamp | None = Field(default=None, description="wall clock")
    acknowledged_by: str | None = None
    closed_at: Timestamp | None = Field(default=None, description="wall clock")
    closed_by: str | None = None
    disposal: str | None = Field(default=None, description="处置记录: what was done")


class AlertPage(BaseModel):
    items: list[AlertPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class AlertChange(BaseModel):
    model_config = Open
    seq: int = Field(description="global order of changes; SSE event id")
    transition: str = Field(description="raised, escalated, deescalated, acknowledged, ...")
    at: Timestamp
    actor: str = Field(description="engine, or the name of the person's token")
    note: str | None
    notify: bool = Field(description="pushed to people (MQTT, webhooks)")
    alert: dict[str, Any] = Field(description="the alert after this change")


class AlertDetail(AlertPublic):
    transitions: list[AlertChange] = Field(description="the history, oldest first")
    escalations: list[dict[str, Any]] = Field(description="escalation notices sent")


class Durations(BaseModel):
    model_config = Open
    n: int
    mean: float | None
    median: float | None
    p90: float | None
    max: float | None
    clock_skewed: int = Field(
        description="pairs whose difference was negative (a device clock ahead of the wall"
        " clock): counted here, never averaged"
    )


class AlarmStats(BaseModel):
    """ISA-18.2 figures over [since, until)."""

    model_config = Open
    since: Timestamp
    until: Timestamp
    rate: list[dict[str, Any]] = Field(description="alarms per 10 minutes, per enterprise")
    standing: dict[str, Any] = Field(description="open for more than 24 h")
    chattering: dict[str, Any]
    top_rules: list[dict[str, Any]]
    top_devices: list[dict[str, Any]]
    time_to_ack_s: Durations
    time_to_close_s: Durations


class MaintenanceWindowPublic(BaseModel):
    model_config = Open
    id: int
    enterprise: str
    site: str | None
    device: str | None
    point: str | None
    starts_at: Timestamp
    ends_at: Timestamp
    reason: str


class MaintenancePage(BaseModel):
    items: list[MaintenanceWindowPublic]
    next_cursor: str | None = None


class DeadLetter(BaseModel):
    id: int
    received_at: Timestamp
    topic: str
    reason: str = Field(description="why ingest refused it (docs/contracts.md 'Dead letters')")
    detail: str | None
    enterprise: str | None
    device: str | None
    payload_b64: str = Field(description="the raw bytes as received, base64")


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class WebhookPublic(BaseModel):
    model_config = Open
    id: str
    url: str
    enterprises: list[str] = Field(description='["*"] for every enterprise')
    min_level: str
    transitions: bool
    escalations: bool
    created_by: str
    created_at: Timestamp


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="the HMAC-SHA256 key: shown only now")


class WebhookPage(BaseModel):
    items: list[WebhookPublic]
    next_cursor: str | None = None


class Delivery(BaseModel):
    model_config = Open
    id: int
    event_id: str
    event_type: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None = None


class AsyncApiDocument(BaseModel):
    """The AsyncAPI 3.0 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0)."""

    model_config = Open
    asyncapi: str
    info: dict[str, Any]
    channels: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok"]


class StageStatus(BaseModel):
    state: Literal["running", "restarting", "stopped"]
    restarts: int = Field(description="times the supervisor restarted it since the process began")
    error: str | None = Field(description="its last failure")


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, bool] = Field(
        description="each dependency: reachable now? and each stage (`stage:<name>`): not"
        " waiting to be restarted?"
    )
    stages: dict[str, StageStatus] = Field(
        default_factory=dict, description="the stages this process runs"
    )


class AlarmStatistics(BaseModel):
    """Alarms raised in [since, until), grouped by period, division, sector, level."""

    model_config = Open
    since: Timestamp
    until: Timestamp
    period: str
    by: str = Field(description="the division level of the groups")
    groups: list[dict[str, Any]]


class HeadCount(BaseModel):
    """People in each site, from the seals' person_in / person_out counts since `since`."""

    model_config = Open
    enterprise: str
    since: Timestamp
    sites: list[dict[str, Any]]


class OnlineStatistics(BaseModel):
    """Online rate (在线率) over whole hours: per enterprise, division and sector."""

    model_config = Open
    since: Timestamp
    until: Timestamp
    hours: int
    items: list[dict[str, Any]]
    by_division: list[dict[str, Any]]
    by_sector: list[dict[str, Any]]
