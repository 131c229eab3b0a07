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

from yujing import db, migrations
from yujing.alerts.publishers import KafkaFeed, MqttFeed, Publisher
from yujing.alerts.service import run_alerts
from yujing.alerts.settings import AlertSettings
from yujing.alerts.sink import run_sink
from yujing.alerts.stats import StatsRefresher
from yujing.alerts.store import AlertStore
from yujing.alerts.webhooks import WebhookFanout
from yujing.api.app import create_app
from yujing.api.auth import ensure_admin
from yujing.api.readiness import dependency_checks
from yujing.api.server import server_config
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.hazards.settings import HazardSettings
from yujing.hazards.watch import HazardWatch
from yujing.ingest.bus import Bus
from yujing.ingest.buses import make_bus
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
        found = await migrations.migrate(pool, settings)
        log.info("database ready; readings storage: %s", found["storage"])
        await ensure_default_rules(pool)
        bus = make_bus(settings)
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
        # Hazards ride with the alerts stage: proposals, overdue hazards, tiered pushes.
        out.append(HazardWatch(rt.pool, utcnow, HazardSettings()).run(stop))
    if "api" in stages:
        # The alarm figures on /metrics are refreshed by the alerts stage; an API process of
        # its own refreshes them itself, so every /metrics a scraper may hit carries them.
        out.append(
            serve_api(
                rt, stop, refresh_stats="alerts" not in stages,
                uses_mqtt=bool({"ingest", "alerts"} & set(stages)),
            )
        )  # fmt: skip
    if "ingest" in stages:
        registry = Registry(rt.pool, auto_register=s.auto_register)
        out.append(run_ingest(s, rt.bus, registry, rt.mqtt_url, wall_ms, stop))
    return out


class _Server(uvicorn.Server):
    """uvicorn's server, telling when its socket is bound."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.bound = asyncio.Event()

    async def startup(self, sockets: list[Any] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:  # uvicorn's answer to a port it cannot bind
            self.should_exit = True
            return
        if self.started:
            self.bound.set()


class ListenError(RuntimeError):
    """The API could not listen on its address (the port is taken)."""


async def serve_api(
    rt: Runtime, stop: asyncio.Event, *, refresh_stats: bool = False, uses_mqtt: bool = False
) -> None:
    s = rt.settings
    token = await ensure_admin(rt.pool, s.admin_token)
    if token:
        rt.say(f"admin token (shown once, keep it): {token}")
        rt.say(f"alarm board: http://{s.http_host}:{s.http_port}/#token={token}")
    elif not s.admin_token:
        rt.say("admin token: the one printed at first start; lost it? restart with"
               " YJ_ADMIN_TOKEN=<a secret of your choice> and use that")  # fmt: skip
    store = AlertStore(rt.pool, utcnow)
    hub = ChangeHub(rt.pool, store, s.sse_queue_size)
    mqtt = mqtt_host_port(rt.mqtt_url) if uses_mqtt else None
    app = create_app(s, rt.pool, rt.bus, store, hub, dependency_checks(s.kafka_bootstrap, mqtt))
    server = _Server(server_config(app, s))
    hub_task = asyncio.create_task(hub.run(stop), name="sse-hub")
    presence_task = asyncio.create_task(app.state.presence.run(stop), name="online-counts")
    if refresh_stats:
        stats_task = asyncio.create_task(
            StatsRefresher(rt.pool, utcnow, AlertSettings().stats_every_s).run(stop), name="stats"
        )
    serving = asyncio.create_task(server.serve(), name="http")
    # Say where the API is only once the port is bound; a refused port ends `serving`.
    bound = asyncio.create_task(server.bound.wait())
    await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
    if not server.bound.is_set():
        bound.cancel()
        stop.set()
        await hub_task
        raise ListenError(
            f"the API could not listen on {s.http_host}:{s.http_port} (in use?); set YJ_HTTP_PORT"
        )
    base = f"http://{s.http_host}:{s.http_port}"
    rt.say(f"API and alarm board on {base}/ (alerts: {base}/api/v1/alerts, docs: {base}/docs)")
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
