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
from cryptography.fernet import Fernet

from yujing.alerts import destinations, maintenance, webhooks
from yujing.alerts.dispatch import SIGNATURE_HEADER, WebhookDispatcher
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore
from yujing.levels import Level
from yujing.testing.alerts import Clock, WebhookReceiver, at
from yujing.testing.alerts import level_change as change
from yujing.testing.servers import free_port

pytestmark = pytest.mark.integration
N = Level.NONE
LOOPBACK = "127.0.0.0/8"  # the receivers of these tests; refused unless allowed


async def subscribe(pool: asyncpg.Pool, url: str, ents: list[str] | None, lvl: Level) -> Any:
    return await webhooks.subscribe(
        pool, url=url, enterprises=ents, min_level=lvl, transitions=True, escalations=False,
        who="admin", now=at(0),
    )  # fmt: skip


async def test_deliveries_are_signed_retried_and_dead_lettered(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = AlertSettings(
        webhook_max_attempts=3, webhook_backoff_s=1.0, webhook_allow_cidrs=LOOPBACK
    )
    receiver = WebhookReceiver({"/flaky": [500], "/gone": [410]}, reply=b"internal page")
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
    assert dead_gone["last_error"] == "HTTP 410"  # never the receiver's body
    dead_refused = await webhooks.deliveries(pool, refused.id, "dead", 10)
    assert sorted(d["seq"] for d in dead_refused) == [1, 2]  # red and yellow, not dev-9
    assert all(d["attempts"] == 3 and "Connect" in d["last_error"] for d in dead_refused)
    assert await webhooks.deliveries(pool, other.id, None, 10) == []
    assert not any(p == "/other" for p, _, _ in receiver.got)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/x", "http://192.168.1.1/x", "http://172.16.0.1/x",
        "http://100.64.0.1/x", "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x",
        "http://[fe80::1]/x", "http://2130706433/x", "http://0177.0.0.1/x",
        "http://0x7f.1/x", "http://127.1/x", "http://localhost:8000/x",
        "http://a.localhost/x", "http://user:pw@example.com/x", "ftp://example.com/x",
        "http://224.0.0.1/x", "http://example.com:99999/x", "http://\x86x.com/",
    ],
)  # fmt: skip
def test_inside_destinations_are_refused(url: str) -> None:
    with pytest.raises(destinations.Refused):
        destinations.check_url(url, [])


def test_public_destinations_and_allowed_ranges_pass() -> None:
    assert destinations.check_url("https://hooks.example.com/yj", []) == "hooks.example.com"
    assert str(destinations.check_url("http://8.8.8.8/x", [])) == "8.8.8.8"
    allow = destinations.networks("127.0.0.0/8, 10.8.0.0/16")
    assert str(destinations.check_url("http://127.0.0.1:9/x", allow)) == "127.0.0.1"
    assert str(destinations.check_url("http://10.8.3.4/x", allow)) == "10.8.3.4"
    with pytest.raises(destinations.Refused):
        destinations.check_url("http://10.9.0.1/x", allow)


async def test_the_policy_is_checked_again_at_delivery(pool: asyncpg.Pool, clock: Clock) -> None:
    """A subscription whose destination is inside (allowed when it was made, or a name that
    resolves there now: DNS rebinding) is refused at delivery: dead, nothing sent."""
    receiver = WebhookReceiver()
    store = AlertStore(pool, clock)
    async with receiver.serving(free_port()) as base, httpx.AsyncClient(timeout=5) as client:
        sub = await subscribe(pool, f"{base}/inside", None, Level.BLUE)
        await webhooks.WebhookFanout(pool, clock).publish(
            await store.apply([change(1, N, Level.RED)])
        )
        clock.to(1)
        assert await WebhookDispatcher(pool, clock, AlertSettings()).deliver_due(client) == 1
    [dead] = await webhooks.deliveries(pool, sub.id, "dead", 10)
    assert dead["attempts"] == 1 and dead["last_error"].startswith("destination refused")
    assert receiver.got == []


async def test_secrets_are_encrypted_at_rest_and_old_rows_migrated(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    settings = AlertSettings(webhook_allow_cidrs=LOOPBACK, webhook_secret_keys=keys)
    box = webhooks.SecretBox.from_settings(settings)
    receiver = WebhookReceiver()
    store = AlertStore(pool, clock)
    async with receiver.serving(free_port()) as base, httpx.AsyncClient(timeout=5) as client:
        new = await webhooks.subscribe(
            pool, url=f"{base}/new", enterprises=None, min_level=Level.BLUE, transitions=True,
            escalations=False, who="admin", now=at(0), secret="s" * 20, box=box,
        )  # fmt: skip
        async with pool.acquire() as conn:  # a row written in clear by an older yujing
            await conn.execute(
                "INSERT INTO webhook_subscriptions (id, url, secret, min_level, created_by,"
                " created_at) VALUES ('wh-old', $1, 'whsec_plain-old-secret', 1, 'a', $2)",
                f"{base}/old", at(0),
            )  # fmt: skip
        assert await webhooks.seal_plaintext(pool, box) == 1
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, secret FROM webhook_subscriptions")
        stored: dict[str, str] = {r["id"]: r["secret"] for r in rows}
        assert all(v.startswith(webhooks.SEALED) for v in stored.values())
        assert "s" * 20 not in stored[new.id] and "plain-old" not in stored["wh-old"]
        await webhooks.WebhookFanout(pool, clock).publish(
            await store.apply([change(1, N, Level.RED)])
        )
        clock.to(1)
        assert await WebhookDispatcher(pool, clock, settings).deliver_due(client) == 2
    for path, secret in (("/new", "s" * 20), ("/old", "whsec_plain-old-secret")):
        [(headers, body)] = [(h, b) for p, h, b in receiver.got if p == path]
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == expected
