"""The API as people meet it: one rule for times, unknown query parameters refused, one
list shape, the words of each refusal, tokens listed and revoked, device binding warnings."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from yujing.alerts.store import AlertStore
from yujing.api.auth import Role, create_token
from yujing.levels import Level
from yujing.rules.store import ensure_default_rules
from yujing.rules.transition import Transition

pytestmark = pytest.mark.integration

DEVICE = {
    "kind": "gas_detector",
    "site": "face-1",
    "tags": {"sector": "coal", "location": "coal_face"},
    "points": {"ch4": {"unit": "%CH4", "interval_s": 15}},
}

# Closing an orange or red hazard alarm needs its follow-up record (超限报警追查, issue 9).
FOLLOW_UP = {"cause": "real_emission", "measures": "通风稀释"}


def now() -> datetime:
    return datetime(2025, 11, 23, 8, 0, tzinfo=UTC)


async def token(pool: asyncpg.Pool, role: Role, *enterprises: str) -> dict[str, str]:
    t = await create_token(pool, f"{role.name.lower()}-user", role, list(enterprises))
    return {"Authorization": f"Bearer {t}"}


def problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = r.json()
    return body


async def raise_alert(
    pool: asyncpg.Pool, level: Level, device: str = "d", ent: str = "ent1"
) -> str:
    store = AlertStore(pool, now)
    await store.apply([
        Transition(
            key=f"{ent}/{device}/ch4/r", enterprise=ent, site="s", device=device, point="ch4",
            rule_id="r", rule_version=1, kind="threshold", from_level=0, to_level=int(level),
            ts=1_763_884_800_000, value=2.0, threshold=1.5,
        )
    ])  # fmt: skip
    row = await pool.fetchval("SELECT id FROM alerts WHERE device = $1", device)
    return str(row)


TIMED = [
    ("/api/v1/alerts", "since"),
    ("/api/v1/alerts/stats", "since"),
    ("/api/v1/deadletters", "since"),
    ("/api/v1/maintenance", "active_at"),
]


async def test_every_time_in_a_query_is_rfc3339_with_offset_or_epoch_ms(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    for path, name in TIMED:
        naive = await client.get(path, params={name: "2026-12-01T00:00:00"}, headers=admin)
        body = problem(naive, 422)
        assert "UTC offset" in str(body["detail"]) and "+08:00" in str(body["detail"]), path
        # `+08:00` typed into a URL arrives as a space: say so.
        spaced = await client.get(f"{path}?{name}=2026-12-01T08:00:00+08:00", headers=admin)
        assert "%2B" in str(problem(spaced, 422)["detail"]), path
        for good in ("2025-11-22T08:00:00+08:00", "2025-11-22T00:00:00Z", "1763769600000"):
            r = await client.get(path, params={name: good}, headers=admin)
            assert r.status_code == 200, (path, good, r.text)
    r = await client.get(
        "/api/v1/alerts/stats",
        params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        headers=admin,
    )
    assert "since must be before until" in str(problem(r, 422)["detail"])
    window = {"enterprise": "ent1", "ends_at": "2026-12-01T09:00:00", "reason": "calibration"}
    r = await client.post("/api/v1/maintenance", json=window, headers=admin)
    assert "UTC offset" in str(problem(r, 422)["detail"])


async def test_unknown_query_parameters_are_refused_everywhere(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    for path in ("/api/v1/alerts", "/api/v1/rules", "/api/v1/devices", "/api/v1/tokens",
                 "/api/v1/deadletters", "/api/v1/maintenance", "/api/v1/webhooks"):  # fmt: skip
        body = problem(await client.get(path, params={"colour": "red"}, headers=admin), 422)
        assert "colour" in str(body["detail"]), path
        assert body["errors"] == [
            {"loc": ["query", "colour"], "msg": "unknown query parameter",
             "type": "unknown_parameter"}
        ]  # fmt: skip


async def test_level_filters_alerts(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    await raise_alert(pool, Level.RED, "d1")
    await raise_alert(pool, Level.YELLOW, "d2")
    r = await client.get("/api/v1/alerts", params={"level": "red"}, headers=admin)
    assert [a["device"] for a in r.json()["items"]] == ["d1"]
    r = await client.get("/api/v1/alerts", params=[("level", "red"), ("level", "yellow")],
                         headers=admin)  # fmt: skip
    assert sorted(a["device"] for a in r.json()["items"]) == ["d1", "d2"]
    assert "level" in str(
        problem(await client.get("/api/v1/alerts", params={"level": "x"}, headers=admin), 422)[
            "detail"
        ]
    )


async def test_ack_without_body_and_the_words_of_close(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    alert = await raise_alert(pool, Level.RED)
    r = await client.post(f"/api/v1/alerts/{alert}/ack", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    r = await client.post(f"/api/v1/alerts/{alert}/close", json={"disposal": "   "}, headers=admin)
    assert "only spaces" in str(problem(r, 422)["detail"])
    store = AlertStore(pool, now)
    await store.apply([
        Transition(
            key="ent1/d/ch4/r", enterprise="ent1", site="s", device="d", point="ch4",
            rule_id="r", rule_version=1, kind="threshold", from_level=int(Level.RED),
            to_level=0, ts=1_763_884_900_000, value=0.2, threshold=1.5,
        )
    ])  # fmt: skip
    r = await client.post(f"/api/v1/alerts/{alert}/close",
                          json={"disposal": "vented", "follow_up": FOLLOW_UP},
                          headers=admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "closed"
    r = await client.post(f"/api/v1/alerts/{alert}/close",
                          json={"disposal": "again", "follow_up": FOLLOW_UP},
                          headers=admin)  # fmt: skip
    assert "already closed" in str(problem(r, 409)["detail"])


async def test_tokens_are_listed_without_secret_and_revoked(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    wall_token = {"name": "wall", "role": "viewer", "enterprises": ["ent1"]}
    r = await client.post("/api/v1/tokens", headers=admin, json=wall_token)
    created = r.json()
    wall = {"Authorization": f"Bearer {created['token']}"}
    listed = (await client.get("/api/v1/tokens", headers=admin)).json()
    assert listed["next_cursor"] is None
    mine = next(t for t in listed["items"] if t["name"] == "wall")
    assert mine["id"] == created["id"] and "token" not in mine
    assert created["token"] not in str(listed)
    scoped = await token(pool, Role.ADMIN, "ent2")
    assert problem(await client.delete(f"/api/v1/tokens/{mine['id']}", headers=scoped), 404)
    assert (await client.delete(f"/api/v1/tokens/{mine['id']}", headers=admin)).status_code == 204
    assert "revoked" in str(
        problem(await client.get("/api/v1/alerts", headers=wall), 401)["detail"]
    )
    assert problem(await client.delete(f"/api/v1/tokens/{mine['id']}", headers=admin), 409)
    ids = [t["id"] for t in (await client.get("/api/v1/tokens", headers=admin)).json()["items"]]
    assert mine["id"] not in ids


async def test_a_token_reads_its_own_role_and_level(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """`GET /tokens/me`: what the console needs to offer only the hazard steps one may take."""
    admin = await token(pool, Role.ADMIN, "*")
    me = (await client.get("/api/v1/tokens/me", headers=admin)).json()
    assert (me["name"], me["role"], me["tier"], me["enterprises"]) == (
        "admin-user", "admin", None, ["*"],
    )  # fmt: skip
    city = {"name": "sup-suzhou", "role": "supervisor", "enterprises": ["*"],
            "divisions": ["320500"]}  # fmt: skip
    created = (await client.post("/api/v1/tokens", headers=admin, json=city)).json()
    sup = {"Authorization": f"Bearer {created['token']}"}
    me = (await client.get("/api/v1/tokens/me", headers=sup)).json()
    assert (me["role"], me["tier"], me["divisions"]) == ("supervisor", "city", ["320500"])
    problem(await client.get("/api/v1/tokens/me"), 401)


async def test_a_webhook_for_every_enterprise_reads_back_star(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    hook = {"url": "https://example.org/hook", "enterprises": ["*"]}
    r = await client.post("/api/v1/webhooks", headers=admin, json=hook)
    assert r.status_code == 201 and r.json()["enterprises"] == ["*"]
    got = (await client.get(f"/api/v1/webhooks/{r.json()['id']}", headers=admin)).json()
    assert got["enterprises"] == ["*"]


async def test_device_registration_warns_when_no_rule_watches_a_point(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await ensure_default_rules(pool)
    admin = await token(pool, Role.ADMIN, "*")
    r = await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=admin)
    assert r.status_code == 200 and r.json()["warnings"] == []
    assert "coal-face-ch4" in r.json()["rules"]["ch4"]
    wrong_kind = DEVICE | {"kind": "gas-detector"}
    r = await client.put("/api/v1/devices/ent1/gd-2", json=wrong_kind, headers=admin)
    assert r.status_code == 200 and r.json()["rules"] == {"ch4": []}
    assert "no rule watches point ch4" in r.json()["warnings"][0]
    ppm = DEVICE | {"points": {"ch4": {"unit": "ppm"}}}
    r = await client.put("/api/v1/devices/ent1/gd-3", json=ppm, headers=admin)
    assert "%CH4" in r.json()["warnings"][0]
    unbound = (await client.get("/api/v1/devices/unbound", headers=admin)).json()["items"]
    assert [(d["device"], d["points"]) for d in unbound] == [("gd-2", ["ch4"])]
    listed = (await client.get("/api/v1/devices", params={"limit": 2}, headers=admin)).json()
    assert [d["device"] for d in listed["items"]] == ["gd-1", "gd-2"]
    after = {"limit": 2, "cursor": listed["next_cursor"]}
    rest = (await client.get("/api/v1/devices", params=after, headers=admin)).json()
    assert [d["device"] for d in rest["items"]] == ["gd-3"] and rest["next_cursor"] is None


async def test_readings_name_the_unit_and_refuse_an_unknown_point(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    await client.put("/api/v1/devices/ent1/gd-1", json=DEVICE, headers=admin)
    path = "/api/v1/devices/ent1/gd-1/readings"
    r = await client.get(path, params={"point": "ch4", "since": "2025-11-23T00:00:00Z"},
                         headers=admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["unit"] == "%CH4" and r.json()["items"] == []
    r = await client.get(path, params={"point": "co", "since": "2025-11-23T00:00:00Z"},
                         headers=admin)  # fmt: skip
    assert "has no point co" in str(problem(r, 404)["detail"])


async def test_stats_never_average_a_negative_close_time(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """An accelerated scenario stamps readings ahead of the wall clock: the alert starts
    (event time) after it is closed (wall clock). The figures count such a pair apart."""
    admin = await token(pool, Role.ADMIN, "*")
    ahead = int(datetime(2025, 11, 23, 9, 0, tzinfo=UTC).timestamp() * 1000)  # clock: 08:00
    store = AlertStore(pool, now)
    common = {"key": "ent1/d/ch4/r", "enterprise": "ent1", "site": "s", "device": "d",
              "point": "ch4", "rule_id": "r", "rule_version": 1, "kind": "threshold"}  # fmt: skip
    await store.apply([Transition(**common, from_level=0, to_level=4, ts=ahead)])  # type: ignore[arg-type]
    await store.apply([Transition(**common, from_level=4, to_level=0, ts=ahead + 60_000)])  # type: ignore[arg-type]
    alert = await pool.fetchval("SELECT id FROM alerts")
    r = await client.post(
        f"/api/v1/alerts/{alert}/close",
        json={"disposal": "ok", "follow_up": FOLLOW_UP},
        headers=admin,
    )
    closed = r.json()
    assert closed["closed_at"] < closed["started_at"]  # two clocks, as documented
    period = {"since": "2025-11-23T00:00:00Z", "until": "2025-11-23T10:00:00Z"}
    figures = (await client.get("/api/v1/alerts/stats", params=period, headers=admin)).json()
    assert figures["time_to_close_s"]["n"] == 0 and figures["time_to_close_s"]["mean"] is None
    assert figures["time_to_close_s"]["clock_skewed"] == 1


async def test_readyz_checks_every_dependency(
    pool: asyncpg.Pool, mqtt_broker: tuple[str, int], kafka_bootstrap: str
) -> None:
    import socket

    from yujing.api.app import create_app
    from yujing.api.readiness import dependency_checks
    from yujing.api.stream import ChangeHub
    from yujing.config import Settings
    from yujing.ingest.bus import MemoryBus

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    store = AlertStore(pool, now)
    cases = [
        (dependency_checks(kafka_bootstrap, mqtt_broker), 200, {}),
        (dependency_checks("", ("127.0.0.1", closed)), 503, {"mqtt": False}),
        (dependency_checks(f"127.0.0.1:{closed}", None), 503, {"bus": False}),
    ]
    for checks, status, failing in cases:
        app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store), checks)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/readyz")
        assert r.status_code == status, r.text
        assert set(r.json()["checks"]) == {"database", *checks}
        assert {k: v for k, v in r.json()["checks"].items() if not v} == failing


async def test_docs_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        src = next(part.split('"')[0] for part in page.split('"/') if asset in part.split('"')[0])
        assert (await client.get("/" + src)).status_code == 200


def _typed(schema: dict[str, object]) -> bool:
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _typed(schema.get("items", {}))  # type: ignore[arg-type]
    if "anyOf" in schema:
        return all(_typed(s) for s in schema["anyOf"])  # type: ignore[attr-defined]
    return bool(schema.get("properties"))


async def test_every_json_response_in_the_openapi_document_is_typed(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    untyped = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert op.get("summary") and op.get("responses"), (method, path)
            for code, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and schema is not None and not _typed(schema):
                    untyped.append(f"{method.upper()} {path} {code}")
    assert untyped == []


async def test_the_ready_line_comes_only_once_the_port_is_bound(
    pool: asyncpg.Pool, database_url: str
) -> None:
    import asyncio
    import socket

    from yujing.config import Settings
    from yujing.ingest.bus import MemoryBus
    from yujing.runtime import ListenError, Runtime, serve_api

    said: list[str] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(http_port=port, admin_token="yj_test_admin_token")
        rt = Runtime(settings, pool, MemoryBus(), "mqtt://127.0.0.1:1", say=said.append)
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}"):
            await asyncio.wait_for(serve_api(rt, asyncio.Event()), 30)
    assert not any("API and alarm board on" in line for line in said)
    stop = asyncio.Event()
    rt = Runtime(settings, pool, MemoryBus(), "mqtt://127.0.0.1:1", say=said.append)
    serving = asyncio.create_task(serve_api(rt, stop))
    while not any("API and alarm board on" in line for line in said):
        assert not serving.done()
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient() as c:  # the line came: the port answers at once
        assert (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    stop.set()
    await serving
