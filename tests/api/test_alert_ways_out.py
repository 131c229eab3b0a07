"""The alert ways out through the HTTP API on a real PostgreSQL: webhook subscriptions and
their deliveries, maintenance windows, CAP (one message and the Atom feed), the ISA-18.2
figures, the AsyncAPI document."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jsonschema
import pydantic
import pytest
from lxml import etree

from yujing.alerts import cap, cloudevents, webhooks
from yujing.alerts.dispatch import WebhookDispatcher
from yujing.alerts.settings import AlertSettings
from yujing.alerts.stats import StatsRefresher
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role, create_token
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.levels import Level
from yujing.testing.alerts import Clock, at
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE
CAP_NS = {"cap": cap.NS, "atom": cap.ATOM}


@pytest.fixture
def clock() -> Clock:
    return Clock(at(0))


@pytest.fixture
def store(pool: asyncpg.Pool, clock: Clock) -> AlertStore:
    # Webhook receivers of these tests are on loopback, which only this setting allows.
    return AlertStore(
        pool, clock, AlertSettings(cap_sender_code="YJ123", webhook_allow_cidrs="127.0.0.0/8")
    )


@pytest.fixture
async def client(pool: asyncpg.Pool, store: AlertStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def auth(pool: asyncpg.Pool, role: Role, *enterprises: str) -> dict[str, str]:
    t = await create_token(
        pool, f"{role.name.lower()}-{'-'.join(enterprises)}", role, list(enterprises)
    )
    return {"Authorization": f"Bearer {t}"}


async def test_webhook_subscriptions_and_dead_letters(
    client: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    admin = await auth(pool, Role.ADMIN, "*")
    ent1_admin = await auth(pool, Role.ADMIN, "ent1")
    body = {"url": "http://127.0.0.1:9/hook", "enterprises": ["ent1"], "min_level": "orange"}
    r = await client.post("/api/v1/webhooks", json=body, headers=ent1_admin)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_") and sub["min_level"] == "orange"
    r = await client.post(
        "/api/v1/webhooks", json={**body, "enterprises": ["*"]}, headers=ent1_admin
    )
    assert r.status_code == 403  # beyond the caller's scope
    r = await client.post("/api/v1/webhooks", json={**body, "url": "ftp://x"}, headers=admin)
    assert r.status_code == 422
    viewer = await auth(pool, Role.VIEWER, "*")
    assert (await client.get("/api/v1/webhooks", headers=viewer)).status_code == 403
    listed = (await client.get("/api/v1/webhooks", headers=ent1_admin)).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]

    # A change for ent1 at red: queued, tried once against a closed port, dead-lettered.
    changes = await store.apply([change(1, N, Level.RED)])
    await webhooks.WebhookFanout(pool, clock).publish(changes)
    settings = AlertSettings(webhook_max_attempts=1, webhook_allow_cidrs="127.0.0.0/8")
    async with httpx.AsyncClient() as http:
        assert await WebhookDispatcher(pool, clock, settings).deliver_due(http) == 1
    r = await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries?state=dead", headers=admin)
    [dead] = r.json()["items"]
    assert dead["attempts"] == 1 and dead["last_error"] and dead["seq"] == changes[0].seq
    ent2_admin = await auth(pool, Role.ADMIN, "ent2")
    assert (
        await client.get(f"/api/v1/webhooks/{sub['id']}", headers=ent2_admin)
    ).status_code == 404
    assert (await client.delete(f"/api/v1/webhooks/{sub['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin)).status_code == 404


async def test_maintenance_windows_through_the_api(
    client: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    op = await auth(pool, Role.OPERATOR, "ent1")
    window = {
        "enterprise": "ent1",
        "device": "dev-17",
        "ends_at": at(600).isoformat(),
        "reason": "更换传感器",
    }
    r = await client.post("/api/v1/maintenance", json=window, headers=op)
    assert r.status_code == 201, r.text
    declared = r.json()
    assert declared["starts_at"] == at(0).isoformat() and declared["created_by"] == "operator-ent1"
    r = await client.post("/api/v1/maintenance", json={**window, "enterprise": "ent2"}, headers=op)
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/maintenance", json={**window, "device": None, "point": "ch4"}, headers=op
    )
    assert r.status_code == 422
    [inside] = await store.apply([change(60, N, Level.RED)])
    assert inside.alert["suppressed"] and not inside.notify
    clock.to(120)
    r = await client.post(f"/api/v1/maintenance/{declared['id']}/end", headers=op)
    assert r.status_code == 200 and r.json()["ends_at"] == at(120).isoformat()
    [after] = await store.apply([change(180, Level.RED, Level.ORANGE)])
    assert not after.alert["suppressed"] and after.notify
    active = await client.get(
        "/api/v1/maintenance", params={"active_at": at(100).isoformat()}, headers=op
    )
    assert [w["id"] for w in active.json()["items"]] == [declared["id"]]


async def test_cap_of_one_transition_and_the_feed(
    client: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore
) -> None:
    viewer = await auth(pool, Role.VIEWER, "ent1")
    raised, escalated = await store.apply(
        [change(1, N, Level.ORANGE), change(2, Level.ORANGE, Level.RED)]
    )
    await store.apply([change(3, N, Level.RED, ent="ent2")])
    r = await client.get(f"/api/v1/alerts/{raised.alert_id}/cap", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"] == cap.MEDIA_TYPE
    doc = etree.fromstring(r.content)
    assert doc.findtext("cap:msgType", namespaces=CAP_NS) == "Update"  # the latest: escalated
    assert doc.findtext("cap:info/cap:severity", namespaces=CAP_NS) == "Red"
    r = await client.get(
        f"/api/v1/alerts/{raised.alert_id}/cap",
        params={"seq": raised.seq, "profile": "international"},
        headers=viewer,
    )
    doc = etree.fromstring(r.content)
    assert doc.findtext("cap:msgType", namespaces=CAP_NS) == "Alert"
    assert doc.findtext("cap:info/cap:severity", namespaces=CAP_NS) == "Severe"
    assert doc.findtext("cap:identifier", namespaces=CAP_NS).startswith("YJ123_20251123080001")
    r = await client.get(
        f"/api/v1/alerts/{raised.alert_id}/cap", params={"seq": 999}, headers=viewer
    )
    assert r.status_code == 404
    r = await client.get(
        f"/api/v1/alerts/{raised.alert_id}/cap", params={"profile": "x"}, headers=viewer
    )
    assert r.status_code == 422
    feed = await client.get("/api/v1/alerts/cap", headers=viewer)
    assert feed.headers["content-type"].startswith(cap.ATOM_TYPE)
    entries = etree.fromstring(feed.content).findall("atom:entry", CAP_NS)
    # Only ent1's two transitions: the caller's scope holds for the feed too.
    path = "atom:content/cap:alert/cap:incidents"
    incidents = [e.findtext(path, namespaces=CAP_NS) for e in entries]
    assert incidents == [escalated.alert_id, raised.alert_id]


async def test_alarm_figures(
    client: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    op = await auth(pool, Role.OPERATOR, "*")
    # ent1: 12 alarms inside one 10-minute period (a flood), ent2: one.
    for i in range(12):
        await store.apply(
            [change(10 + i, N, Level.ORANGE, device=f"d{i % 3}", point=f"p{i}", rule=f"r{i % 2}")]
        )
    [slow] = await store.apply([change(30, N, Level.RED, ent="ent2")])
    clock.to(90)
    await client.post(f"/api/v1/alerts/{slow.alert_id}/ack", json={}, headers=op)
    await store.apply([change(100, Level.RED, N, ent="ent2")])
    clock.to(400)
    r = await client.post(
        f"/api/v1/alerts/{slow.alert_id}/close",
        json={"disposal": "已处置", "follow_up": {"cause": "ventilation", "measures": "调风"}},
        headers=op,
    )
    assert r.status_code == 200
    clock.to(86400 + 3600)  # a day and an hour later: the ent1 alarms are standing
    r = await client.get("/api/v1/alerts/stats", params={"since": at(0).isoformat()}, headers=op)
    figures: dict[str, Any] = r.json()
    ent1, ent2 = figures["rate"]
    assert (ent1["enterprise"], ent1["alarms"], ent1["peak_10min"]) == ("ent1", 12, 12)
    assert ent1["flood_share"] == pytest.approx(1 / 150, abs=1e-4)  # 1 of 150 periods
    assert (ent2["enterprise"], ent2["alarms"]) == ("ent2", 1)
    assert figures["standing"]["count"] == 12 and figures["standing"]["by_enterprise"] == {
        "ent1": 12
    }
    assert figures["top_rules"] == [
        {"name": "r0", "alarms": 6},
        {"name": "r1", "alarms": 6},
        {"name": "coal-face-ch4", "alarms": 1},
    ]
    assert figures["top_devices"][0] == {"name": "ent1/d0", "alarms": 4}
    assert figures["time_to_ack_s"]["median"] == 60.0 and figures["time_to_ack_s"]["n"] == 1
    assert figures["time_to_close_s"]["max"] == 370.0
    # the follow-up record (超限报警追查) came with the close: 370 s to on-site feedback
    assert (figures["time_to_feedback_s"]["n"], figures["time_to_feedback_s"]["max"]) == (1, 370.0)
    ent2_only = (
        await client.get(
            "/api/v1/alerts/stats",
            params={"enterprise": "ent2", "since": at(0).isoformat()},
            headers=op,
        )
    ).json()
    assert [r["enterprise"] for r in ent2_only["rate"]] == ["ent2"]
    # /metrics: the alerts stage's refresher; an hour window ending at t=10 min holds
    # ent1's 12 alarms, i.e. 2 per 10 minutes, and the one acknowledgement (60 s).
    clock.to(600)
    await StatsRefresher(pool, clock).refresh()
    scraper = await auth(pool, Role.VIEWER, "*")  # /metrics needs a token of global scope
    metrics = (await client.get("/metrics", headers=scraper)).text
    assert 'yj_alarm_rate_per_10min{enterprise="ent1"} 2.0' in metrics
    assert 'yj_alarm_ack_seconds{stat="median"} 60.0' in metrics


async def test_the_asyncapi_document(
    client: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore
) -> None:
    doc = (await client.get("/api/v1/asyncapi.json")).json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the model package's own field names
        from asyncapi3 import AsyncAPI3
    AsyncAPI3.model_validate(doc)
    with pytest.raises(pydantic.ValidationError):  # the model does check: not a 3.x document
        AsyncAPI3.model_validate({**doc, "asyncapi": "2.6.0"})
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["alertFeed"]["address"] == "yj.alerts"
    assert doc["channels"]["alertsMqtt"]["address"] == "yj/alerts/{enterprise}/{level}"
    for ref in _refs(doc):
        _resolve(doc, ref)  # every $ref points at something
    # A real event validates against the document's own schema.
    [raised] = await store.apply([change(1, N, Level.RED)])
    schema = {
        **doc["channels"]["alertFeed"]["messages"]["alertTransition"]["payload"],
        "components": doc["components"],
    }
    jsonschema.validate(cloudevents.to_cloudevent(raised), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cloudevents.to_cloudevent(raised), "type": "x"}, schema)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node
