"""PostgreSQL: the connection pool and its codecs, the connection type every store takes,
and the advisory lock migrations hold (the schema itself: `yujing.migrations`)."""

from __future__ import annotations

import json

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection, whether taken from a pool or opened alone.
Conn = asyncpg.Connection | PoolConnectionProxy

MIGRATION_LOCK = 0x796A_0001  # advisory lock id: one migrator at a time across processes


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # JIT off: yujing's queries are short; on aggregate queries over the register the planner's
    # cost estimates start LLVM compilation that took seconds (measured: bench/overview.py).
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection,
        server_settings={"jit": "off"},
    )  # fmt: skip
    assert pool is not None
    return pool
