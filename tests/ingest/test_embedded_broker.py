"""The broker `yujing up` embeds without YJ_MQTT_URL: Mosquitto when installed, else (or
with YJ_EMBEDDED_BROKER=amqtt) amqtt; either carries a QoS 1 message and stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from yujing.config import Settings
from yujing.embedded import find_mosquitto, port_is_free
from yujing.embedded_up import broker
from yujing.testing.servers import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("choice", ["auto", "amqtt"])
async def test_the_embedded_broker_carries_messages(
    tmp_path: Path, choice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if choice == "auto" and find_mosquitto() is None:
        pytest.skip("Mosquitto is not installed here")
    settings = Settings(data_dir=tmp_path, mqtt_port=free_port(), embedded_broker=choice)
    async with broker(settings) as url:
        said = capsys.readouterr().out
        assert ("Mosquitto" if choice == "auto" else "amqtt") in said
        host, port = url.removeprefix("mqtt://").split(":")
        async with aiomqtt.Client(host, int(port)) as sub, aiomqtt.Client(host, int(port)) as pub:
            await sub.subscribe("yj/t/d/telemetry", qos=1)
            await pub.publish("yj/t/d/telemetry", b"{}", qos=1)
            got = await asyncio.wait_for(anext(aiter(sub.messages)), 10)
            assert got.payload == b"{}"
    assert port_is_free(host, int(port))  # stopped with `yujing up`
