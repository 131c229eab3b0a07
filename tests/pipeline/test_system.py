"""System alerts on a timeline with an injected clock: a stage that fails, a server that
refuses work, a consumer that lags each raise their own alert of the reserved enterprise
`_system`, through the alert store, and each resolves when its condition clears; only a
global scope sees them; `/readyz` reports a stage waiting to be restarted."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
import pytest

from yujing.alerts.store import AlertQuery, AlertStore
from yujing.api.app import create_app
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus
from yujing.levels import Level
from yujing.pipeline import system
from yujing.pipeline.health import Health
from yujing.pipeline.stage import Clock as StageClock
from yujing.pipeline.system import Limits, SystemWatch, conditions
from yujing.testing.alerts import Clock, at

pytestmark = pytest.mark.integration
HOST = "host-1"
LIMITS = Limits(refused_after_s=10, lag_records=1000, healthy_after_s=30)


class Timeline:
    def __init__(self) -> None:
        self.clock = Clock(at(0))
        self.health = Health(lambda: self.clock.now.timestamp())

    def to(self, t_s: float) -> None:
        self.clock.now = at(t_s)

    def now_s(self) -> float:
        return self.clock.now.timestamp()


def levels(tl: Timeline) -> dict[str, Level]:
    return {k: c.level for k, c in conditions(tl.health, tl.now_s(), LIMITS, HOST).items()}


STAGE_DOWN = "_system/stage.sink@host-1/-/stage_down"
DB_REFUSED = "_system/database@host-1/-/writes_refused"
LAGGING = "_system/group.engine@host-1/-/consumer_lag"


def test_conditions_raise_and_clear_on_their_own_timeline() -> None:
    tl = Timeline()
    tl.health.running("sink")
    assert levels(tl) == {}
    tl.health.failed("sink", ConnectionResetError("gone"))
    tl.health.refused("sink", "database", ConnectionResetError("gone"))
    assert levels(tl) == {STAGE_DOWN: Level.ORANGE}  # a refusal is not an alert at once
    tl.to(1)
    tl.health.running("sink")  # restarted, not yet healthy for long
    tl.health.lag("engine", 5000)
    assert levels(tl) == {STAGE_DOWN: Level.ORANGE, LAGGING: Level.YELLOW}
    tl.to(10)
    assert levels(tl) == {STAGE_DOWN: Level.ORANGE, LAGGING: Level.YELLOW, DB_REFUSED: Level.RED}
    tl.to(20)
    tl.health.accepted("sink")
    tl.health.lag("engine", 10)
    assert levels(tl) == {STAGE_DOWN: Level.ORANGE}
    tl.to(31)  # 30 s of running since the restart
    assert levels(tl) == {}


def test_a_refusal_that_failed_the_stage_is_over_once_it_runs_long_enough() -> None:
    """Ingest has no retries of its own: the supervisor reports the refusal, and only a
    healthy run after the restart ends it."""
    tl = Timeline()
    gone = asyncpg.ConnectionDoesNotExistError("gone")
    for t in (0, 2, 6):  # failing again and again: the refusal dates from the first
        tl.to(t)
        tl.health.failed("ingest", gone)
        tl.health.refused("ingest", "database", gone, restart=True)
        tl.health.running("ingest")
    tl.to(10)
    stage = "_system/stage.ingest@host-1/-/stage_down"
    assert levels(tl) == {stage: Level.ORANGE, DB_REFUSED: Level.RED}
    tl.to(35)
    assert levels(tl) == {stage: Level.ORANGE, DB_REFUSED: Level.RED}
    tl.to(36)  # 30 s since the last restart
    assert levels(tl) == {}


def test_the_message_is_chinese_and_names_the_stage() -> None:
    tl = Timeline()
    tl.health.failed("engine", RuntimeError("x"))
    [c] = conditions(tl.health, tl.now_s(), LIMITS, HOST).values()
    assert c.name == "处理阶段 engine（host-1）异常停止，已重启 1 次"


async def test_system_alerts_go_through_the_store_and_resolve(pool: asyncpg.Pool) -> None:
    tl = Timeline()
    store = AlertStore(pool, tl.clock)
    watch = SystemWatch(tl.health, pool, store, StageClock(tl.clock), LIMITS, host=HOST)
    tl.health.running("sink")
    assert await watch.check() == []
    tl.health.failed("sink", ConnectionResetError("gone"))
    [raised] = await watch.check()
    assert raised.transition == "raised" and raised.alert["key"] == STAGE_DOWN
    assert raised.alert["enterprise"] == system.ENTERPRISE
    assert raised.alert["level"] == "orange" and raised.alert["kind"] == "system"
    assert raised.alert["message"] == "处理阶段 sink（host-1）异常停止，已重启 1 次（橙色）"
    assert await watch.check() == []  # raised once
    # Visible to a global scope, not to an enterprise's.
    everyone = await store.find(AlertQuery(enterprises=None))
    assert [a.key for a in everyone] == [STAGE_DOWN]
    assert await store.find(AlertQuery(enterprises=["ent1"])) == []
    tl.to(1)
    tl.health.running("sink")
    assert await watch.check() == []
    tl.to(31)
    [resolved] = await watch.check()
    assert resolved.transition == "resolved" and resolved.alert["state"] == "resolved"
    assert resolved.at == at(31)


async def test_a_process_resolves_what_it_left_raised_before_a_restart(
    pool: asyncpg.Pool,
) -> None:
    tl = Timeline()
    store = AlertStore(pool, tl.clock)
    before = SystemWatch(tl.health, pool, store, StageClock(tl.clock), LIMITS, host=HOST)
    tl.health.failed("sink", RuntimeError("x"))
    assert [c.transition for c in await before.check()] == ["raised"]
    # The process dies with the alert raised; its successor on the host sees no failure.
    tl.to(60)
    fresh = Timeline()
    fresh.clock = tl.clock
    other = SystemWatch(fresh.health, pool, store, StageClock(tl.clock), LIMITS, host="host-2")
    assert await other.check() == []  # not its alert
    after = SystemWatch(fresh.health, pool, store, StageClock(tl.clock), LIMITS, host=HOST)
    [resolved] = await after.check()
    assert resolved.transition == "resolved" and resolved.alert["key"] == STAGE_DOWN


async def test_a_watch_keeps_what_it_could_not_store_until_the_database_answers(
    pool: asyncpg.Pool, database_url: str
) -> None:
    tl = Timeline()
    closed = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await closed.close()
    down = AlertStore(closed, tl.clock)
    watch = SystemWatch(tl.health, pool, down, StageClock(tl.clock), LIMITS, host=HOST)
    watch.raised = {}  # as after a first pass
    tl.health.failed("alerts", ConnectionResetError("gone"))
    with pytest.raises(asyncpg.InterfaceError):
        await watch.check()
    watch.store = AlertStore(pool, tl.clock)
    tl.to(5)
    [raised] = await watch.check()
    assert raised.transition == "raised" and raised.at == at(0)  # when it was decided


async def test_readyz_reports_a_stage_waiting_to_be_restarted(pool: asyncpg.Pool) -> None:
    tl = Timeline()
    store = AlertStore(pool, tl.clock)
    app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store), {},
                     health=tl.health)  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        tl.health.running("sink")
        r = await c.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["stages"]["sink"] == {"state": "running", "restarts": 0, "error": None}
        tl.health.failed("sink", ConnectionResetError("gone"))
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["stage:sink"] is False
        assert r.json()["stages"]["sink"] == {
            "state": "restarting", "restarts": 1, "error": "ConnectionResetError: gone"
        }  # fmt: skip
        tl.clock.now += timedelta(seconds=1)
        tl.health.running("sink")
        assert (await c.get("/readyz")).status_code == 200
