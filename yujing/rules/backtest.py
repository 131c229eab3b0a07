"""What a rule would have raised over a period: the engine's transitions summed up into
alerts, alerts by level and time in alarm, so a proposed threshold can be compared with the
current one before anyone is woken by it."""

from __future__ import annotations

from dataclasses import dataclass, field

from yujing.levels import Level
from yujing.rules.transition import Transition

WORDS = ("blue", "yellow", "orange", "red")


@dataclass
class Summary:
    alerts: int = 0  # raises from no alert: what people would have been asked to look at
    by_level: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WORDS, 0))
    time_in_alarm_s: float = 0.0  # summed over conditions, an open alarm counted to `until`
    open_at_end: int = 0

    def minus(self, other: Summary) -> Summary:
        return Summary(
            alerts=self.alerts - other.alerts,
            by_level={w: self.by_level[w] - other.by_level[w] for w in WORDS},
            time_in_alarm_s=round(self.time_in_alarm_s - other.time_in_alarm_s, 3),
            open_at_end=self.open_at_end - other.open_at_end,
        )


def summarise(transitions: list[Transition], until_ms: int) -> Summary:
    """`by_level` counts each entry into a level (a raise, or an escalation/de-escalation),
    so an alert that went yellow → red counts once in yellow and once in red."""
    out = Summary()
    since: dict[str, int] = {}  # key → event time the condition went into alarm
    for t in sorted(transitions, key=lambda t: (t.ts, t.key)):
        to = Level(t.to_level)
        if t.from_level == 0 and to is not Level.NONE:
            out.alerts += 1
            since[t.key] = t.ts
        if to is not Level.NONE:
            out.by_level[to.word] += 1
        elif t.key in since:
            out.time_in_alarm_s += (t.ts - since.pop(t.key)) / 1000
    for started in since.values():
        out.time_in_alarm_s += max(0, until_ms - started) / 1000
    out.open_at_end = len(since)
    out.time_in_alarm_s = round(out.time_in_alarm_s, 3)
    return out
