"""The AsyncAPI 3.0 document of yujing's message channels: what subscribers can rely on
(`yj.alerts` on Kafka, `yj/alerts/{enterprise}/{level}` on MQTT, webhooks' payload) and the
device topics and internal Kafka topics, whose formats are in docs/contracts.md."""

from __future__ import annotations

from typing import Any

from yujing import __version__

LEVELS = ["blue", "yellow", "orange", "red"]
TRANSITIONS = [
    "raised", "escalated", "deescalated", "acknowledged", "resolved", "reopened", "closed",
]  # fmt: skip
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
        "reason": {"const": "unacknowledged", "description": "escalation notices only"},
        "notice": {"type": "integer", "description": "escalation notices only"},
        "data": {"$ref": "#/components/schemas/Alert"},
    },
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


def document(mqtt_host: str, kafka_host: str) -> dict[str, Any]:
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
        "channels": _channels(),
        "operations": _operations(),
        "components": {
            "schemas": {
                "Alert": ALERT_SCHEMA,
                "AlertCloudEvent": CLOUDEVENT_SCHEMA,
                "MqttAlert": MQTT_ALERT_SCHEMA,
            },
        },
    }


def _channels() -> dict[str, Any]:
    return {
        "alertFeed": {
            "address": "yj.alerts",
            "description": "Every alert transition, CloudEvents 1.0 structured JSON, keyed by "
            "alert key; a reader from offset 0 rebuilds the alert table.",
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {"alertTransition": {
                "name": "alertTransition", "contentType": "application/cloudevents+json",
                "payload": {"$ref": "#/components/schemas/AlertCloudEvent"},
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
        "readings": _internal("yj.readings", "msgpack columnar reading batches (internal)",
                              "application/msgpack"),
        "transitions": _internal("yj.transitions", "engine level changes (internal)",
                                 "application/json"),
        "deadletters": _internal("yj.deadletter", "dead letters with reason codes",
                                 "application/msgpack"),
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
        "receiveTelemetry": op("receive", "telemetry", "record", "devices send readings"),
        "receiveEvents": op("receive", "deviceEvents", "record", "devices send events"),
        "receiveStatus": op("receive", "deviceStatus", "record", "devices send state"),
    }  # fmt: skip
