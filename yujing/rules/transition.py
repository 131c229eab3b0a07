"""What the engine emits: a change of level of one condition, on event time.

The alerts stage turns these into the alert lifecycle. `id` is the transition's identity,
derived only from the input (key, event time, levels), so a replay after a crash yields the
same id and the alert store can apply it idempotently.
"""

from __future__ import annotations

import msgspec

from yujing.levels import Level


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # alert key: enterprise/device/point/rule_id (group rules: enterprise/group/-/rule_id)
    enterprise: str
    site: str | None
    device: str | None
    point: str | None
    rule_id: str
    rule_version: int
    kind: str  # rule kind
    from_level: int  # Level as int; 0 = no alert
    to_level: int
    ts: int  # event time of the deciding reading (or clock time for `absent`), epoch ms
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    rule_name: str = ""
    direction: str = "above"
    health: bool = False  # a device-health rule (offline, stuck, fault), not a hazard

    @property
    def id(self) -> str:
        return f"{self.key}@{self.ts}:{self.from_level}>{self.to_level}"

    @property
    def level(self) -> Level:
        return Level(self.to_level)

    def message(self) -> str:
        """One line for people, in Chinese: `采煤工作面甲烷 1.12 %CH4 ≥ 1（橙色）`."""
        to = Level(self.to_level)
        state = _LEVEL_ZH[to] if to else "已解除"
        name = self.rule_name or self.rule_id
        if self.value is None or self.threshold is None:
            return f"{name}（{state}）"
        if to > Level(self.from_level):
            op = "≥" if self.direction == "above" else "≤"
        else:
            op = "<" if self.direction == "above" else ">"
        if self.unit == "s":  # a silence or a stuck value: `关键测点离线 56 秒 ≥ 15 秒（蓝色）`
            took, limit = _duration_zh(self.value), _duration_zh(self.threshold)
            return f"{name} {took} {op} {limit}（{state}）"
        unit = f" {self.unit}" if self.unit else ""
        return f"{name} {self.value:g}{unit} {op} {self.threshold:g}（{state}）"


def _duration_zh(seconds: float) -> str:
    """A duration for people, in Chinese: whole seconds up to 2 minutes, then minutes, then
    hours (`56 秒`, `15 分钟`, `2 小时`) — never `55.983 s`."""
    if seconds < 120:
        return f"{seconds:.0f} 秒"
    if seconds < 7200:
        return f"{seconds / 60:.3g} 分钟"
    return f"{seconds / 3600:.3g} 小时"


# The 突发事件应对法 (art. 42) marks the four warning grades 红色、橙色、黄色、蓝色.
_LEVEL_ZH = {Level.RED: "红色", Level.ORANGE: "橙色", Level.YELLOW: "黄色", Level.BLUE: "蓝色"}


ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(Transition)
