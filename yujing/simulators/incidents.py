"""Incidents of a scenario timeline, compiled into a `Plan` the timeline consults per tick.

Hazards change what a device reads (value profiles, a stuck value) or whether it speaks
(silence, a gateway outage with store-and-forward catch-up) or add events; input faults add
or alter messages on the wire. All times in a scenario file are seconds from its start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yujing.simulators.fleet import KIND_EVENTS, Fleet, FleetError

Key3 = tuple[str, str, str]  # enterprise, device, point
Key2 = tuple[str, str]  # enterprise, device (or enterprise, site)
Span = tuple[int, int]  # [start, end) in ms from the scenario start

FAULT_KINDS = (
    "bad_json",
    "schema",
    "too_large",
    "duplicate",
    "out_of_order",
    "clock_skew",
    "ts_seconds",
    "unknown_device",
    "bad_topic",
)


@dataclass(frozen=True)
class Profile:
    """Piecewise-linear reading over time; a `None` key means "the undisturbed signal"."""

    start_ms: int
    keys: tuple[tuple[int, float | None], ...]  # (ms after start, value)
    every_ms: int = 0  # repeats with this period when > 0

    def value(self, t_ms: int, signal: float) -> float | None:
        """The profile's value at `t_ms`, or None where it does not apply."""
        rel = t_ms - self.start_ms
        if rel < 0:
            return None
        if self.every_ms:
            rel %= self.every_ms
        for (t0, v0), (t1, v1) in zip(self.keys, self.keys[1:], strict=False):
            if t0 <= rel < t1:
                a = signal if v0 is None else v0
                b = signal if v1 is None else v1
                return a + (b - a) * (rel - t0) / (t1 - t0)
        return None


@dataclass(frozen=True)
class ScheduledEvent:
    at_ms: int
    enterprise: str
    device: str
    type: str
    count: int = 1
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduledStatus:
    """A device's own status message (online, offline, fault, maintenance)."""

    at_ms: int
    enterprise: str
    device: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Fault:
    at_ms: int
    kind: str
    enterprise: str
    device: str
    variant: int = 0  # which of a fault kind's forms (e.g. which schema error)
    skew_ms: int = 0
    for_ms: int = 0


@dataclass
class Plan:
    profiles: dict[Key3, list[Profile]] = field(default_factory=lambda: defaultdict(list))
    stuck: dict[Key3, list[Span]] = field(default_factory=lambda: defaultdict(list))
    silent: dict[Key2, list[Span]] = field(default_factory=lambda: defaultdict(list))
    outages: dict[Key2, list[Span]] = field(default_factory=lambda: defaultdict(list))
    events: list[ScheduledEvent] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    statuses: list[ScheduledStatus] = field(default_factory=list)
    # Incidents that repeat forever (the demo) give their period here.
    every_ms: int = 0


def within(spans: list[Span], t_ms: int) -> bool:
    return any(a <= t_ms < b for a, b in spans)


def compile_plan(fleet: Fleet, incidents: list[dict[str, Any]]) -> Plan:
    plan = Plan()
    for n, spec in enumerate(incidents):
        kind = str(spec.get("type"))
        build = _BUILDERS.get(kind)
        if build is None:
            if kind not in FAULT_KINDS:
                raise FleetError(f"incident {n}: unknown type {kind!r}")
            _fault(plan, fleet, spec, kind)
        else:
            build(plan, fleet, spec)
    plan.events.sort(key=lambda e: e.at_ms)
    plan.faults.sort(key=lambda f: f.at_ms)
    return plan


def _ms(spec: dict[str, Any], name: str, default: float | None = None) -> int:
    value = spec.get(name, default)
    if value is None:
        raise FleetError(f"incident {spec.get('type')!r}: {name!r} is required")
    return round(float(value) * 1000)


def _device(fleet: Fleet, spec: dict[str, Any]) -> tuple[str, str]:
    enterprise = str(spec.get("enterprise") or _only_enterprise(fleet, spec))
    reg = fleet.device(enterprise, str(spec.get("device")))
    return reg.enterprise, reg.device


