"""The AsyncAPI 3.0 document of yujing's message channels: what subscribers can rely on
(`yj.alerts` on Kafka, `yj/alerts/{enterprise}/{level}` and `yj/hazards/{enterprise}/{grade}`
on MQTT, webhooks' payload) and the device topics; the internal Kafka topics come from the
topic table (`yujing.ingest.topics`), their record schemas from its msgspec types. Hazard
steps share `yj.alerts` and its `seq` with alerts."""

from __future__ import annotations

from typing import Any

import msgspec

from yujing import __version__
from yujing.ingest.topics import TABLE, Topics

LEVELS = ["blue", "yellow", "orange", "red"]
TRANSITIONS = [
    "raised", "escalated", "deescalated", "acknowledged", "resolved", "reopened", "closed",
]  # fmt: skip
# Kept equal to yujing.hazards.model (tests/hazards/test_docs.py checks it).
HAZARD_STEPS = [
    "reported", "proposed", "confirmed", "dismissed", "rectifying", "evidence_added",
    "rectified", "sent_back", "signed_off", "listed", "linked", "escalated", "overdue",
]  # fmt: skip
HAZARD_STATES = ["reported", "confirmed", "rectifying", "rectified", "signed_off", "dismissed"]
TIERS = ["enterprise", "county", "city", "province"]
_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}

ALERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An alert (docs/contracts.md \"Alerts\") with yujing's marks.",
    "required": [
        "id", "key", "seq", "enterprise", "rule_id", "rule_version", "kind", "level",
        "peak_level", "state", "occurrences", "started_at", "changed_at", "message",
    ],
    "properties": {
        "id": {"type": "string"}, "key": {"type": "string"}, "seq": {"type": "integer"},
        "enterprise": {"type": "string"}, "site": _TEXT, "device": _TEXT, "point": _TEXT,
        "rule_id": {"type": "string"}, "rule_version": {"type": "integer"},
        "kind": {"type": "string"}, "level": {"enum": LEVELS}, "peak_level": {"enum": LEVELS},
        "state": {"enum": ["active", "acknowledged", "resolved", "closed"]},
        "value": {"type": ["number", "null"]}, "threshold": {"type": ["number", "null"]},
        "unit": {"type": "string"}, "occurrences": {"type": "integer", "minimum": 1},
        "started_at": {"type": "string", "format": "date-time"},
        "changed_at": {"type": "string", "format": "date-time"},
        "resolved_at": _TIME, "acknowledged_at": _TIME, "acknowledged_by": _TEXT,
        "closed_at": _TIME, "closed_by": _TEXT, "disposal": _TEXT,
        "message": {"type": "string"},
        "health": {"type": "boolean", "description": "raised by a device-health rule"},
        "suppressed": {"type": "boolean", "description": "inside a maintenance window"},
        "chattering": {"type": "boolean", "description": "reopened more than K times in T"},
        "unreliable": {"type": "boolean", "description": "its sensor is faulty/stuck/offline"},
        "active_since": _TIME,
    },
}  # fmt: skip

CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "subject", "time", "seq", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "description": "{alert id}-{seq}: equal on redelivery"},
        "source": {"type": "string", "pattern": "^/yujing/enterprises/"},
        "type": {"enum": [f"cn.yujing.alert.{t}" for t in TRANSITIONS]},
        "subject": {"type": "string", "description": "the alert key"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        "seq": {"type": "integer", "description": "global, in commit order"},
        "actor": {"type": "string"},
        "notify": {"type": "boolean", "description": "false: not pushed to people"},
        "reason": {
            "enum": ["unacknowledged", "ack_overdue", "feedback_overdue"],
            "description": "escalation notices only: unacknowledged past escalate_after_s, or"
            " past the level's time to acknowledge / to on-site feedback (tiered push)",
        },
        "notice": {"type": "integer", "description": "escalation notices only"},
        "tier": {"enum": TIERS[1:], "description": "tiered pushes: the level pushed to"},
        "data": {"$ref": "#/components/schemas/Alert"},
    },
}

HAZARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A hidden hazard (隐患) after a step; README \"Hazards\".",
    "required": [
        "id", "seq", "enterprise", "source", "grade", "category", "description", "state",
        "reported_by", "reported_at", "changed_at", "alert_ids", "overdue", "escalated_tier",
    ],
    "properties": {
        "id": {"type": "string"}, "seq": {"type": "integer"}, "enterprise": {"type": "string"},
        "source": {"enum": ["alarm", "inspection", "self_check", "public_report"]},
        "grade": {"enum": ["general", "major"]}, "category": {"type": "string"},
        "description": {"type": "string"}, "state": {"enum": HAZARD_STATES},
        "site": _TEXT, "device": _TEXT, "point": _TEXT, "installation": _TEXT,
        "reported_by": {"type": "string"}, "reported_at": {"type": "string", "format": "date-time"},
        "changed_at": {"type": "string", "format": "date-time"},
        "confirmed_by": _TEXT, "confirmed_at": _TIME, "responsible_unit": _TEXT,
        "responsible_person": _TEXT, "measures": _TEXT, "deadline": _TIME,
        "rectifying_since": _TIME, "rectified_by": _TEXT, "rectified_at": _TIME,
        "signed_off_by": _TEXT, "signed_off_at": _TIME, "reason": _TEXT,
        "sent_back": {"type": "integer", "minimum": 0},
        "listed_tier": {"enum": [*TIERS[1:], None]}, "listed_by": _TEXT, "listed_at": _TIME,
        "listed_deadline": _TIME, "due": _TIME, "escalated_tier": {"enum": TIERS},
        "overdue": {"type": "boolean"},
        "alert_ids": {"type": "array", "items": {"type": "string"}},
    },
}  # fmt: skip

HAZARD_CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "subject", "time", "seq", "data"],
    "properties": {
        **CLOUDEVENT_SCHEMA["properties"],
        "id": {"type": "string", "description": "{hazard id}-{seq}: equal on redelivery"},
        "type": {"enum": [f"cn.yujing.hazard.{t}" for t in HAZARD_STEPS]},
        "subject": {"type": "string", "description": "the hazard id"},
        "tier": {"enum": TIERS[1:], "description": "escalated steps: the level pushed to"},
        "data": {"$ref": "#/components/schemas/Hazard"},
    },
}

MQTT_HAZARD_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Hazard"},
        {
            "type": "object",
            "required": ["transition"],
            "properties": {"transition": {"enum": HAZARD_STEPS}},
        },
    ]
}

MQTT_ALERT_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Alert"},
        {
            "type": "object",
            "required": ["transition"],
            "properties": {"transition": {"enum": TRANSITIONS}},
        },
    ]
}


def _internal(address: str, description: str, content_type: str) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {
            "record": {"contentType": content_type, "payload": {"description": description}}
        },
    }


def _kafka_channels() -> tuple[dict[str, Any], dict[str, Any]]:
    """A channel per internal topic of the table, and the schemas of its record types."""
    internal = [t for t in TABLE.values() if t.internal]
    refs, schemas = msgspec.json.schema_components(
        [tp for t in internal for tp in t.types], ref_template="#/components/schemas/{name}"
    )
    at = iter(refs)
    channels: dict[str, Any] = {}
    for t in internal:
        own = [next(at) for _ in t.types]
        payload = {"oneOf": own} if len(own) > 1 else own[0] if own else {"description": t.value}
        said = f"{t.value} (internal); key: {t.key}; written by {', '.join(t.writers)}, read"
        said += f" by {', '.join(t.readers)}" + ("; compacted" if t.compacted else "")
        if t.encoding == "application/msgpack" and own:
            said += "; msgpack, byte fields as bin"
        channels[t.name.removeprefix("yj.")] = {
            "address": t.name,
            "description": said,
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {"record": {"contentType": t.encoding, "payload": payload}},
        }
    return channels, schemas


