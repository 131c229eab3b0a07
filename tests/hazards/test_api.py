"""`/api/v1/hazards` on a real PostgreSQL: the closed loop step by step, refusals as
problem+json (409 wrong state, 403 wrong role or level, 422 missing evidence), uploads
refused whole, and scope."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import httpx
import pytest

from tests.hazards.conftest import JPEG, PDF, PNG, bearer
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.hazards.settings import HazardSettings
from yujing.ingest.bus import MemoryBus
from yujing.testing.alerts import Clock, at

pytestmark = pytest.mark.integration

H = "/api/v1/hazards"
REPORT = {
    "enterprise": "ent1", "source": "self_check", "grade": "major",
    "category": "dust.no_airlock", "description": "2号干式除尘器未采用锁气卸灰",
    "site": "ws-2", "device": "dc-2",
}  # fmt: skip
PLAN = {
    "responsible_unit": "设备科", "responsible_person": "李工",
    "measures": "加装星型卸灰阀", "deadline": at(72 * 3600).isoformat(),
}  # fmt: skip


def problem(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail: str = r.json()["detail"]
    return detail


async def upload(
    api: httpx.AsyncClient, hid: str, who: dict[str, str], body: bytes, kind: str, name: str
) -> httpx.Response:
    return await api.post(f"{H}/{hid}/evidence", files={"file": (name, body, kind)}, headers=who)


async def test_the_closed_loop_with_a_send_back(
    api: httpx.AsyncClient, pool: asyncpg.Pool, clock: Clock
) -> None:
    op = await bearer(pool, "op-wang", Role.OPERATOR, "ent1")
    op2 = await bearer(pool, "op-zhao", Role.OPERATOR, "ent1")
    sup = await bearer(pool, "sup-county", Role.SUPERVISOR, "ent1")
    r = await api.post(H, json=REPORT, headers=op)
    assert r.status_code == 201, r.text
    h: dict[str, Any] = r.json()
    hid = h["id"]
    assert (h["state"], h["reported_by"], h["grade"]) == ("reported", "op-wang", "major")

    clock.to(3600)
    assert (await api.post(f"{H}/{hid}/confirm", json={}, headers=sup)).json()["state"] == (
        "confirmed"
    )
    clock.to(2 * 3600)
    r = await api.post(f"{H}/{hid}/plan", json=PLAN, headers=op)
    assert r.json()["state"] == "rectifying" and r.json()["deadline"] == PLAN["deadline"]

    clock.to(30 * 3600)
    detail = problem(await api.post(f"{H}/{hid}/rectified", json={"note": "完成"}, headers=op), 422)
    assert "evidence" in detail
    r = await upload(api, hid, op, JPEG, "image/jpeg", "卸灰阀.jpg")
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["content_type"], photo["size"], photo["sha256"]) == (
        "image/jpeg", len(JPEG), hashlib.sha256(JPEG).hexdigest(),
    )  # fmt: skip
    clock.to(31 * 3600)
    assert (await api.post(f"{H}/{hid}/rectified", json={"note": "完成"}, headers=op)).json()[
        "rectified_by"
    ] == "op-wang"

    # Review: not an operator (403), and not a wrong state (409 once signed off).
    problem(await api.post(f"{H}/{hid}/sign-off", json={}, headers=op2), 403)
    clock.to(32 * 3600)
    r = await api.post(f"{H}/{hid}/send-back", json={"reason": "照片看不到铭牌"}, headers=sup)
    assert (r.json()["state"], r.json()["sent_back"]) == ("rectifying", 1)
    clock.to(33 * 3600)  # the old photo predates the send-back: new evidence is needed
    problem(await api.post(f"{H}/{hid}/rectified", json={"note": "再次完成"}, headers=op), 422)
    assert (await upload(api, hid, op2, PDF, "application/pdf", "验收单.pdf")).status_code == 201
    r = await api.post(f"{H}/{hid}/rectified", json={"note": "补充验收单"}, headers=op2)
    assert r.json()["state"] == "rectified"
    clock.to(34 * 3600)
    r = await api.post(f"{H}/{hid}/sign-off", json={"note": "同意销号"}, headers=sup)
    assert (r.json()["state"], r.json()["signed_off_by"]) == ("signed_off", "sup-county")
    problem(await api.post(f"{H}/{hid}/sign-off", json={}, headers=sup), 409)

    one = (await api.get(f"{H}/{hid}", headers=op)).json()
    steps = [(c["transition"], c["actor"]) for c in one["history"]]
    assert steps == [
        ("reported", "op-wang"), ("confirmed", "sup-county"), ("rectifying", "op-wang"),
        ("evidence_added", "op-wang"), ("rectified", "op-wang"), ("sent_back", "sup-county"),
        ("evidence_added", "op-zhao"), ("rectified", "op-zhao"), ("signed_off", "sup-county"),
    ]  # fmt: skip
    seqs = [c["seq"] for c in one["history"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert one["history"][5]["note"] == "照片看不到铭牌"
    assert one["history"][5]["at"] == at(32 * 3600).isoformat()
    assert [e["filename"] for e in one["evidence"]] == ["卸灰阀.jpg", "验收单.pdf"]
    r = await api.get(one["evidence"][0]["href"], headers=op)
    assert r.content == JPEG and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-sha256"] == photo["sha256"]


async def test_listed_supervision_is_signed_off_by_its_level_only(
    api: httpx.AsyncClient, pool: asyncpg.Pool, clock: Clock
) -> None:
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    county = await bearer(pool, "county", Role.SUPERVISOR, "ent1")
    province = await bearer(pool, "province", Role.SUPERVISOR, "*")
    hid = (await api.post(H, json=REPORT, headers=op)).json()["id"]
    listing = {"deadline": at(10 * 86400).isoformat(), "note": "省级挂牌督办"}
    r = await api.post(f"{H}/{hid}/list", json=listing, headers=province)
    assert (r.json()["listed_tier"], r.json()["due"]) == ("province", listing["deadline"])
    problem(await api.post(f"{H}/{hid}/list", json=listing, headers=op), 403)
    await api.post(f"{H}/{hid}/confirm", json={}, headers=county)
    await api.post(f"{H}/{hid}/plan", json=PLAN, headers=op)
    clock.to(60)
    await upload(api, hid, op, PNG, "image/png", "after.png")
    await api.post(f"{H}/{hid}/rectified", json={"note": "done"}, headers=op)
    assert "province level" in problem(
        await api.post(f"{H}/{hid}/sign-off", json={}, headers=county), 403
    )
    r = await api.post(f"{H}/{hid}/sign-off", json={}, headers=province)
    assert r.json()["state"] == "signed_off"
    listed = (await api.get(H, params={"listed": "true"}, headers=county)).json()["items"]
    assert [x["id"] for x in listed] == [hid]


async def test_bad_uploads_are_refused_and_nothing_is_kept(
    pool: asyncpg.Pool, store: AlertStore
) -> None:
    # The settings are handed to the app (read from the environment once, at start).
    small = HazardSettings(hazard_evidence_max_bytes=2048)
    app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store),
                     hazard_settings=small)  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        await _bad_uploads(api, pool)


async def _bad_uploads(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    hid = (await api.post(H, json=REPORT, headers=op)).json()["id"]
    assert "empty" in problem(await upload(api, hid, op, b"", "image/jpeg", "e.jpg"), 422)
    big = JPEG + b"\x00" * 2048
    assert "larger" in problem(await upload(api, hid, op, big, "image/jpeg", "big.jpg"), 413)
    script = b"<script>alert(1)</script>"
    assert "accepted" in problem(await upload(api, hid, op, script, "image/png", "x.png"), 415)
    assert "declared" in problem(await upload(api, hid, op, PNG, "image/jpeg", "x.jpg"), 415)
    exe = b"MZ\x90\x00" + b"\x00" * 100
    problem(await upload(api, hid, op, exe, "application/pdf", "x.pdf"), 415)
    r = await api.post(f"{H}/{hid}/evidence", data={"file": "not a file"}, headers=op)
    problem(r, 422)
    one = (await api.get(f"{H}/{hid}", headers=op)).json()
    assert one["evidence"] == [] and [c["transition"] for c in one["history"]] == ["reported"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM hazard_evidence") == 0
    viewer = await bearer(pool, "v", Role.VIEWER, "ent1")
    problem(await upload(api, hid, viewer, PNG, "image/png", "v.png"), 403)
    ok = await upload(api, hid, op, PNG, "application/octet-stream", "ok.png")
    assert ok.json()["content_type"] == "image/png"  # the bytes decide, not the header


async def test_another_enterprise_sees_nothing(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    other = await bearer(pool, "op2", Role.OPERATOR, "ent2")
    other_sup = await bearer(pool, "sup2", Role.SUPERVISOR, "ent2")
    hid = (await api.post(H, json=REPORT, headers=op)).json()["id"]
    eid = (await upload(api, hid, op, PNG, "image/png", "a.png")).json()["id"]
    assert (await api.get(H, headers=other)).json() == {"items": [], "next_cursor": None}
    assert (await api.get(H, params={"enterprise": "ent1"}, headers=other)).json()["items"] == []
    problem(await api.get(f"{H}/{hid}", headers=other), 404)
    problem(await api.get(f"{H}/{hid}/evidence/{eid}", headers=other), 404)
    problem(await api.post(f"{H}/{hid}/confirm", json={}, headers=other_sup), 404)
    problem(await upload(api, hid, other, PNG, "image/png", "b.png"), 404)
    problem(await api.post(H, json=REPORT, headers=other), 403)
    stats = (await api.get(f"{H}/stats", headers=other)).json()
    assert stats["total"]["found"] == 0


async def test_refusals_and_listing_with_a_cursor(
    api: httpx.AsyncClient, pool: asyncpg.Pool, clock: Clock
) -> None:
    op = await bearer(pool, "op", Role.OPERATOR, "ent1")
    admin = await bearer(pool, "admin", Role.ADMIN, "*")
    sup = await bearer(pool, "sup", Role.SUPERVISOR, "*")
    ids = []
    for i in range(5):
        clock.to(i)
        body = {**REPORT, "grade": "general", "description": f"隐患 {i}"}
        ids.append((await api.post(H, json=body, headers=op)).json()["id"])
    problem(await api.post(f"{H}/{ids[0]}/confirm", json={}, headers=admin), 403)
    problem(await api.post(f"{H}/{ids[0]}/plan", json=PLAN, headers=op), 409)
    problem(
        await api.post(f"{H}/{ids[0]}/list", json={"deadline": PLAN["deadline"]}, headers=sup), 409
    )
    problem(await api.post(H, json={**REPORT, "category": "nope"}, headers=op), 422)
    problem(await api.post(H, json={**REPORT, "source": "alarm"}, headers=op), 422)
    problem(
        await api.post(H, json={**REPORT, "alert_ids": ["a-none"], "source": "alarm"}, headers=op),
        422,
    )
    problem(await api.get(H, params={"cursor": "x"}, headers=op), 422)
    problem(await api.get(f"{H}/h-nothing", headers=op), 404)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(H, params=params, headers=op)).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    dismissed = await api.post(f"{H}/{ids[1]}/dismiss", json={"reason": "重复上报"}, headers=sup)
    assert dismissed.json()["state"] == "dismissed"
    states = (await api.get(H, params={"state": "dismissed"}, headers=op)).json()["items"]
    assert [x["id"] for x in states] == [ids[1]]
    problem(await api.get(H, params={"state": "lost"}, headers=op), 422)
    vocab = (await api.get(f"{H}/vocabulary", headers=op)).json()
    assert vocab["steps"]["signed_off"] == ["supervisor"]
    assert "sensor_fault" in vocab["causes"]
