"""Scenario files: a fleet, a timeline of incidents, and the ground truth they imply.

The format is described in `yujing/simulators/README.md`; `load_scenario` parses and
validates it, and `Scenario.timeline` gives its message stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from yujing.levels import Level
from yujing.simulators.fleet import Fleet, FleetError, parse_fleet
from yujing.simulators.incidents import Plan, compile_plan
from yujing.simulators.timeline import Timeline

CLOCKS = ("event", "wall")
# Event time may lead the wall clock by 5 min (ingest): it starts 30 s behind and may gain
# 300 s, ending at most 270 s ahead.
AHEAD_S = 300.0
CLOCKED_KINDS = ("dust_collector", "electronic_seal", "casting_monitor")


@dataclass(frozen=True)
class Match:
    """Which alerts an expectation is about: by enterprise, and optionally device or group,
    point and rule id (rule ids of most packs are not fixed, so they are optional)."""

    enterprise: str
    device: str | None = None
    point: str | None = None
    group: str | None = None  # composite alerts: the key's second part (a site or tag value)
    rule: str | None = None

    def matches(self, alert: dict[str, Any]) -> bool:
        if alert.get("enterprise") != self.enterprise:
            return False
        if self.rule is not None and alert.get("rule_id") != self.rule:
            return False
        if self.point is not None and alert.get("point") != self.point:
            return False
        if self.group is not None:
            parts = str(alert.get("key", "")).split("/")
            return len(parts) > 1 and parts[1] == self.group and not alert.get("device")
        return self.device is None or alert.get("device") == self.device

    def describe(self) -> str:
        who = self.device or (f"group {self.group}" if self.group else "*")
        parts = [f"{self.enterprise}/{who}", self.point or "*"]
        if self.rule:
            parts.append(self.rule)
        return "/".join(parts)


@dataclass(frozen=True)
class AlertExpectation:
    match: Match
    level: Level  # must reach at least this level ...
    window: tuple[float, float]  # ... first within this span, seconds from the scenario start
    max_level: Level  # and never go above this one
    clock: str = "event"  # "wall": decided by a clock (absent rules), cannot be accelerated
    crosses: float | None = None  # the reading value that decides it, checked offline
    direction: str = "above"
    note: str = ""


@dataclass(frozen=True)
class Allowance:
    """Alerts that may appear without being a false alert (e.g. a device-health alert a
    gateway outage may cause), up to `max_level`."""

    match: Match
    max_level: Level = Level.RED
    note: str = ""


@dataclass(frozen=True)
class DeadLetterExpectation:
    reason: str
    enterprise: str
    device: str
    count: int


@dataclass(frozen=True)
class GroundTruth:
    alerts: tuple[AlertExpectation, ...] = ()
    allow: tuple[Allowance, ...] = ()
    quiet: tuple[Allowance, ...] = ()  # documented "must not fire"; any alert here is false
    deadletters: tuple[DeadLetterExpectation, ...] = ()
    settle_s: float = 15.0


@dataclass
class Scenario:
    name: str
    description: str
    duration_s: float
    fleet: Fleet
    plan: Plan
    truth: GroundTruth
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    local_start_ms: int = 0  # `local_start: "HH:MM"`: local time of day at t = 0
    declared_max_speed: float | None = None  # `max_speed:` in the file; None: any speed

    @property
    def clock_bound(self) -> bool:
        """Whether some rule compares event time with the wall clock: `absent` on critical
        devices, and event windows (dust collectors, seals), which yujing's engine expires
        on the clock tick. Event time must then stay close to the wall clock."""
        return any(
            d.tags.get("critical") == "true" or d.kind in CLOCKED_KINDS for d in self.fleet.devices
        )

    @property
    def max_speed(self) -> float | None:
        """How fast it may run (None: any speed). Wall-clock expectations need 1x; with
        `clock_bound`, event time may run at most `AHEAD_S` ahead of its start lag, see
        `checker.event_start_ms`."""
        derived = self.derived_max_speed
        declared = self.declared_max_speed
        if declared is None or derived is None:
            return declared if derived is None else derived
        return min(declared, derived)

    @property
    def derived_max_speed(self) -> float | None:
        """The cap the rules' clocks imply (what `max_speed:` in a file may not exceed)."""
        if any(e.clock == "wall" for e in self.truth.alerts):
            return 1.0
        if self.clock_bound and self.duration_s > AHEAD_S:
            return 1.0 / (1.0 - AHEAD_S / self.duration_s)
        return None

    @property
    def speed_limit_reason(self) -> str:
        derived = self.derived_max_speed
        if self.declared_max_speed is not None and (
            derived is None or self.declared_max_speed < derived
        ):
            return "the scenario declares it (max_speed: in its file)"
        if any(e.clock == "wall" for e in self.truth.alerts):
            return "it expects alerts decided by the wall clock (absent rules)"
        return (
            "its critical devices (absent rules) or event windows are judged against the wall "
            f"clock, so event time may run at most {AHEAD_S:g} s ahead of where it started"
        )

    def timeline(self, start_ms: int, *, ts_scale: float = 1.0) -> Timeline:
        return Timeline(
            self.fleet,
            self.plan,
            start_ms=start_ms,
            duration_ms=round(self.duration_s * 1000),
            ts_scale=ts_scale,
        )