def document(mqtt_host: str, kafka_host: str) -> dict[str, Any]:
    kafka, schemas = _kafka_channels()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "yujing 预警",
            "version": __version__,
            "description": "Graded alerts (red > orange > yellow > blue) from work-safety "
            "sensor streams. Every alert transition is on `yj.alerts` (machine feed, "
            "everything) and, when people should hear of it, on MQTT and webhooks.",
        },
        "servers": {
            "mqtt": {"host": mqtt_host, "protocol": "mqtt"},
            "kafka": {"host": kafka_host, "protocol": "kafka"},
        },
        "channels": {**_channels(), **kafka},
        "operations": _operations(),
        "components": {
            "schemas": {
                "Alert": ALERT_SCHEMA,
                "AlertCloudEvent": CLOUDEVENT_SCHEMA,
                "MqttAlert": MQTT_ALERT_SCHEMA,
                "Hazard": HAZARD_SCHEMA,
                "HazardCloudEvent": HAZARD_CLOUDEVENT_SCHEMA,
                "MqttHazard": MQTT_HAZARD_SCHEMA,
                **schemas,
            },
        },
    }


def _channels() -> dict[str, Any]:
    return {
        "alertFeed": {
            "address": Topics.ALERTS,
            "description": "Every alert transition, CloudEvents 1.0 structured JSON, keyed by "
            "alert key; a reader from offset 0 rebuilds the alert table. Hazard steps are on "
            "the same feed and seq, keyed by hazard id (type cn.yujing.hazard.<step>).",
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {
                "alertTransition": {
                    "name": "alertTransition", "contentType": "application/cloudevents+json",
                    "payload": {"$ref": "#/components/schemas/AlertCloudEvent"},
                },
                "hazardStep": {
                    "name": "hazardStep", "contentType": "application/cloudevents+json",
                    "payload": {"$ref": "#/components/schemas/HazardCloudEvent"},
                },
            },
        },
        "hazardsMqtt": {
            "address": "yj/hazards/{enterprise}/{grade}",
            "description": "Every hazard step, QoS 1, the hazard JSON with its transition.",
            "servers": [{"$ref": "#/servers/mqtt"}],
            "parameters": {
                "enterprise": {"description": "enterprise identifier"},
                "grade": {"enum": ["general", "major"], "description": "the hazard's grade"},
            },
            "messages": {"hazardStep": {
                "name": "hazardStep", "contentType": "application/json",
                "payload": {"$ref": "#/components/schemas/MqttHazard"},
            }},
        },
        "alertsMqtt": {
            "address": "yj/alerts/{enterprise}/{level}",
            "description": "Alert transitions for people, QoS 1; suppressed, unreliable and "
            "chattering (after its first notice) changes are not sent here.",
            "servers": [{"$ref": "#/servers/mqtt"}],
            "parameters": {
                "enterprise": {"description": "enterprise identifier"},
                "level": {"enum": LEVELS, "description": "the alert's level after the change"},
            },
            "messages": {"alertTransition": {
                "name": "alertTransition", "contentType": "application/json",
                "payload": {"$ref": "#/components/schemas/MqttAlert"},
            }},
        },
        "telemetry": _internal("yj/{enterprise}/{device}/telemetry", "device readings, "
                               "docs/contracts.md \"MQTT (devices → yujing)\"", "application/json"),
        "deviceEvents": _internal("yj/{enterprise}/{device}/event", "discrete device events",
                                  "application/json"),
        "deviceStatus": _internal("yj/{enterprise}/{device}/status", "device state, retained",
                                  "application/json"),
    }  # fmt: skip


def _operations() -> dict[str, Any]:
    def op(action: str, channel: str, message: str, summary: str) -> dict[str, Any]:
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
            "summary": summary,
        }

    return {
        "publishAlertFeed": op("send", "alertFeed", "alertTransition",
                               "yujing sends every stored alert transition"),
        "publishAlertsMqtt": op("send", "alertsMqtt", "alertTransition",
                                "yujing sends transitions people should hear of"),
        "publishHazardFeed": op("send", "alertFeed", "hazardStep",
                                "yujing sends every hazard step on the alert feed"),
        "publishHazardsMqtt": op("send", "hazardsMqtt", "hazardStep",
                                 "yujing sends every hazard step"),
        "receiveTelemetry": op("receive", "telemetry", "record", "devices send readings"),
        "receiveEvents": op("receive", "deviceEvents", "record", "devices send events"),
        "receiveStatus": op("receive", "deviceStatus", "record", "devices send state"),
    }  # fmt: skip