def _only_enterprise(fleet: Fleet, spec: dict[str, Any]) -> str:
    if len(fleet.enterprises) != 1:
        raise FleetError(f"incident {spec.get('type')!r} must name its enterprise")
    return fleet.enterprises[0]


def _keys(pairs: list[tuple[float, float | None]]) -> tuple[tuple[int, float | None], ...]:
    return tuple((round(t * 1000), v) for t, v in pairs)


def _profile(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    ent, dev = _device(fleet, spec)
    point = str(spec.get("point"))
    if point not in fleet.device(ent, dev).points:
        raise FleetError(f"profile: {ent}/{dev} has no point {point!r}")
    keys = _keys([(float(t), None if v is None else float(v)) for t, v in spec["keys"]])
    if [t for t, _ in keys] != sorted({t for t, _ in keys}):
        raise FleetError(f"profile {ent}/{dev}/{point}: key times must increase")
    every = _ms(spec, "every_s", 0)
    plan.profiles[(ent, dev, point)].append(Profile(_ms(spec, "at"), keys, every))
    plan.every_ms = max(plan.every_ms, every)


def _methane_leak(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    """Ramp up, then a spike, a hold, a fall to below the clear level, and back to normal."""
    ramp, spike = float(spec.get("ramp_s", 40)), float(spec.get("spike_s", 8))
    hold, fall = float(spec.get("hold_s", 30)), float(spec.get("fall_s", 20))
    recover = float(spec.get("recover_s", 30))
    ramp_to, peak = float(spec.get("ramp_to", 1.2)), float(spec.get("peak", 1.8))
    fall_to = float(spec.get("fall_to", 0.6))
    t = [0.0, ramp, ramp + spike, ramp + spike + hold, ramp + spike + hold + fall]
    keys: list[list[Any]] = [[t[0], None], [t[1], ramp_to], [t[2], peak], [t[3], peak]]
    keys += [[t[4], fall_to], [t[4] + recover, None]]
    _profile(plan, fleet, {**spec, "point": spec.get("point", "ch4"), "keys": keys})


def _stuck(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    ent, dev = _device(fleet, spec)
    at = _ms(spec, "at")
    points = [spec["point"]] if "point" in spec else list(fleet.device(ent, dev).points)
    for point in points:
        plan.stuck[(ent, dev, str(point))].append((at, at + _ms(spec, "for_s")))


def _silent(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    ent, dev = _device(fleet, spec)
    at = _ms(spec, "at")
    plan.silent[(ent, dev)].append((at, at + _ms(spec, "for_s")))


def _gateway_outage(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    ent = str(spec.get("enterprise") or _only_enterprise(fleet, spec))
    site = str(spec.get("site"))
    if not any(d.enterprise == ent and d.site == site for d in fleet.devices):
        raise FleetError(f"gateway_outage: no devices at {ent}/{site}")
    at = _ms(spec, "at")
    plan.outages[(ent, site)].append((at, at + _ms(spec, "for_s")))


def _events(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    ent, dev = _device(fleet, spec)
    reg = fleet.device(ent, dev)
    etype = str(spec.get("event"))
    if etype not in KIND_EVENTS[reg.kind]:
        raise FleetError(f"events: {etype!r} is not an event of {reg.kind} ({ent}/{dev})")
    at, every = _ms(spec, "at"), _ms(spec, "every_s", 60)
    for i in range(int(spec.get("repeat", 1))):
        attrs = dict(spec.get("attrs") or {})
        plan.events.append(
            ScheduledEvent(at + i * every, ent, dev, etype, int(spec.get("count", 1)), attrs)
        )


DEVICE_STATES = ("online", "offline", "fault", "maintenance")


def _status(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    """The device says what state it is in; with `for_s`, it is silent that long (offline,
    fault and maintenance devices send no readings) and then says `online` again."""
    ent, dev = _device(fleet, spec)
    state = str(spec.get("state"))
    if state not in DEVICE_STATES:
        raise FleetError(f"status: state {state!r} not in {DEVICE_STATES}")
    at = _ms(spec, "at")
    plan.statuses.append(ScheduledStatus(at, ent, dev, state, str(spec.get("detail", ""))))
    if "for_s" in spec:
        end = at + _ms(spec, "for_s")
        plan.silent[(ent, dev)].append((at, end))
        plan.statuses.append(ScheduledStatus(end, ent, dev, "online"))


def _dust_fire(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    """Smouldering dust in the hopper: temperature climbs, sparks are seen and put out."""
    peak = float(spec.get("peak_c", 110))
    keys = [[0, None], [120, 72], [300, peak], [600, peak], [900, 55], [1200, None]]
    _profile(plan, fleet, {**spec, "point": "hopper_temp", "keys": keys})
    ent, dev = _device(fleet, spec)
    if "inlet_temp" in fleet.device(ent, dev).points:
        inlet = [[0, None], [150, 60], [300, 85], [600, 85], [900, 50], [1200, None]]
        _profile(plan, fleet, {**spec, "point": "inlet_temp", "keys": inlet})
    for offset in spec.get("sparks_s", [60, 95, 180]):
        at = float(spec["at"]) + float(offset)
        base = {"enterprise": ent, "device": dev, "count": 1}
        _events(plan, fleet, {**base, "at": at, "event": "spark_detected"})
        _events(plan, fleet, {**base, "at": at + 2, "event": "spark_extinguished"})


def _tailings_rise(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    """Several monitoring points of one dam move together towards `to` over `ramp_s`."""
    ent = str(spec.get("enterprise") or _only_enterprise(fleet, spec))
    devices = [str(d) for d in spec.get("devices", [])]
    if not devices:
        raise FleetError("tailings_rise: 'devices' is required")
    ramp, hold = float(spec.get("ramp_s", 3600)), float(spec.get("hold_s", 3600))
    to = float(spec["to"])
    for dev in devices:
        point = str(spec.get("point") or fleet.device(ent, dev).tags.get("item"))
        keys = [[0, None], [ramp, to], [ramp + hold, to]]
        _profile(
            plan, fleet, {**spec, "enterprise": ent, "device": dev, "point": point, "keys": keys}
        )


def _halted_power(plan: Plan, fleet: Fleet, spec: dict[str, Any]) -> None:
    """Production-level power drawn at a plant whose site is halted."""
    ent, dev = _device(fleet, spec)
    idle = float(fleet.device(ent, dev).tags.get("idle_kw", "100"))
    kw, for_s = float(spec.get("kw", idle * 8)), float(spec["for_s"])
    keys = [[0, None], [60, kw], [for_s, kw], [for_s + 60, None]]
    _profile(plan, fleet, {**spec, "point": "p_active", "keys": keys})


def _fault(plan: Plan, fleet: Fleet, spec: dict[str, Any], kind: str) -> None:
    ent = str(spec.get("enterprise") or _only_enterprise(fleet, spec))
    dev = str(spec.get("device"))
    if kind == "unknown_device":
        if f"{ent}/{dev}" in fleet.by_key:
            raise FleetError(f"unknown_device: {ent}/{dev} is in the fleet")
    else:
        fleet.device(ent, dev)
    at, every = _ms(spec, "at"), _ms(spec, "every_s", 1)
    skew, for_ms = _ms(spec, "skew_s", 0), _ms(spec, "for_s", 0)
    for i in range(int(spec.get("count", 1))):
        plan.faults.append(Fault(at + i * every, kind, ent, dev, i, skew, for_ms))


_BUILDERS: dict[str, Callable[[Plan, Fleet, dict[str, Any]], None]] = {
    "profile": _profile,
    "methane_leak": _methane_leak,
    "stuck": _stuck,
    "silent": _silent,
    "gateway_outage": _gateway_outage,
    "events": _events,
    "status": _status,
    "dust_fire": _dust_fire,
    "tailings_rise": _tailings_rise,
    "halted_power": _halted_power,
}
