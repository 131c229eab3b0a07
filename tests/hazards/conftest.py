"""Hazard API tests: the app on a fresh database with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role, create_token
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.testing.alerts import Clock, at

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def clock() -> Clock:
    return Clock(at(0))


@pytest.fixture
def store(pool: asyncpg.Pool, clock: Clock) -> AlertStore:
    return AlertStore(pool, clock)


@pytest.fixture
async def api(pool: asyncpg.Pool, store: AlertStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def bearer(pool: asyncpg.Pool, name: str, role: Role, *enterprises: str) -> dict[str, str]:
    token = await create_token(pool, name, role, list(enterprises))
    return {"Authorization": f"Bearer {token}"}
