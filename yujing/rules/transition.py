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
        """One line for people, e.g. `采煤工作面甲烷 1.12 %CH4 ≥ 1.0 (orange)`."""
        to = Level(self.to_level)
        if self.value is None or self.threshold is None:
            state = to.word if to else "cleared"
            return f"{self.rule_name or self.rule_id} ({state})"
        unit = f" {self.unit}" if self.unit else ""
        if to > Level(self.from_level):
            op = "≥" if self.direction == "above" else "≤"
        else:
            op = "<" if self.direction == "above" else ">"
        state = to.word if to else "cleared"
        name = self.rule_name or self.rule_id
        return f"{name} {self.value:g}{unit} {op} {self.threshold:g} ({state})"


ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(Transition)
