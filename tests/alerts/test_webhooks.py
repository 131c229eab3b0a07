"""Webhooks against a real HTTP receiver on loopback, on a timeline: signed deliveries,
retries with backoff, dead letters with the error, filters by enterprise and level."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import asyncpg
import httpx
import pytest

from yujing.alerts import maintenance, webhooks
from yujing.alerts.dispatch import SIGNATURE_HEADER, WebhookDispatcher
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore
from yujing.alerts.testkit import Clock, WebhookReceiver, at
from yujing.alerts.testkit import level_change as change
from yujing.levels import Level
from yujing.testing.servers import free_port

pytestmark = pytest.mark.integration
N = Level.NONE


async def subscribe(pool: asyncpg.Pool, url: str, ents: list[str] | None, lvl: Level) -> Any:
    return await webhooks.subscribe(
        pool, url=url, enterprises=ents, min_level=lvl, transitions=True, escalations=False,
        who="admin", now=at(0),
    )  # fmt: skip


async def test_deliveries_are_signed_retried_and_dead_lettered(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = AlertSettings(webhook_max_attempts=3, webhook_backoff_s=1.0)
    receiver = WebhookReceiver({"/flaky": [500], "/gone": [410]})
    store = AlertStore(pool, clock, settings)
    async with receiver.serving(free_port()) as base, httpx.AsyncClient(timeout=5) as client:
        flaky = await subscribe(pool, f"{base}/flaky", ["ent1"], Level.ORANGE)
        gone = await subscribe(pool, f"{base}/gone", None, Level.RED)
        refused = await subscribe(pool, f"http://127.0.0.1:{free_port()}/x", ["ent1"], Level.BLUE)
        other = await subscribe(pool, f"{base}/other", ["ent2"], Level.BLUE)
        await maintenance.declare(
            pool, enterprise="ent1", site=None, device="dev-9", point=None, starts_at=at(0),
            ends_at=at(600), reason="检修", who="op", now=at(0),
        )  # fmt: skip
        await store.apply([
            change(1, N, Level.RED), change(1, N, Level.YELLOW, device="dev-2"),
            change(1, N, Level.RED, device="dev-9"),  # in maintenance: no delivery at all
        ])  # fmt: skip
        fanout = webhooks.WebhookFanout(pool, clock)
        await fanout.publish(await store.changes_since(0))
        await fanout.publish(await store.changes_since(0))  # a relay replay adds nothing
        dispatcher = WebhookDispatcher(pool, clock, settings)

        clock.to(1)  # flaky: 500; gone: 410 (dead at once); refused: refused, twice
        assert await dispatcher.deliver_due(client) == 4
        clock.to(1.5)
        assert await dispatcher.deliver_due(client) == 0  # nothing due before the backoff
        clock.to(2)  # flaky: 200; refused: second failure, next in 2 s
        assert await dispatcher.deliver_due(client) == 3
        clock.to(4)  # refused: third and last attempt
        assert await dispatcher.deliver_due(client) == 2
        clock.to(60)
        assert await dispatcher.deliver_due(client) == 0

    flaky_got = [(h, b) for p, h, b in receiver.got if p == "/flaky"]
    assert len(flaky_got) == 2 and flaky_got[0][1] == flaky_got[1][1]  # the same bytes again
    for headers, body in flaky_got:
        expected = "sha256=" + hmac.new(flaky.secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == expected
    event = json.loads(flaky_got[0][1])
    assert (event["type"], event["data"]["device"], event["data"]["level"]) == (
        "cn.yujing.alert.raised", "dev-17", "red",
    )  # fmt: skip
    assert [d["state"] for d in await webhooks.deliveries(pool, flaky.id, None, 10)] == [
        "delivered"
    ]
    [dead_gone] = await webhooks.deliveries(pool, gone.id, "dead", 10)
    assert (dead_gone["attempts"], dead_gone["last_status"]) == (1, 410)
    dead_refused = await webhooks.deliveries(pool, refused.id, "dead", 10)
    assert sorted(d["seq"] for d in dead_refused) == [1, 2]  # red and yellow, not dev-9
    assert all(d["attempts"] == 3 and "Connect" in d["last_error"] for d in dead_refused)
    assert await webhooks.deliveries(pool, other.id, None, 10) == []
    assert not any(p == "/other" for p, _, _ in receiver.got)
