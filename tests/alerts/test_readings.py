"""Readings written by numpy-built binary COPY read back exactly, NULLs included."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from yujing.alerts.readings import ReadingWriter
from yujing.ingest.batch import DeviceInfo, ReadingBatch

pytestmark = pytest.mark.integration
T0 = 1_763_856_000_123


async def test_copy_round_trip(pool: asyncpg.Pool) -> None:
    devices = [DeviceInfo("ent1", "gd-1", "gas_detector", "face-3"),
               DeviceInfo("ent1", "gd-2", "gas_detector", "face-3")]  # fmt: skip
    batch = ReadingBatch(
        devices=devices,
        points=["ch4", "co"],
        device=np.array([0, 0, 1, 1], np.int32),
        point=np.array([0, 1, 0, 1], np.int32),
        ts=np.array([T0, T0, T0 + 1, T0 + 2], np.int64),
        value=np.array([0.42, np.nan, 1.57, 12.0]),
        quality=np.array([0, 0, 1, 2], np.uint8),
    )
    writer = ReadingWriter(pool)
    assert (await writer.write(batch)).stored == 4
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT s.device, s.point, (extract(epoch FROM r.ts) * 1000)::bigint AS ms,"
            " r.value, r.quality FROM readings r JOIN reading_series s ON s.id = r.series"
            " ORDER BY ms, s.device, s.point"
        )
    assert [(r["device"], r["point"], r["ms"], r["value"], r["quality"]) for r in rows] == [
        ("gd-1", "ch4", T0, 0.42, 0),
        ("gd-1", "co", T0, None, 0),
        ("gd-2", "ch4", T0 + 1, 1.57, 1),
        ("gd-2", "co", T0 + 2, 12.0, 2),
    ]
    again = await writer.write(batch)  # the series ids now come from the cache
    assert (again.stored, again.duplicates) == (0, 4)  # a re-read stores nothing twice
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings") == 4
        assert await conn.fetchval("SELECT count(*) FROM reading_series") == 4
