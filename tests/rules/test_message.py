"""The alert message the server writes, in Chinese: readings with their unit, durations (a
silent or stuck point) in 秒 / 分钟 / 小时 rather than raw seconds."""

from __future__ import annotations

from yujing.rules.transition import Transition


def transition(**over: object) -> Transition:
    base: dict[str, object] = {
        "key": "ent1/gd-1/ch4/offline", "enterprise": "ent1", "site": "face-1",
        "device": "gd-1", "point": "ch4", "rule_id": "offline", "rule_version": 1,
        "kind": "absent", "from_level": 0, "to_level": 1, "ts": 0, "rule_name": "关键测点离线",
    }  # fmt: skip
    return Transition(**(base | over))  # type: ignore[arg-type]


def test_a_silence_reads_in_seconds_minutes_and_hours() -> None:
    t = transition(value=55.983, threshold=15.0, unit="s")
    assert t.message() == "关键测点离线 56 秒 ≥ 15 秒（蓝色）"
    t = transition(value=930.0, threshold=900.0, unit="s", to_level=3)
    assert t.message() == "关键测点离线 15.5 分钟 ≥ 15 分钟（橙色）"
    t = transition(value=9000.0, threshold=7200.0, unit="s", to_level=4)
    assert t.message() == "关键测点离线 2.5 小时 ≥ 2 小时（红色）"
    back = transition(value=3.0, threshold=15.0, unit="s", from_level=1, to_level=0)
    assert back.message() == "关键测点离线 3 秒 < 15 秒（已解除）"


def test_a_reading_keeps_its_unit() -> None:
    t = transition(value=1.6, threshold=1.5, unit="%CH4", to_level=4, rule_name="采煤工作面甲烷")
    assert t.message() == "采煤工作面甲烷 1.6 %CH4 ≥ 1.5（红色）"
