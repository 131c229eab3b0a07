"""The hazard watch as timelines on a real PostgreSQL: repeated alarms propose a hazard,
an overdue hazard climbs the jurisdiction ladder, alerts past their time limits are pushed
up it, and orange or red hazard alarms close only with a follow-up record."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.hazards.conftest import PNG, bearer
from yujing.alerts import webhooks
from yujing.alerts.store import AlertStore
from yujing.api.auth import Role
from yujing.hazards.settings import HazardSettings
from yujing.hazards.watch import HazardWatch
from yujing.levels import Level
from yujing.testing.alerts import Clock, at
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N, OR, R, Y = Level.NONE, Level.ORANGE, Level.RED, Level.YELLOW
SETTINGS = HazardSettings()
H = "/api/v1/hazards"


async def cycle(store: AlertStore, t_s: float, to: Level, **kw: Any) -> str:
    """One alarm on a point: up to `to` at t, cleared at t + 60 s; returns the alert id."""
    [up] = await store.apply([change(t_s, N, to, **kw)])
    await store.apply([change(t_s + 60, to, N, **kw)])
    return up.alert_id


async def escalation_events(pool: asyncpg.Pool, sub_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT body FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY id", sub_id
        )
    return [json.loads(bytes(r["body"])) for r in rows]


async def test_three_alarms_on_one_point_propose_a_hazard(
    pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    watch = HazardWatch(pool, clock, SETTINGS)
    # Three orange-or-higher alarms on gd-1/ch4 within 24 h: the first alert reopens twice.
    first = await cycle(store, 0, OR, device="gd-1")
    await store.apply([change(3600, N, R, device="gd-1"), change(3660, R, N, device="gd-1")])
    second = await cycle(store, 7200, OR, device="gd-1", rule="upper-corner-ch4")
    # Not enough elsewhere: two alarms, a yellow one, and device-health alarms.
    await cycle(store, 0, OR, device="gd-2")
    await cycle(store, 100, OR, device="gd-2")
    for t in (0, 100, 200):
        await cycle(store, t, Y, device="gd-3")
        await cycle(store, t, OR, device="gd-4", rule="gd-4-offline", health=True)
    clock.to(8000)
    out = await watch.tick()
    [proposed] = out.hazard_changes
    h = proposed.alert
    assert (proposed.transition, proposed.actor, h["state"], h["source"]) == (
        "proposed", "yujing", "reported", "alarm",
    )  # fmt: skip
    assert (h["enterprise"], h["device"], h["point"], h["category"]) == (
        "ent1", "gd-1", "ch4", "general.repeated_alarm",
    )  # fmt: skip
    assert sorted(h["alert_ids"]) == sorted([first, second])
    assert (await watch.tick()).hazard_changes == []  # proposed once
    # Three more alarms on the same point while it is open: linked, not proposed again.
    for t, rule in ((9000, "r2"), (9100, "r3"), (9200, "r4")):
        await cycle(store, t, R, device="gd-1", rule=rule)
    clock.to(9300)
    [linked] = (await watch.tick()).hazard_changes
    assert (linked.transition, linked.alert_id, len(linked.alert["alert_ids"])) == (
        "linked", h["id"], 5,
    )  # fmt: skip
    # Out of the window: alarms more than 24 h ago no longer count.
    for t in (10_000, 20_000):
        await cycle(store, t, OR, device="gd-5")
    clock.to(10_000 + 86_400 + 1)
    await cycle(store, 10_000 + 86_400, OR, device="gd-5")
    assert (await watch.tick()).hazard_changes == []


async def test_an_overdue_hazard_climbs_the_ladder(
    api: httpx.AsyncClient, pool: asyncpg.Pool, clock: Clock
) -> None:
    target = await webhooks.subscribe(
        pool, url="http://127.0.0.1:9/duty", enterprises=["ent1"], min_level=Level.RED,
        transitions=False, escalations=True, who="admin", now=at(0),
    )  # fmt: skip
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    sup = await bearer(pool, "sup", Role.SUPERVISOR, "ent1")
    body = {
        "enterprise": "ent1", "source": "inspection", "grade": "major",
        "category": "coal.ventilation", "description": "回风巷风量不足",
    }  # fmt: skip
    hid = (await api.post(H, json=body, headers=sup)).json()["id"]
    await api.post(f"{H}/{hid}/confirm", json={}, headers=sup)
    plan = {
        "responsible_unit": "通风科", "responsible_person": "王工", "measures": "调整风门",
        "deadline": at(86_400).isoformat(),
    }  # fmt: skip
    await api.post(f"{H}/{hid}/plan", json=plan, headers=op)
    watch = HazardWatch(pool, clock, SETTINGS)

    async def tick(t_s: float) -> list[tuple[str, str]]:
        clock.to(t_s)
        return [
            (c.transition, c.alert["escalated_tier"]) for c in (await watch.tick()).hazard_changes
        ]

    assert await tick(86_400) == []
    assert await tick(86_401) == [("overdue", "enterprise"), ("escalated", "county")]
    assert await tick(86_400 + 3600) == []
    # A major hazard climbs a level per 24 h past its deadline (yujing's default).
    assert await tick(2 * 86_400 + 1) == [("escalated", "city")]
    assert await tick(5 * 86_400) == [("escalated", "province")]
    assert await tick(6 * 86_400) == []
    events = await escalation_events(pool, target.id)
    assert [(e["type"], e["tier"]) for e in events] == [
        ("cn.yujing.hazard.escalated", "county"), ("cn.yujing.hazard.escalated", "city"),
        ("cn.yujing.hazard.escalated", "province"),
    ]  # fmt: skip
    listed = (await api.get(H, params={"overdue": "true"}, headers=sup)).json()["items"]
    assert [x["id"] for x in listed] == [hid] and listed[0]["escalated_tier"] == "province"
    stats = (await api.get(f"{H}/stats", headers=sup)).json()["total"]
    assert (stats["found"], stats["overdue"], stats["major_open"]) == (1, 1, 1)
    # A late rectification clears the flag; the climb stays on the record.
    await api.post(f"{H}/{hid}/evidence", files={"file": ("a.png", PNG, "image/png")}, headers=op)
    r = await api.post(f"{H}/{hid}/rectified", json={"note": "迟到的整改"}, headers=op)
    assert (r.json()["overdue"], r.json()["escalated_tier"]) == (False, "province")
    steps = [c["transition"] for c in (await api.get(f"{H}/{hid}", headers=sup)).json()["history"]]
    assert steps.count("escalated") == 3 and steps[-1] == "rectified"


async def test_alerts_past_their_limits_are_pushed_up_the_ladder(
    api: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    target = await webhooks.subscribe(
        pool, url="http://127.0.0.1:9/duty", enterprises=None, min_level=Level.BLUE,
        transitions=False, escalations=True, who="admin", now=at(0),
    )  # fmt: skip
    admin = await bearer(pool, "admin", Role.ADMIN, "*")
    r = await api.post("/api/v1/webhooks", headers=admin, json={
        "url": "http://8.8.8.8/city-centre", "escalations": True, "transitions": False,
        "tier": "city",
    })  # fmt: skip
    assert r.status_code == 201 and r.json()["tier"] == "city"
    city_centre = r.json()["id"]
    r = await api.put(f"{H}/limits/red", json={"ack_s": 120, "feedback_s": 1800}, headers=admin)
    assert r.json() == {"subject": "red", "ack_s": 120.0, "feedback_s": 1800.0}
    viewer = await bearer(pool, "v", Role.VIEWER, "*")
    put = await api.put(f"{H}/limits/red", json={"feedback_s": 1}, headers=viewer)
    assert put.status_code == 403
    [red] = await store.apply([change(0, N, R)])
    [orange] = await store.apply([change(0, N, OR, device="gd-9")])
    watch = HazardWatch(pool, clock, SETTINGS)

    async def tick(t_s: float) -> list[tuple[str, str, str]]:
        clock.to(t_s)
        out = (await watch.tick()).alert_notices
        return [(n.alert_id, n.limit, n.tier.word) for n in out]

    assert await tick(119) == []
    assert await tick(120) == [(red.alert_id, "ack", "county")]
    assert await tick(240) == [(red.alert_id, "ack", "city")]
    await store.acknowledge(red.alert_id, "op", None, lambda _: True)
    # orange: 15 min to acknowledge (default), one level more per 15 min;
    # red: 30 min to its follow-up record (set above).
    assert await tick(900) == [(orange.alert_id, "ack", "county")]
    assert set(await tick(1800)) == {
        (orange.alert_id, "ack", "city"), (red.alert_id, "feedback", "county"),
    }  # fmt: skip
    detail = (await api.get(f"/api/v1/alerts/{red.alert_id}", headers=admin)).json()
    tiers = [(e["limit"], e["tier"]) for e in detail["escalations"]]
    assert tiers == [("ack", "county"), ("ack", "city"), ("feedback", "county")]
    events = await escalation_events(pool, target.id)
    assert [e["reason"] for e in events if e["subject"].startswith("ent1/dev-17")] == [
        "ack_overdue", "ack_overdue", "feedback_overdue",
    ]  # fmt: skip
    # The city centre's target gets the pushes to the city level only.
    city_events = await escalation_events(pool, city_centre)
    assert [(e["data"]["device"], e["reason"], e["tier"]) for e in city_events] == [
        ("dev-17", "ack_overdue", "city"), ("gd-9", "ack_overdue", "city"),
    ]  # fmt: skip


async def test_an_orange_or_red_alarm_closes_with_a_follow_up(
    api: httpx.AsyncClient, pool: asyncpg.Pool, store: AlertStore, clock: Clock
) -> None:
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    sup = await bearer(pool, "sup", Role.SUPERVISOR, "ent1")
    orange = await cycle(store, 0, OR)
    yellow = await cycle(store, 0, Y, device="gd-y")
    health = await cycle(store, 0, R, device="gd-h", rule="offline", health=True)
    clock.to(600)
    close = {"disposal": "已处置"}
    r = await api.post(f"/api/v1/alerts/{orange}/close", json=close, headers=op)
    assert r.status_code == 422 and "follow-up" in r.json()["detail"]
    for plain in (yellow, health):
        r = await api.post(f"/api/v1/alerts/{plain}/close", json=close, headers=op)
        assert r.json()["state"] == "closed"
    follow = {"cause": "calibration", "measures": "标校时未挂牌, 已补登记"}
    r = await api.post(f"/api/v1/alerts/{orange}/follow-up", json=follow, headers=sup)
    assert r.status_code == 403
    r = await api.post(f"/api/v1/alerts/{orange}/follow-up", json={"cause": "?"}, headers=op)
    assert r.status_code == 422
    r = await api.post(f"/api/v1/alerts/{orange}/follow-up", json=follow, headers=op)
    assert r.status_code == 201 and r.json()["cause_zh"] == "标校、调试"
    assert (
        await api.post(f"/api/v1/alerts/{orange}/follow-up", json=follow, headers=op)
    ).status_code == 409
    r = await api.post(f"/api/v1/alerts/{orange}/close", json=close, headers=op)
    assert r.json()["state"] == "closed"
    got = (await api.get(f"/api/v1/alerts/{orange}/follow-up", headers=sup)).json()
    assert (got["recorded_by"], got["recorded_at"]) == ("op", at(600).isoformat())
    other = await bearer(pool, "op2", Role.OPERATOR, "ent2")
    assert (await api.get(f"/api/v1/alerts/{orange}/follow-up", headers=other)).status_code == 404
