"""Backup and restore end to end: `pg_dump` of schema and data, restored into a fresh
database, and the app started on it (migration, API) shows the same alerts and readings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import numpy as np
import pytest

from yujing import db, migrations
from yujing.alerts.readings import ReadingWriter
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role, create_token
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import MemoryBus
from yujing.levels import Level
from yujing.testing import servers
from yujing.testing.alerts import level_change

pytestmark = pytest.mark.integration
T0 = 1_763_856_000_000


def noon() -> datetime:
    return datetime(2025, 11, 23, 12, 0, tzinfo=UTC)


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (cmd[0], out.decode(), err.decode())


async def _seen(url: str, headers: dict[str, str]) -> list[object]:
    """What the app started on `url` shows: the alerts list, one alert with its history,
    and a day of readings in 1-minute buckets."""
    pool = await db.create_pool(url, max_size=4)
    try:
        await migrations.migrate(pool, Settings())  # what `yujing up` does first on any database
        store = AlertStore(pool, noon)
        app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as c:
            alerts = (await c.get("/api/v1/alerts", headers=headers)).json()
            one = (
                await c.get(f"/api/v1/alerts/{alerts['items'][0]['id']}", headers=headers)
            ).json()
            read = await c.get(
                "/api/v1/devices/ent1/dev-17/readings",
                params={"point": "ch4", "since": "2025-11-23T00:00:00Z",
                        "until": "2025-11-24T00:00:00Z", "bucket": "1m"},
                headers=headers,
            )  # fmt: skip
            return [alerts, one, read.json()]
    finally:
        await pool.close()


async def test_dump_restore_shows_the_same_alerts(
    database_url: str, postgres_server_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = AlertStore(pool, noon)
    await store.apply([level_change(1, Level.NONE, Level.ORANGE),
                       level_change(5, Level.ORANGE, Level.RED),
                       level_change(9, Level.NONE, Level.YELLOW, device="dev-18")])  # fmt: skip
    device = DeviceInfo("ent1", "dev-17", "gas_detector", "face-3")
    n = 600
    await ReadingWriter(pool).write(ReadingBatch(
        [device], ["ch4"], np.zeros(n, np.int32), np.zeros(n, np.int32),
        T0 + np.arange(n, dtype=np.int64) * 15_000, np.linspace(0.1, 1.7, n),
        np.zeros(n, np.uint8)))  # fmt: skip
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO devices (enterprise, device, kind, site) VALUES ('ent1', 'dev-17',"
            " 'gas_detector', 'face-3')"
        )
        major = int(await conn.fetchval("SHOW server_version_num")) // 10_000
    token = await create_token(pool, "viewer", Role.VIEWER, ["*"])
    headers = {"Authorization": f"Bearer {token}"}
    before = await _seen(database_url, headers)
    assert len(before[0]["items"]) == 2 and len(before[2]["items"]) == 150  # type: ignore[index]

    dump = tmp_path / "yujing.dump"
    await _run(servers.pg_tool("pg_dump", major), "--format=custom", f"--file={dump}",
               f"--dbname={database_url}")  # fmt: skip
    name = f"yj_restored_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    restored = servers.with_database(postgres_server_url, name)
    try:
        await _run(servers.pg_tool("pg_restore", major), "--exit-on-error", "--no-owner",
                   f"--dbname={restored}", str(dump))  # fmt: skip
        assert await _seen(restored, headers) == before
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
