"""Alert changes as CloudEvents 1.0 structured JSON (the public `yj.alerts` feed).

Other records on the same feed (hazards) use the same envelope with their own type prefix,
`cn.yujing.<record>.<step>`, and their id as `subject`."""

from __future__ import annotations

import json
from typing import Any

from yujing.alerts.store import StoredChange

SPEC_VERSION = "1.0"
TYPE_PREFIX = "cn.yujing.alert."


def type_prefix(record: str) -> str:
    return f"cn.yujing.{record}."


def to_cloudevent(change: StoredChange) -> dict[str, Any]:
    alert = change.alert
    return {
        "specversion": SPEC_VERSION,
        # Deterministic, so a subscriber can drop a redelivered event by id.
        "id": f"{change.alert_id}-{change.seq}",
        "source": f"/yujing/enterprises/{alert['enterprise']}",
        "type": type_prefix(change.record) + change.transition,
        "subject": change.key,
        "time": change.at.isoformat(),
        "datacontenttype": "application/json",
        "seq": change.seq,
        "actor": change.actor,
        # Whether people were told (false: suppressed, unreliable or chattering; marks.py).
        "notify": change.notify,
        "data": alert,
    }


def dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def encode(change: StoredChange) -> bytes:
    return dumps(to_cloudevent(change))
