"""What every rule kind shares when it emits: the rule with its version, and the shape of
a Transition for a (device, point) series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yujing.ingest.batch import DeviceInfo
from yujing.rules.model import Rule
from yujing.rules.transition import Transition


@dataclass(eq=False)
class RuleEntry:
    rule: Rule
    version: int
    index: int  # stable position in the engine's rule list; slots refer to it
    per_device: dict[str, Any] = field(default_factory=dict)  # override-merged rule cache

    @property
    def id(self) -> str:
        return self.rule.id

    def for_device(self, device: str) -> Any:
        if device not in self.rule.overrides:
            return self.rule
        got = self.per_device.get(device)
        if got is None:
            got = self.per_device[device] = self.rule.for_device(device)
        return got


def series_transition(
    entry: RuleEntry,
    info: DeviceInfo,
    point: str,
    *,
    from_level: int,
    to_level: int,
    ts: int,
    value: float | None,
    threshold: float | None,
    unit: str | None = None,
    direction: str = "above",
) -> Transition:
    rule = entry.rule
    return Transition(
        key=f"{info.enterprise}/{info.device}/{point}/{rule.id}",
        enterprise=info.enterprise,
        site=info.site,
        device=info.device,
        point=point,
        rule_id=rule.id,
        rule_version=entry.version,
        kind=rule.kind,
        from_level=from_level,
        to_level=to_level,
        ts=ts,
        value=value,
        threshold=threshold,
        unit=info.units.get(point, "") if unit is None else unit,
        rule_name=rule.name,
        direction=direction,
        health=rule.health,
    )
