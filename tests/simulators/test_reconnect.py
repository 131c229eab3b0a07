"""A broker that goes away and comes back: the publisher reconnects and every message is
acknowledged exactly once (unacknowledged ones are sent again, as QoS 1 redeliveries)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from yujing.simulators.consistency import FIXED_START_MS
from yujing.simulators.demo import demo_timeline
from yujing.simulators.publisher import Publisher
from yujing.testing.servers import amqtt_config, free_port, wait_for_port

pytestmark = pytest.mark.integration


def _start_broker(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto:
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        cmd = [mosquitto, "-c", str(conf)]
    else:
        conf = tmp / "amqtt.yaml"
        conf.write_text(amqtt_config("127.0.0.1", port))
        cmd = [str(Path(sys.executable).parent / "amqtt"), "-c", str(conf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port)
    return proc


async def test_publisher_survives_a_broker_restart() -> None:
    port = free_port()
    messages = list(demo_timeline(FIXED_START_MS, duration_s=120))
    said: list[str] = []
    with tempfile.TemporaryDirectory(prefix="yj-sim-") as tmp:
        broker = _start_broker(port, Path(tmp))
        publisher = Publisher("127.0.0.1", port, say=said.append)
        # 120 simulated seconds at 40x: about 3 s of publishing, the broker gone for 1 s of it.
        run = asyncio.create_task(publisher.run(iter(messages), asyncio.Event(), speed=40))
        await asyncio.sleep(0.8)
        broker.terminate()
        broker.wait(10)
        await asyncio.sleep(1.0)
        broker = _start_broker(port, Path(tmp))
        try:
            stats = await asyncio.wait_for(run, timeout=30)
        finally:
            broker.terminate()
            broker.wait(10)
    assert stats.reconnects >= 1 and any("reconnecting" in line for line in said)
    assert stats.published == len(messages)


async def test_run_stops_promptly_when_told() -> None:
    stop = asyncio.Event()
    # Nobody listens on this port: the publisher keeps retrying until stopped.
    publisher = Publisher("127.0.0.1", free_port(), say=lambda _: None)
    run = asyncio.create_task(publisher.run(iter(demo_timeline(FIXED_START_MS)), stop, speed=1.0))
    await asyncio.sleep(1.5)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(run, timeout=5)
    assert time.monotonic() - started < 1.0
