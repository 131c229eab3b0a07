"""Run a whole yujing flow in a test: stages on this loop, an HTTP client with a token,
an SSE recorder, and an MQTT publisher — all against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import httpx

from yujing.config import Settings
from yujing.runtime import STAGES, open_runtime, run_stages
from yujing.testing.servers import free_port

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 20.0, every_s: float = 0.1
) -> T:
    """The first truthy result of `probe`, or an AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(every_s)


@dataclass
class SseRecorder:
    events: list[dict[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, client: httpx.AsyncClient, path: str = "/api/v1/alerts/stream") -> None:
        async with client.stream("GET", path, timeout=None) as response:
            response.raise_for_status()
            self.connected.set()
            event: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and event:
                    if "event" in event:
                        self.events.append(event)
                    event = {}

    def transitions(self) -> list[str]:
        return [e["event"] for e in self.events]


@dataclass
class Flow:
    http: httpx.AsyncClient
    mqtt: aiomqtt.Client
    base_url: str

    async def publish(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await self.mqtt.publish(topic, body, qos=1)


def settings_for_test(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http_port": free_port(),
        "admin_token": "test-admin-token",
        "ingest_linger_ms": 2,
        "mqtt_client_id": f"yj-ingest-{free_port()}",
        # The in-process bus keeps its log here: a test's own, never one left by another.
        "data_dir": Path(tempfile.mkdtemp(prefix="yj-test-")),
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(
    database_url: str,
    mqtt: tuple[str, int],
    settings: Settings,
    *,
    distributed: bool = False,
) -> AsyncIterator[Flow]:
    """Every stage on this loop: one runtime for all (embedded), or one runtime — its own
    bus client and pool — per stage (distributed, over Kafka)."""
    mqtt_url = f"mqtt://{mqtt[0]}:{mqtt[1]}"
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        groups = [(s,) for s in STAGES] if distributed else [STAGES]
        tasks = []
        for stages in groups:
            rt = await stack.enter_async_context(open_runtime(settings, database_url, mqtt_url))
            rt.say = lambda _msg: None
            tasks.append(asyncio.create_task(run_stages(rt, stages, stop)))
        base = f"http://{settings.http_host}:{settings.http_port}"
        headers = {"Authorization": f"Bearer {settings.admin_token}"}
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base, headers=headers))
        await eventually(lambda: _ready(http), timeout_s=30)
        client = await stack.enter_async_context(aiomqtt.Client(mqtt[0], mqtt[1]))
        try:
            yield Flow(http, client, base)
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False
