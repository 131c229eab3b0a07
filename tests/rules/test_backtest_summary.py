"""The backtest summary on a timeline: alerts raised, entries per level, time in alarm."""

from __future__ import annotations

from yujing.rules.backtest import summarise
from yujing.rules.transition import Transition


def t(key: str, ts: int, a: int, b: int) -> Transition:
    return Transition(
        key=key, enterprise="e", site="s", device="d", point="p", rule_id="r", rule_version=1,
        kind="threshold", from_level=a, to_level=b, ts=ts,
    )  # fmt: skip


def test_alerts_levels_and_time_in_alarm() -> None:
    got = summarise(
        [t("x", 1000, 0, 2), t("x", 3000, 2, 4), t("x", 6000, 4, 0), t("y", 8000, 0, 1)],
        until_ms=10_000,
    )
    assert got.alerts == 2
    assert got.by_level == {"blue": 1, "yellow": 1, "orange": 0, "red": 1}
    assert got.time_in_alarm_s == 5.0 + 2.0  # x: 1 s to 6 s; y still open, counted to 10 s
    assert got.open_at_end == 1
    diff = got.minus(summarise([t("x", 1000, 0, 4), t("x", 2000, 4, 0)], until_ms=10_000))
    assert (diff.alerts, diff.time_in_alarm_s, diff.by_level["red"]) == (1, 6.0, 0)