def builtin_scenarios() -> list[Path]:
    folder = resources.files("yujing.simulators") / "scenarios"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(path: str | Path, *, namespace: str = "", seed: int | None = None) -> Scenario:
    """Read a scenario file. `namespace` prefixes every enterprise id, so repeated runs
    against one yujing do not see each other's alerts."""
    p = Path(path)
    if not p.exists():
        named = [s for s in builtin_scenarios() if s.stem == str(path)]
        if not named:
            raise FileNotFoundError(f"no scenario file {path!r} (and no built-in of that name)")
        p = named[0]
    raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise FleetError(f"{p}: a scenario is a mapping")
    scenario = parse_scenario(_namespaced(raw, namespace) if namespace else raw, seed=seed)
    scenario.path = p
    return scenario


def parse_scenario(raw: dict[str, Any], *, seed: int | None = None) -> Scenario:
    fleet = parse_fleet(raw.get("fleet") or {}, seed=seed)
    plan = compile_plan(fleet, list(raw.get("incidents") or []))
    truth = _parse_truth(fleet, raw.get("expect") or {})
    return Scenario(
        name=str(raw.get("name", "scenario")),
        description=str(raw.get("description", "")).strip(),
        duration_s=float(raw["duration_s"]),
        fleet=fleet,
        plan=plan,
        truth=truth,
        raw=raw,
        local_start_ms=_local_start(raw.get("local_start", "00:00")),
        declared_max_speed=_max_speed(raw.get("max_speed")),
    )


def _max_speed(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise FleetError(f"max_speed {value!r} is a positive number (or null: any speed)")
    return float(value)


def _local_start(value: Any) -> int:
    hours, _, minutes = str(value).partition(":")
    try:
        h, m = int(hours), int(minutes or 0)
    except ValueError:
        raise FleetError(f"local_start {value!r} is not HH:MM") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise FleetError(f"local_start {value!r} is not HH:MM")
    return (h * 60 + m) * 60_000


def _namespaced(raw: dict[str, Any], prefix: str) -> dict[str, Any]:
    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        return f"{prefix}-{node}" if key == "enterprise" else node

    out: dict[str, Any] = walk({k: v for k, v in raw.items() if k != "fleet"})
    fleet = dict(raw.get("fleet") or {})
    fleet["namespace"] = prefix
    fleet["enterprises"] = [
        {**e, "id": f"{prefix}-{e['id']}"} for e in fleet.get("enterprises", [])
    ]
    out["fleet"] = fleet
    # Entries that left out their only enterprise get it filled in by the parser.
    return out


def _match(fleet: Fleet, spec: dict[str, Any], where: str) -> Match:
    ents = fleet.enterprises
    enterprise = str(spec.get("enterprise") or (ents[0] if len(ents) == 1 else ""))
    if enterprise not in ents:
        raise FleetError(f"{where}: enterprise {enterprise!r} is not in the fleet")
    device = None if spec.get("device") is None else str(spec["device"])
    point = None if spec.get("point") is None else str(spec["point"])
    if device is not None:
        reg = fleet.device(enterprise, device)
        if point is not None and point not in reg.points:
            raise FleetError(f"{where}: {enterprise}/{device} has no point {point!r}")
    group = None if spec.get("group") is None else str(spec["group"])
    rule = None if spec.get("rule") is None else str(spec["rule"])
    return Match(enterprise, device, point, group, rule)


def _parse_truth(fleet: Fleet, spec: dict[str, Any]) -> GroundTruth:
    alerts = []
    for n, e in enumerate(spec.get("alerts") or []):
        where = f"expect.alerts[{n}]"
        a, b = (float(x) for x in e["within"])
        if not 0 <= a <= b:
            raise FleetError(f"{where}: 'within' must be [from, to] seconds with from ≤ to")
        clock = str(e.get("clock", "event"))
        if clock not in CLOCKS:
            raise FleetError(f"{where}: clock {clock!r} not in {CLOCKS}")
        level = Level.parse(str(e["level"]))
        alerts.append(
            AlertExpectation(
                match=_match(fleet, e, where),
                level=level,
                window=(a, b),
                max_level=Level.parse(str(e.get("max_level", level.word))),
                clock=clock,
                crosses=None if e.get("crosses") is None else float(e["crosses"]),
                direction=str(e.get("direction", "above")),
                note=str(e.get("note", "")),
            )
        )
    allow = [
        _allowance(fleet, e, f"expect.allow[{n}]") for n, e in enumerate(spec.get("allow") or [])
    ]
    quiet = [
        _allowance(fleet, e, f"expect.quiet[{n}]") for n, e in enumerate(spec.get("quiet") or [])
    ]
    dead = [_dead_letter(fleet, e) for e in spec.get("deadletters") or []]
    return GroundTruth(
        tuple(alerts), tuple(allow), tuple(quiet), tuple(dead), float(spec.get("settle_s", 15.0))
    )


def _allowance(fleet: Fleet, spec: dict[str, Any], where: str) -> Allowance:
    return Allowance(
        _match(fleet, spec, where),
        Level.parse(str(spec.get("max_level", "red"))),
        str(spec.get("note", "")),
    )


def _dead_letter(fleet: Fleet, spec: dict[str, Any]) -> DeadLetterExpectation:
    ents = fleet.enterprises
    enterprise = str(spec.get("enterprise") or (ents[0] if len(ents) == 1 else ""))
    if enterprise not in ents:
        raise FleetError(f"expect.deadletters: enterprise {enterprise!r} is not in the fleet")
    return DeadLetterExpectation(
        str(spec["reason"]), enterprise, str(spec["device"]), int(spec.get("count", 1))
    )
