"""`yujing alerts`: applies the engine's level changes to the alert store, and relays stored
changes to the feeds. Offsets are committed only after the store has the changes.

Beside the consumer run the outbox relay, the webhook dispatcher, the escalation check and
the alarm-figures refresher; each is safe to run in every `alerts` process at once."""

from __future__ import annotations

import asyncio
import logging
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
from yujing.ingest.bus import Bus, Topics
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
) -> None:
    alert_settings = AlertSettings()
    store = AlertStore(pool, clock, alert_settings)
    helpers = [
        asyncio.create_task(FeedRelay(pool, store, publishers).run(stop), name="alert-feed"),
        asyncio.create_task(
            WebhookDispatcher(pool, clock, alert_settings).run(stop), name="webhooks"
        ),
        asyncio.create_task(Escalator(pool, clock, alert_settings).run(stop), name="escalation"),
        asyncio.create_task(
            StatsRefresher(pool, clock, alert_settings.stats_every_s).run(stop), name="alarm-stats"
        ),
    ]
    consumer = bus.consumer([Topics.TRANSITIONS], settings.alerts_group)
    try:
        while not stop.is_set():
            records = await consumer.next_batch(timeout_s=0.5)
            if not records:
                continue
            changes = []
            for r in records:
                try:
                    changes.append(transition.DECODER.decode(r.value))
                except msgspec.DecodeError as exc:
                    BAD.inc()
                    log.error("undecodable transition at %s/%s: %s", r.partition, r.offset, exc)
            for stored in await store.apply(changes):
                APPLIED.labels(stored.transition).inc()
            await consumer.commit()
    finally:
        await consumer.close()
        await asyncio.gather(*helpers)
        for publisher in publishers:
            await publisher.close()
