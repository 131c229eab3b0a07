"""Starts stages: each alone (distributed mode) or all on one loop (`yujing up`).

One code path: every stage takes the same settings, bus and pool whether it runs alone
over Kafka and PostgreSQL or beside the others over the in-process bus and an embedded
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from yujing import db, migrations
from yujing.alerts.publishers import KafkaFeed, MqttFeed, Publisher
from yujing.alerts.service import run_alerts
from yujing.alerts.settings import AlertSettings
from yujing.alerts.sink import SinkStage
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
from yujing.ingest.buses import make_bus
from yujing.ingest.registry import Registry
from yujing.ingest.service import run_ingest
from yujing.pipeline.periodic import periodic
from yujing.pipeline.stage import Clock, Runtime, Stage
from yujing.pipeline.supervisor import Supervisor
from yujing.pipeline.system import SystemWatch
from yujing.rules.service import EngineStage
from yujing.rules.store import ensure_default_rules

log = logging.getLogger(__name__)

STAGES = ("ingest", "engine", "alerts", "sink", "api")
__all__ = ["STAGES", "ListenError", "Runtime", "open_runtime", "run_stages", "serve_api"]


def mqtt_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, database_url: str, mqtt_url: str, clock: Clock | None = None
) -> AsyncIterator[Runtime]:
    """The runtime every stage of this process shares; the settings of alert and hazard
    handling are read from the environment here, once, and handed down with it."""
    pool = await db.create_pool(database_url, max_size=20)
    try:
        found = await migrations.migrate(pool, settings)
        log.info("database ready; readings storage: %s", found["storage"])
        await ensure_default_rules(pool)
        bus = make_bus(settings)
        await bus.start()
        try:
            yield Runtime(
                settings, pool, bus, mqtt_url, clock=clock or Clock(),
                alert_settings=AlertSettings(), hazard_settings=HazardSettings(),
            )  # fmt: skip
        finally:
            await bus.close()
    finally:
        await pool.close()


@dataclass(frozen=True)
class IngestStage:
    name = "ingest"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        registry = Registry(rt.pool, auto_register=rt.settings.auto_register)
        await run_ingest(rt.settings, rt.bus, registry, rt.mqtt_url, rt.clock.ms, stop)


@dataclass(frozen=True)
class AlertsStage:
    """The alert lifecycle and its feeds; the hazard watch rides with it (proposals,
    overdue hazards, tiered pushes)."""

    name = "alerts"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        host, port = mqtt_host_port(rt.mqtt_url)
        now = rt.clock.now
        publishers: list[Publisher] = [
            KafkaFeed(rt.bus), MqttFeed(host, port), WebhookFanout(rt.pool, now),
        ]  # fmt: skip
        watch = HazardWatch(rt.pool, now, rt.hazard_settings)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(watch.run(stop, rt.health), name="hazard-watch")
            # In this coroutine, not a task: its consumer subscribes before the next stage
            # starts (the in-process bus delivers only to consumers that exist).
            await run_alerts(
                rt.settings, rt.bus, rt.pool, stop, publishers, now,
                alert_settings=rt.alert_settings, health=rt.health,
            )  # fmt: skip


@dataclass(frozen=True)
class ApiStage:
    """The HTTP API; the alarm figures on /metrics are refreshed by the alerts stage, and
    an API process of its own refreshes them itself, so every /metrics carries them."""

    refresh_stats: bool
    uses_mqtt: bool
    name = "api"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        await serve_api(rt, stop, refresh_stats=self.refresh_stats, uses_mqtt=self.uses_mqtt)


@dataclass(frozen=True)
class WatchStage:
    """The process watching itself (yujing/pipeline/system.py), supervised like a stage:
    every 2 s its `Health` becomes system alerts."""

    name = "system-watch"

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        store = AlertStore(rt.pool, rt.clock.now, rt.alert_settings)
        watch = SystemWatch(rt.health, rt.pool, store, rt.clock)

        async def check() -> None:
            await watch.check()

        await periodic("system-watch", check, 2.0, stop, health=rt.health)


def stages_of(names: tuple[str, ...]) -> list[Stage]:
    """The named stages, consumers before ingest. The bus keeps a position per consumer
    group, so the order is not needed for correctness; it only lets the consumers be
    reading when the first message arrives."""
    out: list[Stage] = []
    if "engine" in names:
        out.append(EngineStage())
    if "sink" in names:
        out.append(SinkStage())
    if "alerts" in names:
        out.append(AlertsStage())
    if "api" in names:
        out.append(
            ApiStage(
                refresh_stats="alerts" not in names,
                uses_mqtt=bool({"ingest", "alerts"} & set(names)),
            )
        )
    if "ingest" in names:
        out.append(IngestStage())
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
    store = AlertStore(rt.pool, rt.clock.now, rt.alert_settings)
    hub = ChangeHub(rt.pool, store, s.sse_queue_size)
    mqtt = mqtt_host_port(rt.mqtt_url) if uses_mqtt else None
    app = create_app(
        s, rt.pool, rt.bus, store, hub, dependency_checks(s.kafka_bootstrap, mqtt),
        health=rt.health, hazard_settings=rt.hazard_settings,
    )  # fmt: skip
    server = _Server(server_config(app, s))
    serving = asyncio.create_task(server.serve(), name="http")
    # Say where the API is only once the port is bound; a refused port ends `serving`.
    bound = asyncio.create_task(server.bound.wait())
    try:
        await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
        if not server.bound.is_set():
            raise ListenError(
                f"the API could not listen on {s.http_host}:{s.http_port} (in use?);"
                " set YJ_HTTP_PORT"
            )
        base = f"http://{s.http_host}:{s.http_port}"
        rt.say(f"API and alarm board on {base}/ (alerts: {base}/api/v1/alerts, docs: {base}/docs)")
        async with asyncio.TaskGroup() as helpers:
            helpers.create_task(hub.run(stop, rt.health), name="sse-hub")
            helpers.create_task(app.state.presence.run(stop, health=rt.health), name="online")
            if refresh_stats:
                stats = StatsRefresher(rt.pool, rt.clock.now, rt.alert_settings.stats_every_s)
                helpers.create_task(stats.run(stop, rt.health), name="stats")
            await stop.wait()
    finally:
        bound.cancel()
        server.should_exit = True
        await serving


async def run_stages(
    rt: Runtime,
    stages: tuple[str, ...],
    stop: asyncio.Event,
    extra: list[Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Runs the named stages, each under the supervisor (a failed stage is restarted), and
    the system watch, until `stop`. Only a fatal error (the API's port is taken) or an
    `extra` coroutine that fails ends them all; it is raised."""
    supervisor = Supervisor(rt, fatal=(ListenError,))
    try:
        async with asyncio.TaskGroup() as tasks:
            for stage in [*stages_of(stages), WatchStage()]:
                tasks.create_task(supervisor.run(stage, stop), name=stage.name)
                await asyncio.sleep(0)  # each stage starts in turn, consumers first
            for coro in extra or []:
                tasks.create_task(coro)
    except BaseExceptionGroup as group:
        stop.set()
        raise group.exceptions[0] from None
