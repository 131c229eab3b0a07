"""Starts stages: each alone (distributed mode) or all on one loop (`yujing up`).

One code path: every stage takes the same settings, bus and pool whether it runs alone
over Kafka and PostgreSQL or beside the others over the in-process bus and an embedded
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import uvicorn

from yujing import db
from yujing.alerts.publishers import KafkaFeed, MqttFeed, Publisher
from yujing.alerts.service import run_alerts
from yujing.alerts.settings import AlertSettings
from yujing.alerts.sink import run_sink
from yujing.alerts.stats import StatsRefresher
from yujing.alerts.store import AlertStore
from yujing.alerts.webhooks import WebhookFanout
from yujing.api.app import create_app
from yujing.api.auth import ensure_admin
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import Bus, make_bus
from yujing.ingest.registry import Registry
from yujing.ingest.service import run_ingest
from yujing.rules.service import run_engine
from yujing.rules.store import ensure_default_rules

log = logging.getLogger(__name__)

STAGES = ("ingest", "engine", "alerts", "sink", "api")


def wall_ms() -> int:
    return int(time.time() * 1000)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    bus: Bus
    mqtt_url: str
    say: Callable[[str], None] = print


def mqtt_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, database_url: str, mqtt_url: str
) -> AsyncIterator[Runtime]:
    pool = await db.create_pool(database_url, max_size=20)
    try:
        found = await db.migrate(pool, settings)
        log.info("database ready; readings storage: %s", found["storage"])
        await ensure_default_rules(pool)
        bus = make_bus(
            settings.kafka_bootstrap,
            partitions=settings.kafka_partitions,
            prefix=settings.kafka_topic_prefix,
        )
        await bus.start()
        try:
            yield Runtime(settings, pool, bus, mqtt_url)
        finally:
            await bus.close()
    finally:
        await pool.close()


def stage_tasks(
    rt: Runtime, stages: tuple[str, ...], stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    """Coroutines for the named stages; consumers come before ingest so that the in-process
    bus has every group subscribed before the first message is published."""
    host, port = mqtt_host_port(rt.mqtt_url)
    out: list[Coroutine[Any, Any, None]] = []
    s = rt.settings
    if "engine" in stages:
        out.append(run_engine(s, rt.bus, rt.pool, stop))
    if "sink" in stages:
        out.append(run_sink(s, rt.bus, rt.pool, stop))
    if "alerts" in stages:
        publishers: list[Publisher] = [
            KafkaFeed(rt.bus), MqttFeed(host, port), WebhookFanout(rt.pool, utcnow),
        ]  # fmt: skip
        out.append(run_alerts(s, rt.bus, rt.pool, stop, publishers, utcnow))
    if "api" in stages:
        # The alarm figures on /metrics are refreshed by the alerts stage; an API process of
        # its own refreshes them itself, so every /metrics a scraper may hit carries them.
        out.append(serve_api(rt, stop, refresh_stats="alerts" not in stages))
    if "ingest" in stages:
        registry = Registry(rt.pool, auto_register=s.auto_register)
        out.append(run_ingest(s, rt.bus, registry, rt.mqtt_url, wall_ms, stop))
    return out


async def serve_api(rt: Runtime, stop: asyncio.Event, *, refresh_stats: bool = False) -> None:
    s = rt.settings
    token = await ensure_admin(rt.pool, s.admin_token)
    if token:
        rt.say(f"admin token (shown once, keep it): {token}")
        rt.say(f"alarm board: http://{s.http_host}:{s.http_port}/#token={token}")
    store = AlertStore(rt.pool, utcnow)
    hub = ChangeHub(rt.pool, store, s.sse_queue_size)
    app = create_app(s, rt.pool, rt.bus, store, hub)
    server = uvicorn.Server(
        uvicorn.Config(app, host=s.http_host, port=s.http_port, log_level="warning", lifespan="off")
    )
    hub_task = asyncio.create_task(hub.run(stop), name="sse-hub")
    presence_task = asyncio.create_task(app.state.presence.run(stop), name="online-counts")
    if refresh_stats:
        stats_task = asyncio.create_task(
            StatsRefresher(rt.pool, utcnow, AlertSettings().stats_every_s).run(stop), name="stats"
        )
    serving = asyncio.create_task(server.serve(), name="http")
    rt.say(f"API and alarm board on http://{s.http_host}:{s.http_port}/")
    await stop.wait()
    server.should_exit = True
    await serving
    await hub_task
    await presence_task
    if refresh_stats:
        await stats_task


async def run_stages(
    rt: Runtime,
    stages: tuple[str, ...],
    stop: asyncio.Event,
    extra: list[Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Runs stages until `stop`; if one fails, the others are stopped and the error raised."""
    tasks = []
    for coro in [*stage_tasks(rt, stages, stop), *(extra or [])]:
        tasks.append(asyncio.create_task(coro))
        await asyncio.sleep(0)  # let each consumer subscribe before the next stage starts
    try:
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        for t in done:
            if t in tasks and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
