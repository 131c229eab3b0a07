"""The supervisor with the system watch beside it, on a real database: a stage that fails
is restarted with backoff and counted, its `stage_down` alert is raised through the store
and resolved once it has run long enough; a fatal error is not restarted."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from yujing.alerts.store import AlertStore
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.pipeline.periodic import periodic
from yujing.pipeline.retry import Backoff
from yujing.pipeline.stage import Runtime
from yujing.pipeline.supervisor import Supervisor
from yujing.pipeline.system import Limits, SystemWatch
from yujing.testing.flow import eventually

pytestmark = pytest.mark.integration
FAST = Backoff(first_s=0.05, max_s=0.1)  # the supervisor's waits: not what is tested


class Failing:
    """Fails its first `n` runs, then runs until stop."""

    name = "flaky"

    def __init__(self, n: int, error: Exception) -> None:
        self.n, self.error, self.runs = n, error, 0

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs <= self.n:
            raise self.error
        await stop.wait()


async def alerts_of(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT a.key, t.transition FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id"
        " WHERE a.enterprise = '_system' ORDER BY t.seq"
    )
    return [(r["key"], r["transition"]) for r in rows]


async def test_a_failing_stage_is_restarted_and_its_system_alert_raised_and_resolved(
    pool: asyncpg.Pool,
) -> None:
    rt = Runtime(Settings(), pool, MemoryBus(), "mqtt://127.0.0.1:1")
    stage = Failing(2, RuntimeError("injected"))
    # Recovered after 1 s of running; a pass every 0.05 s so the raise is not missed.
    limits = Limits(healthy_after_s=1.0)
    watch = SystemWatch(rt.health, pool, AlertStore(pool, rt.clock.now), rt.clock, limits, "h")

    async def check() -> None:
        await watch.check()

    stop = asyncio.Event()
    supervised = asyncio.create_task(Supervisor(rt, backoff=FAST).run(stage, stop))
    watching = asyncio.create_task(periodic("watch", check, 0.05, stop))
    key = "_system/stage.flaky@h/-/stage_down"
    try:
        await eventually(lambda: _has(pool, (key, "raised")), timeout_s=10)
        await eventually(lambda: _has(pool, (key, "resolved")), timeout_s=10)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(supervised, watching), 5)
    assert stage.runs == 3 and rt.health.stages["flaky"].restarts == 2
    assert await alerts_of(pool) == [(key, "raised"), (key, "resolved")]  # raised once


async def _has(pool: asyncpg.Pool, change: tuple[str, str]) -> bool:
    return change in await alerts_of(pool)


async def test_a_fatal_error_is_not_restarted(pool: asyncpg.Pool) -> None:
    rt = Runtime(Settings(), pool, MemoryBus(), "mqtt://127.0.0.1:1")
    stage = Failing(1, PermissionError("port taken"))
    supervisor = Supervisor(rt, backoff=FAST, fatal=(PermissionError,))
    with pytest.raises(PermissionError):
        await asyncio.wait_for(supervisor.run(stage, asyncio.Event()), 5)
    assert stage.runs == 1


async def test_a_stage_that_returns_before_stop_counts_as_failed(pool: asyncpg.Pool) -> None:
    rt = Runtime(Settings(), pool, MemoryBus(), "mqtt://127.0.0.1:1")
    stop = asyncio.Event()
    runs = 0

    class Quitter:
        name = "quitter"

        async def run(self, rt: Runtime, stop_: asyncio.Event) -> None:
            nonlocal runs
            runs += 1
            if runs == 2:
                stop.set()

    await asyncio.wait_for(Supervisor(rt, backoff=FAST).run(Quitter(), stop), 5)
    assert runs == 2 and rt.health.stages["quitter"].restarts == 1
    assert rt.health.stages["quitter"].error == "RuntimeError: stage quitter returned before stop"
