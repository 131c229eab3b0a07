"""The ways out wired into the running pipeline (`yujing up` on real servers): a methane
leak reaches a webhook receiver on loopback (signed) and MQTT `yj/alerts/ent1/red`, and its
CAP message is served."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiomqtt
import pytest

from yujing.testing.alerts import WebhookReceiver
from yujing.testing.flow import Flow, eventually, running, settings_for_test
from yujing.testing.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = {
    "kind": "gas_detector",
    "site": "face-1",
    "tags": {"sector": "coal", "location": "coal_face", "critical": "true"},
    # readings stamped up to a minute in the past: an interval that does not make them "silent"
    "points": {"ch4": {"unit": "%CH4", "interval_s": 60}},
}


async def leak(flow: Flow) -> None:
    t0 = int(time.time() * 1000) - 60_000
    for seq, ch4 in enumerate([0.3, 0.6, 1.1, 1.2, 1.6], start=1):
        body = {"ts": t0 + seq * 5000, "seq": seq, "values": {"ch4": ch4}}
        await flow.publish("yj/ent1/gd-1/telemetry", body)


async def test_a_leak_reaches_webhooks_mqtt_and_cap(
    database_url: str, mqtt_broker: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YJ_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8")  # the receiver is on loopback
    receiver = WebhookReceiver()
    settings = settings_for_test()
    async with (
        receiver.serving(free_port()) as base,
        running(database_url, mqtt_broker, settings) as flow,
        aiomqtt.Client(*mqtt_broker, identifier=f"people-{free_port()}") as people,
    ):
        assert (await flow.http.put("/api/v1/devices/ent1/gd-1", json=DEVICE)).status_code == 200
        hook = {"url": f"{base}/duty", "enterprises": ["ent1"], "min_level": "red"}
        r = await flow.http.post("/api/v1/webhooks", json=hook)
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        await people.subscribe("yj/alerts/ent1/#", qos=1)
        await leak(flow)

        async def red_on_mqtt() -> dict[str, Any] | None:
            async with asyncio.timeout(20):
                async for message in people.messages:
                    assert isinstance(message.payload, bytes)
                    body: dict[str, Any] = json.loads(message.payload)
                    if str(message.topic) == "yj/alerts/ent1/red":
                        return body
            return None

        pushed = await red_on_mqtt()
        assert pushed is not None and pushed["level"] == "red" and pushed["device"] == "gd-1"

        async def red_on_webhook() -> list[tuple[dict[str, str], bytes]]:
            return [(h, b) for p, h, b in receiver.got if p == "/duty"]

        [(headers, body)] = await eventually(red_on_webhook)
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-yujing-signature"] == expected
        event = json.loads(body)
        assert event["data"]["id"] == pushed["id"] and event["data"]["level"] == "red"

        r = await flow.http.get(f"/api/v1/alerts/{pushed['id']}/cap")
        assert r.status_code == 200 and b"<severity>Red</severity>" in r.content
