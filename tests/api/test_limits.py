"""Request-level limits (issue 12): NUL and overlong text refused everywhere, ids beyond
int64, a body size limit, a header deadline in the real server, /metrics for the scraper
only, the CAP feed's self link not taken from `Host`, webhooks only to allowed places."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn

from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role, create_token
from yujing.api.server import server_config
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.testing.alerts import Clock, at, wait_for
from yujing.testing.servers import free_port

pytestmark = pytest.mark.integration


async def token(pool: asyncpg.Pool, role: Role, *enterprises: str) -> dict[str, str]:
    t = await create_token(
        pool, f"{role.name.lower()}-{'-'.join(enterprises)}", role, [*enterprises]
    )
    return {"Authorization": f"Bearer {t}"}


def problem(r: httpx.Response, status: int) -> bool:
    return r.status_code == status and r.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    store = AlertStore(pool, Clock(at(0)), AlertSettings(public_url="https://yj.example.cn"))
    settings = Settings(http_max_body_bytes=64 * 1024)
    app = create_app(settings, pool, MemoryBus(), store, ChangeHub(pool, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_nul_and_overlong_text_are_refused_everywhere(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    device = {"kind": "gas_detector", "site": "s1", "tags": {"loc": "a\x00b"}}
    cases = [
        api.put("/api/v1/devices/ent1/d1", json=device, headers=admin),
        api.get("/api/v1/alerts", params={"site": "x\x00"}, headers=admin),
        api.get("/api/v1/alerts/a-%00", headers=admin),
        api.get("/api/v1/deadletters", params={"reason": "y" * 3000}, headers=admin),
        api.post("/api/v1/tokens", json={"name": "n\x00", "role": "viewer"}, headers=admin),
        api.post(
            "/api/v1/maintenance",
            content=b'{"enterprise": "ent1", "ends_at": "2030-01-01T00:00:00Z",'
            b' "reason": "\\ud800"}',
            headers={**admin, "content-type": "application/json"},
        ),
        api.post(
            "/api/v1/tokens",
            content=b'{"name": "' + b"x" * 20_000 + b'", "role": "viewer"}',
            headers={**admin, "content-type": "application/json"},
        ),
    ]
    for r in await asyncio.gather(*cases):
        assert problem(r, 422), (r.request.url, r.status_code, r.text)


async def test_ids_beyond_int64_are_a_client_error(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    op = await token(pool, Role.OPERATOR, "*")
    r = await api.post(f"/api/v1/maintenance/{2**64}/end", headers=op)
    assert problem(r, 422) or problem(r, 404), r.text
    r = await api.get("/api/v1/alerts", params={"cursor": str(2**70)}, headers=op)
    assert problem(r, 422), r.text
    r = await api.get("/api/v1/deadletters", params={"cursor": "9" * 30}, headers=op)
    assert problem(r, 422), r.text


async def test_a_body_over_the_limit_is_413(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    tags = {f"t{i}": "v" for i in range(20_000)}  # ~250 KiB, over this app's 64 KiB
    device = {"kind": "gas_detector", "site": "s1", "tags": tags}
    r = await api.put("/api/v1/devices/ent1/d1", json=device, headers=admin)
    assert problem(r, 413) and "65536 bytes" in r.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(100):
            yield b" " * 1024

    r = await api.put("/api/v1/devices/ent1/d2", content=chunks(), headers=admin)
    assert problem(r, 413)


async def test_metrics_need_a_token_of_global_scope(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    assert problem(await api.get("/metrics"), 401)
    scoped = await token(pool, Role.ADMIN, "ent1")
    assert problem(await api.get("/metrics", headers=scoped), 403)
    scraper = await token(pool, Role.VIEWER, "*")
    r = await api.get("/metrics", headers=scraper)
    assert r.status_code == 200 and "# TYPE yj_alarm_noisiest_rule gauge" in r.text


async def test_the_cap_feed_ignores_the_host_header(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    viewer = await token(pool, Role.VIEWER, "*")
    r = await api.get(
        "/api/v1/alerts/cap", params={"limit": 5}, headers={**viewer, "Host": "evil.example"}
    )
    assert r.status_code == 200
    assert 'href="https://yj.example.cn/api/v1/alerts/cap?limit=5"' in r.text
    assert "evil" not in r.text


async def test_webhooks_to_inside_addresses_are_refused(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admin = await token(pool, Role.ADMIN, "*")
    for url in ("http://169.254.169.254/latest", "http://2130706433/", "http://127.0.0.1:9/"):
        r = await api.post("/api/v1/webhooks", json={"url": url}, headers=admin)
        assert problem(r, 422) and "destination refused" in r.json()["detail"], r.text
    r = await api.post("/api/v1/webhooks", json={"url": "https://8.8.8.8/hook"}, headers=admin)
    assert r.status_code == 201


async def test_a_client_that_never_finishes_its_headers_is_disconnected(
    pool: asyncpg.Pool,
) -> None:
    """Slowloris: the real server (uvicorn with yujing's protocol) drops a connection whose
    request headers are not complete within the deadline; a normal request still works."""
    store = AlertStore(pool, Clock(at(0)))
    port = free_port()
    settings = Settings(http_port=port, http_header_timeout_s=0.3)
    app = create_app(settings, pool, MemoryBus(), store, ChangeHub(pool, store))
    server = uvicorn.Server(server_config(app, settings))
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return bool(server.started)

        await wait_for(started)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        # The server closes the connection: EOF. The wait is a bound against a hang, not a
        # measurement; it is 100 times the deadline.
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        server.should_exit = True
        await task
