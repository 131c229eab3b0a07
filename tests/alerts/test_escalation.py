"""Escalation as a timeline: an unacknowledged red alert gets an `escalated` notice to the
escalation target every N minutes until someone acknowledges it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from yujing.alerts import maintenance, webhooks
from yujing.alerts.escalation import Escalator
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore
from yujing.levels import Level
from yujing.testing.alerts import Clock, at
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE
SETTINGS = AlertSettings(escalate_after_s=600, escalate_min_level="red")


async def test_unacknowledged_red_escalates_every_n_minutes_until_acknowledged(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    store = AlertStore(pool, clock, SETTINGS)
    target = await webhooks.subscribe(
        pool, url="http://127.0.0.1:9/duty", enterprises=["ent1"], min_level=Level.BLUE,
        transitions=False, escalations=True, who="admin", now=at(0),
    )  # fmt: skip
    plain = await webhooks.subscribe(
        pool, url="http://127.0.0.1:9/all", enterprises=None, min_level=Level.BLUE,
        transitions=True, escalations=False, who="admin", now=at(0),
    )  # fmt: skip
    await maintenance.declare(
        pool, enterprise="ent1", site=None, device="dev-9", point=None, starts_at=at(0),
        ends_at=at(86400), reason="检修", who="op", now=at(0),
    )  # fmt: skip
    [red] = await store.apply([change(0, N, Level.RED)])
    await store.apply([change(0, N, Level.ORANGE, device="dev-2")])  # below the level
    await store.apply([change(0, N, Level.RED, device="dev-9")])  # in maintenance
    escalator = Escalator(pool, clock, SETTINGS)

    async def tick(t_s: float) -> list[tuple[str, int]]:
        clock.to(t_s)
        return [(n.alert_id, n.n) for n in await escalator.tick()]

    assert await tick(599) == []
    assert await tick(600) == [(red.alert_id, 1)]
    assert await tick(900) == []
    assert await tick(1200) == [(red.alert_id, 2)]
    assert await tick(1200) == []  # a second check (or a second process) sends nothing more
    assert await tick(3100) == [(red.alert_id, 5)]  # after an outage: the latest, no backlog
    clock.to(3200)
    await store.acknowledge(red.alert_id, "op-wang", None, lambda _: True)
    assert await tick(4000) == []
    # Resolved and back again: a new active period, counted from the reopening.
    await store.apply([change(4100, Level.RED, N), change(4200, N, Level.RED)])
    assert await tick(4799) == []
    assert await tick(4800) == [(red.alert_id, 1)]

    sent = await webhooks.deliveries(pool, target.id, None, 10)
    assert [d["event_type"] for d in sent] == ["cn.yujing.alert.escalated"] * 4
    assert await webhooks.deliveries(pool, plain.id, None, 10) == []  # fanout not run here
    async with pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY id LIMIT 1",
            target.id,
        )
    event = json.loads(body)
    assert (event["reason"], event["notice"], event["data"]["id"]) == (
        "unacknowledged", 1, red.alert_id,
    )  # fmt: skip
