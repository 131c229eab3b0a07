"""`yujing alerts`: applies the engine's level changes to the alert store, and relays stored
changes to the feeds. Offsets are committed only after the store has the changes.

Beside the consumer run the outbox relay, the webhook dispatcher, the escalation check and
the alarm-figures refresher; each is safe to run in every `alerts` process at once.
The stage itself (`AlertsStage`, with the hazard watch) is in yujing/runtime.py, which
builds the publishers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg
import msgspec
from prometheus_client import Counter

from yujing.alerts.dispatch import WebhookDispatcher
from yujing.alerts.escalation import Escalator
from yujing.alerts.feed import FeedRelay
from yujing.alerts.publishers import Publisher
from yujing.alerts.settings import AlertSettings
from yujing.alerts.stats import StatsRefresher
from yujing.alerts.store import AlertStore
from yujing.config import Settings
from yujing.ingest.bus import Bus, Record, Topics
from yujing.pipeline.consume import Work, consume
from yujing.pipeline.health import Health
from yujing.rules import transition

log = logging.getLogger(__name__)

APPLIED = Counter("yj_alert_changes_total", "Alert changes stored", ["transition"])
BAD = Counter("yj_alert_bad_records_total", "Undecodable records on yj.transitions")


async def run_alerts(
    settings: Settings,
    bus: Bus,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    publishers: Sequence[Publisher],
    clock: Callable[[], datetime],
    *,
    alert_settings: AlertSettings | None = None,
    health: Health | None = None,
    store: AlertStore | None = None,
) -> None:
    """The consume loop on `yj.transitions` with the helpers beside it in one task group:
    whichever fails, the stage fails (and is restarted by the supervisor)."""
    alert_settings = alert_settings or AlertSettings()
    health = health or Health(time.time)
    store = store or AlertStore(pool, clock, alert_settings)

    async def handle(records: Sequence[Record]) -> None:
        changes = []
        for r in records:
            try:
                changes.append(transition.DECODER.decode(r.value))
            except msgspec.DecodeError as exc:
                BAD.inc()
                log.error("undecodable transition at %s/%s: %s", r.partition, r.offset, exc)
        # Idempotent by transition id: a batch applied again after an outage changes nothing.
        for stored in await store.apply(changes):
            APPLIED.labels(stored.transition).inc()

    consumer = bus.consumer([Topics.TRANSITIONS], settings.alerts_group)
    try:
        async with asyncio.TaskGroup() as helpers:
            helpers.create_task(
                FeedRelay(pool, store, publishers).run(stop, health), name="alert-feed"
            )
            helpers.create_task(
                WebhookDispatcher(pool, clock, alert_settings).run(stop, health), name="webhooks"
            )
            helpers.create_task(
                Escalator(pool, clock, alert_settings).run(stop, health), name="escalation"
            )
            helpers.create_task(
                StatsRefresher(pool, clock, alert_settings.stats_every_s).run(stop, health),
                name="alarm-stats",
            )
            await consume("alerts", consumer, Work(handle, rehandle=True), stop, health)
    finally:
        await consumer.close()
        for publisher in publishers:
            await publisher.close()
