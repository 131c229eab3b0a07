"""Marks as timelines on a real store: maintenance windows suppress, flapping keys chatter
(one notice, counts kept), a faulty sensor makes its point's hazard alerts unreliable.
`notify` is what people hear (MQTT, webhooks); the record keeps every change either way."""

from __future__ import annotations

import asyncpg
import pytest

from yujing.alerts import maintenance
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore, StoredChange
from yujing.levels import Level
from yujing.testing.alerts import Clock, at
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N, B, Y, OR, R = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED


def heard(changes: list[StoredChange]) -> list[tuple[str, bool]]:
    return [(c.transition, c.notify) for c in changes]


async def test_a_maintenance_window_suppresses_but_records(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    store = AlertStore(pool, clock)
    await maintenance.declare(
        pool, enterprise="ent1", site="face-3", device=None, point=None, starts_at=at(100),
        ends_at=at(200), reason="月度检修", who="op-wang", now=at(0),
    )  # fmt: skip
    await maintenance.declare(
        pool, enterprise="ent1", site=None, device="dev-2", point=None, starts_at=at(0),
        ends_at=at(1000), reason="标定", who="op-wang", now=at(0),
    )  # fmt: skip
    got = await store.apply([change(50, N, OR), change(150, OR, R), change(250, R, OR)])
    assert heard(got) == [("raised", True), ("escalated", False), ("deescalated", True)]
    assert [c.alert["suppressed"] for c in got] == [False, True, False]
    # An operator action inside the window is recorded, marked, and not pushed either.
    [other] = await store.apply([change(300, N, Y, device="dev-2", site="face-9")])
    assert (other.notify, other.alert["suppressed"]) == (False, True)
    clock.to(400)
    ack = await store.acknowledge(other.alert_id, "op", None, lambda _: True)
    assert (ack.notify, ack.alert["suppressed"]) == (False, True)
    _, history = await store.get(got[0].alert_id)
    assert heard(history) == heard(got)


async def test_a_flapping_key_chatters_with_one_notice(pool: asyncpg.Pool, clock: Clock) -> None:
    store = AlertStore(pool, clock, AlertSettings(flap_max_reopens=3, flap_window_s=3600))
    got: list[StoredChange] = []
    for i in range(6):  # raise, then reopen five times, ten seconds apart
        got += await store.apply([change(20 * i, N, OR), change(20 * i + 10, OR, N)])
    assert [c.transition for c in got[:4]] == ["raised", "resolved", "reopened", "resolved"]
    # The fourth reopening (index 8) is one too many: it is the one notice, then silence.
    assert [c.notify for c in got] == [True] * 8 + [True] + [False] * 3
    assert [c.alert["chattering"] for c in got] == [False] * 8 + [True] * 4
    assert got[-1].alert["occurrences"] == 6  # the counts stay in the record
    # An hour later the flapping is out of the window: people hear it again.
    [back] = await store.apply([change(4000, N, R)])
    assert (back.transition, back.notify, back.alert["chattering"]) == ("reopened", True, False)
    assert back.alert["occurrences"] == 7


async def test_a_faulty_sensor_makes_its_hazard_alerts_unreliable(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    store = AlertStore(pool, clock)
    [stuck] = await store.apply([change(0, N, B, rule="ch4-stuck", health=True)])
    assert (stuck.notify, stuck.alert["health"]) == (True, True)  # the health alert speaks
    [hazard] = await store.apply([change(5, N, R)])
    assert (hazard.notify, hazard.alert["unreliable"]) == (False, True)
    [elsewhere] = await store.apply([change(6, N, R, device="dev-2")])
    assert (elsewhere.notify, elsewhere.alert["unreliable"]) == (True, False)
    await store.apply([change(10, B, N, rule="ch4-stuck", health=True)])  # sensor fixed
    [trusted] = await store.apply([change(15, R, OR)])
    assert (trusted.transition, trusted.notify, trusted.alert["unreliable"]) == (
        "deescalated", True, False,
    )  # fmt: skip
    # A device-level health alert (no point: the device is offline) covers every point.
    await store.apply([change(20, N, OR, point=None, rule="offline", health=True)])
    [co] = await store.apply([change(25, N, OR, point="co", rule="coal-face-co")])
    assert (co.notify, co.alert["unreliable"]) == (False, True)
