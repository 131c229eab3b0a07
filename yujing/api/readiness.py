"""What `/readyz` asks: can this process reach every server it depends on right now (the
database is checked by the app itself; the bus and the MQTT broker here)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiomqtt

Check = Callable[[], Awaitable[bool]]
TIMEOUT_S = 2.0


def reachable(host: str, port: int, timeout_s: float = TIMEOUT_S) -> Check:
    """A TCP connect to the server: what every client of it needs first."""

    async def check() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return check


def mqtt_broker(host: str, port: int, timeout_s: float = TIMEOUT_S) -> Check:
    """An MQTT CONNECT and DISCONNECT: a bare TCP probe makes brokers log an error."""

    async def check() -> bool:
        try:
            async with aiomqtt.Client(
                host, port, identifier=f"yujing-readyz-{os.getpid()}", timeout=timeout_s
            ):
                return True
        except (aiomqtt.MqttError, OSError, TimeoutError):
            return False

    return check


def any_reachable(bootstrap: str, default_port: int = 9092) -> Check:
    """Kafka: ready when one bootstrap server answers (the client finds the others)."""
    servers = []
    for item in bootstrap.split(","):
        parts = urlsplit("//" + item.strip())
        servers.append(reachable(parts.hostname or "127.0.0.1", parts.port or default_port))

    async def check() -> bool:
        for server in servers:
            if await server():
                return True
        return False

    return check


async def in_process() -> bool:
    """The in-process bus lives in this process: ready whenever the process answers."""
    return True


def dependency_checks(kafka_bootstrap: str, mqtt: tuple[str, int] | None) -> dict[str, Check]:
    checks: dict[str, Check] = {
        "bus": any_reachable(kafka_bootstrap) if kafka_bootstrap else in_process
    }
    if mqtt is not None:
        checks["mqtt"] = mqtt_broker(*mqtt)
    return checks
