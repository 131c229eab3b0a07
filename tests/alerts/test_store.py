"""The alert store on a real PostgreSQL: idempotent application, history, global seq."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from yujing.alerts.lifecycle import LifecycleError
from yujing.alerts.store import AlertQuery, AlertStore, NotFound
from yujing.levels import Level
from yujing.rules.transition import Transition

pytestmark = pytest.mark.integration
T0 = 1_763_856_000_000


def change(
    at_s: int, frm: Level, to: Level, device: str = "dev-17", ent: str = "ent1"
) -> Transition:
    return Transition(
        key=f"{ent}/{device}/ch4/coal-face-ch4", enterprise=ent, site="face-3", device=device,
        point="ch4", rule_id="coal-face-ch4", rule_version=1, kind="threshold",
        from_level=int(frm), to_level=int(to), ts=T0 + at_s * 1000, value=1.6, threshold=1.5,
        unit="%CH4",
    )  # fmt: skip


def clock() -> datetime:
    return datetime(2025, 11, 23, 8, 0, tzinfo=UTC)


def everyone(_: str) -> bool:
    return True


async def test_a_replayed_transition_changes_nothing(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, clock)
    timeline = [change(1, Level.NONE, Level.ORANGE), change(2, Level.ORANGE, Level.RED)]
    first = await store.apply(timeline)
    assert [c.transition for c in first] == ["raised", "escalated"]
    assert await store.apply(timeline) == []  # the crash-replay case
    alerts = await store.find(AlertQuery())
    assert len(alerts) == 1 and alerts[0].level is Level.RED
    _, history = await store.get(alerts[0].id)
    assert [h.seq for h in history] == [first[0].seq, first[1].seq]


async def test_operator_flow_and_history(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, clock)
    [raised] = await store.apply([change(1, Level.NONE, Level.RED)])
    ack = await store.acknowledge(raised.alert_id, "op-wang", "on my way", everyone)
    assert ack.alert["state"] == "acknowledged" and ack.alert["acknowledged_by"] == "op-wang"
    with pytest.raises(LifecycleError):
        await store.close(raised.alert_id, "op-wang", "done", everyone)
    await store.apply([change(9, Level.RED, Level.NONE)])
    closed = await store.close(raised.alert_id, "insp-li", "瓦斯排放完毕, 复电", everyone)
    assert closed.alert["state"] == "closed" and closed.alert["disposal"] == "瓦斯排放完毕, 复电"
    _, history = await store.get(raised.alert_id)
    assert [(h.transition, h.actor) for h in history] == [
        ("raised", "engine"), ("acknowledged", "op-wang"), ("resolved", "engine"),
        ("closed", "insp-li"),
    ]  # fmt: skip
    assert [h.seq for h in history] == sorted(h.seq for h in history)
    # After closing, the same key opens a new alert.
    [again] = await store.apply([change(20, Level.NONE, Level.ORANGE)])
    assert again.alert_id != raised.alert_id and again.transition == "raised"


async def test_scope_hides_other_enterprises(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, clock)
    [other] = await store.apply([change(1, Level.NONE, Level.RED, ent="ent2")])
    with pytest.raises(NotFound):
        await store.acknowledge(other.alert_id, "op", None, lambda e: e == "ent1")
    assert await store.find(AlertQuery(enterprises=["ent1"])) == []


async def test_filters_and_cursor_pagination(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool, clock)
    for i in range(5):
        await store.apply([change(1, Level.NONE, Level.YELLOW if i % 2 else Level.RED, f"d{i}")])
    reds = await store.find(AlertQuery(min_level=Level.RED))
    assert sorted(a.device or "" for a in reds) == ["d0", "d2", "d4"]
    page1 = await store.find(AlertQuery(limit=2))
    page2 = await store.find(AlertQuery(limit=2, cursor=page1[-1].seq))
    page3 = await store.find(AlertQuery(limit=2, cursor=page2[-1].seq))
    seen = [str(a.device) for a in page1 + page2 + page3]
    assert sorted(seen) == ["d0", "d1", "d2", "d3", "d4"]  # nothing twice, nothing missed
