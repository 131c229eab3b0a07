"""How fast is the regional picture? `GET /api/v1/overview` over 10,000 enterprises and
100,000 devices (10 per enterprise) in 3 provinces, 2,000 active alerts, 90 % of devices
reporting recently — once for a global token and once for a city-scoped one.

Uses `YJ_DATABASE_URL` (a server; a fresh database is made in it) or else the embedded
PostgreSQL wheel; the API runs in this process (httpx ASGI transport: no network hop).

    .venv/bin/python bench/overview.py [--enterprises N] [--requests R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from yujing import db, migrations
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role, create_token
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.registry import divisions
from yujing.registry.scope import Scope
from yujing.testing import servers
from yujing.testing.registry import credit_code

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PROVINCES = ("320000", "510000", "370000")


def counties() -> list[str]:
    return [
        d.code for d in divisions.table().values()
        if d.level == "county" and d.code[:2] + "0000" in PROVINCES
    ]  # fmt: skip


async def populate(pool: asyncpg.Pool, n_ent: int, per_ent: int) -> None:
    codes = counties()
    ents = [
        (f"e{i:05d}", f"企业{i}", credit_code(codes[i % len(codes)], i), codes[i % len(codes)],
         ["hazardous_chemicals"] if i % 3 else ["coal_mine"], "ABCD"[i % 4],
         110.0 + (i % 200) / 10, 25.0 + (i % 100) / 10)
        for i in range(n_ent)
    ]  # fmt: skip
    points = json.dumps({"ch4": {"unit": "%LEL", "interval_s": 30}})
    devices = [(e[0], f"d{j}") for e in ents for j in range(per_ent)]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "enterprises", records=ents,
            columns=["id", "name", "uscc", "division", "sectors", "supervision_class", "lon",
                     "lat"],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO devices (enterprise, device, kind, site, points)"
            " SELECT e, d, 'gas_detector', 's1', $3::jsonb"
            " FROM unnest($1::text[], $2::text[]) AS u(e, d)",
            [d[0] for d in devices], [d[1] for d in devices], json.loads(points),
        )  # fmt: skip
        seen = NOW - timedelta(seconds=20)
        await conn.copy_records_to_table(
            "device_presence",
            records=[(d[0], d[1], seen, seen, seen) for i, d in enumerate(devices) if i % 10],
            columns=["enterprise", "device", "first_seen_at", "last_seen_at", "last_ts"],
        )
        alerts = [
            (f"a-{i}", f"{e[0]}/d0/ch4/r{i}", e[0], "s1", "d0", "ch4", "r", 1, "threshold",
             1 + i % 4, 1 + i % 4, "active", "", NOW, NOW, "bench", i, e[3], e[4][0])
            for i, e in enumerate(ents[:2000])
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "alerts", records=alerts,
            columns=["id", "key", "enterprise", "site", "device", "point", "rule_id",
                     "rule_version", "kind", "level", "peak_level", "state", "message",
                     "started_at", "changed_at", "unit", "seq", "division", "sector"],
        )  # fmt: skip
        await conn.execute("ANALYZE")


async def measure(client: httpx.AsyncClient, token: str, n: int) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {token}"}
    times, count = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get("/api/v1/overview", headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        count = r.json()["totals"]["all"]["enterprises"]
    return times, count


async def run(url: str, n_ent: int, per_ent: int, n_req: int) -> None:
    name = f"yj_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    pool = await db.create_pool(servers.with_database(url, name), max_size=4)
    try:
        await migrations.migrate(pool)
        await populate(pool, n_ent, per_ent)
        store = AlertStore(pool, lambda: NOW)
        app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store))
        everyone = await create_token(pool, "all", Role.VIEWER, ["*"])
        city = await create_token(
            pool, "suzhou", Role.VIEWER, ["*"], scope=Scope.of(divisions=["320500"])
        )
        stop = asyncio.Event()  # the online counts refresh beside the requests, as in `yujing api`
        refresher = asyncio.create_task(app.state.presence.run(stop))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await measure(client, everyone, 3)  # warm up
            print(f"GET /api/v1/overview, {n_ent:,} enterprises, {n_ent * per_ent:,} devices,"
                  f" 2,000 active alerts; {n_req} requests each")  # fmt: skip
            for label, token in (("province-wide (all)", everyone), ("one city (苏州)", city)):
                times, count = await measure(client, token, n_req)
                q = statistics.quantiles(times, n=20)
                print(f"  {label:22s} {count:6,} enterprises in scope:"
                      f" p50 {statistics.median(times):6.1f} ms  p95 {q[18]:6.1f} ms")  # fmt: skip
        t0 = time.perf_counter()
        await app.state.presence.refresh()
        print(f"  counting online devices (every 5 s, beside the requests):"
              f" {(time.perf_counter() - t0) * 1000:.0f} ms")  # fmt: skip
        stop.set()
        await refresher
    finally:
        await pool.close()
        admin = await asyncpg.connect(url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--devices-per-enterprise", type=int, default=10)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    print(f"$ {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    url = os.environ.get("YJ_DATABASE_URL")
    if url:
        asyncio.run(run(url, args.enterprises, args.devices_per_enterprise, args.requests))
    else:
        with servers.postgres() as embedded:
            asyncio.run(run(embedded, args.enterprises, args.devices_per_enterprise, args.requests))


if __name__ == "__main__":
    main()
