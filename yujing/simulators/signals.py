"""What a healthy device reads: a per-device baseline, sensor noise, a slow drift and a daily
cycle, typical of its kind and location (DOMAIN.md). Quiet by construction: no baseline
here reaches the yellow threshold of a default pack, so any alert in a scenario comes from
one of its incidents (tests/simulators check this against `QUIET_LIMITS`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from yujing.simulators.fleet import DeviceRegistration

DAY_MS = 86_400_000
DRIFT_PERIOD_MS = 3 * DAY_MS


@dataclass(frozen=True)
class SignalSpec:
    base: float  # typical reading
    spread: float  # devices differ from each other by up to ± this
    noise: float  # standard deviation of one reading
    daily: float  # amplitude of the daily cycle (peak in the early afternoon, local time)
    drift: float  # amplitude of a slow drift over a few days
    decimals: int
    lo: float = 0.0
    hi: float = math.inf

    @property
    def ceiling(self) -> float:
        """The highest value a healthy device can read (noise bounded at 4 sigma)."""
        return self.base + self.spread + self.daily + self.drift + 4 * self.noise

    @property
    def floor(self) -> float:
        return max(self.lo, self.base - self.spread - self.daily - self.drift - 4 * self.noise)


_COAL_CH4 = {
    "coal_face": SignalSpec(0.30, 0.06, 0.02, 0.06, 0.03, 2),
    "heading_face": SignalSpec(0.28, 0.06, 0.02, 0.06, 0.03, 2),
    "shearer": SignalSpec(0.32, 0.06, 0.02, 0.06, 0.03, 2),
    "return_airway": SignalSpec(0.25, 0.05, 0.015, 0.05, 0.02, 2),
    "heading_return": SignalSpec(0.24, 0.05, 0.015, 0.05, 0.02, 2),
    "upper_corner": SignalSpec(0.38, 0.05, 0.025, 0.06, 0.03, 2),
    "intake_airway": SignalSpec(0.04, 0.01, 0.006, 0.01, 0.005, 2),
    "drainage_roadway": SignalSpec(1.20, 0.15, 0.05, 0.10, 0.08, 2),
    "mixed_return": SignalSpec(0.28, 0.05, 0.015, 0.05, 0.02, 2),
}

_BY_POINT: dict[tuple[str, str], SignalSpec] = {
    ("coal", "co"): SignalSpec(4.0, 1.5, 0.6, 1.5, 0.5, 1),
    ("coal", "o2"): SignalSpec(20.75, 0.08, 0.04, 0.04, 0.04, 2, 0.0, 25.0),
    ("coal", "co2"): SignalSpec(0.08, 0.02, 0.01, 0.02, 0.01, 2),
    ("coal", "h2s"): SignalSpec(0.3, 0.1, 0.08, 0.0, 0.05, 2),
    ("chemical", "lel"): SignalSpec(0.6, 0.4, 0.3, 0.0, 0.3, 1),
    ("chemical", "h2s"): SignalSpec(0.2, 0.1, 0.06, 0.0, 0.05, 2),
    ("chemical", "co"): SignalSpec(1.5, 0.5, 0.4, 0.3, 0.3, 1),
    ("chemical", "nh3"): SignalSpec(2.0, 1.0, 0.6, 0.5, 0.5, 1),
    ("chemical", "cl2"): SignalSpec(0.02, 0.01, 0.006, 0.0, 0.005, 3),
    ("chemical", "o2"): SignalSpec(20.9, 0.1, 0.05, 0.05, 0.05, 2, 0.0, 25.0),
    ("chemical", "co2"): SignalSpec(0.05, 0.02, 0.01, 0.01, 0.01, 2),
    ("coal", "no2"): SignalSpec(0.3, 0.1, 0.05, 0.1, 0.05, 2),
    ("coal", "so2"): SignalSpec(0.4, 0.1, 0.08, 0.1, 0.05, 2),
    # CO around blast-furnace and converter gas facilities: a few ppm leaks normally
    ("metallurgy", "co"): SignalSpec(3.0, 1.0, 0.8, 1.0, 0.5, 1),
    # non-coal underground: blasting fumes are ventilated away between blasts
    ("metal_mine", "co"): SignalSpec(4.0, 1.5, 0.6, 1.5, 0.5, 1),
    ("metal_mine", "o2"): SignalSpec(20.75, 0.08, 0.04, 0.04, 0.04, 2, 0.0, 25.0),
    ("metal_mine", "no2"): SignalSpec(0.3, 0.1, 0.05, 0.1, 0.05, 2),
    ("", "hopper_temp"): SignalSpec(36.0, 4.0, 0.4, 4.0, 1.0, 1, -40.0),
    ("", "inlet_temp"): SignalSpec(34.0, 4.0, 0.5, 4.0, 1.0, 1, -40.0),
    ("", "air_speed"): SignalSpec(18.0, 1.0, 0.3, 0.5, 0.3, 1),
    ("", "water_level"): SignalSpec(1.2, 0.1, 0.01, 0.0, 0.02, 2),
    ("", "flow"): SignalSpec(30.0, 3.0, 0.5, 0.0, 1.0, 1),
    ("", "displacement"): SignalSpec(0.0, 2.0, 0.3, 0.0, 0.4, 1, -math.inf),
    ("", "phreatic"): SignalSpec(10.0, 1.5, 0.02, 0.0, 0.05, 2),
    ("", "pond_level"): SignalSpec(3.0, 0.3, 0.01, 0.0, 0.04, 2),
    ("", "beach_length"): SignalSpec(180.0, 15.0, 0.3, 0.0, 0.5, 1),
    ("", "rainfall"): SignalSpec(0.0, 0.0, 0.0, 0.0, 0.0, 1),
    ("", "beach_slope"): SignalSpec(1.5, 0.1, 0.01, 0.0, 0.02, 2),
}


def _tag(device: DeviceRegistration, name: str, default: float) -> float:
    return float(device.tags.get(name, default))


def _design(device: DeviceRegistration, point: str) -> SignalSpec | None:
    """Points whose normal range follows the device's design tags: a healthy device runs
    well inside them (the packs' pre-alarms are never reached without an incident)."""
    if point == "level":  # a tank between its low and high alarms, filled and drawn daily
        lo, hi = _tag(device, "level_l", 1.0), _tag(device, "level_h", 9.0)
        span = hi - lo
        return SignalSpec(lo + span / 2, 0.05 * span, 0.005, 0.15 * span, 0.1 * span, 3)
    if point in ("temp", "cw_temp", "melt_level", "pressure", "explosive_kg"):
        limit = {"temp": "temp_max", "cw_temp": "cw_temp_max", "melt_level": "melt_level_max",
                 "pressure": "press_h", "explosive_kg": "max_kg"}[point]  # fmt: skip
        if device.kind == "tank_monitor" and point == "temp":
            limit = "temp_h"
        m = _tag(device, limit, 50.0)
        return SignalSpec(0.55 * m, 0.03 * m, 0.005 * m, 0.05 * m, 0.03 * m, 2, -40.0)
    if point in ("cw_pressure", "cw_flow"):  # well above the minimum (alarm 1.0, pre 1.1)
        m = _tag(device, f"{point}_min", 1.0)
        return SignalSpec(1.5 * m, 0.03 * m, 0.01 * m, 0.0, 0.03 * m, 3)
    if point == "people":  # a shift: fewer people early and late in the day
        n = _tag(device, "max_people", 10.0)
        return SignalSpec(0.5 * n, 0.0, 0.25, 0.15 * n, 0.0, 0)
    if point == "humidity":
        m = _tag(device, "humidity_min", 50.0)
        return SignalSpec(m + 15.0, 2.0, 0.5, 5.0, 2.0, 1, 0.0, 100.0)
    if point == "air_speed" and "air_speed_min" in device.tags:
        m = _tag(device, "air_speed_min", 1.0)
        if device.kind == "anemometer":
            return SignalSpec(4.0 * m, 0.3 * m, 0.1 * m, 0.2 * m, 0.2 * m, 2)
        return SignalSpec(1.25 * m, 0.02 * m, 0.01 * m, 0.01 * m, 0.02 * m, 1)
    return None


def spec_for(device: DeviceRegistration, point: str) -> SignalSpec:
    if point == "ch4":
        return _COAL_CH4[device.tags.get("location", "coal_face")]
    if point == "p_active":
        idle = float(device.tags.get("idle_kw", "100"))
        # A halted plant draws part of its idle baseline (lighting, pumps, ventilation);
        # an operating one draws production power that follows the shifts.
        return SignalSpec(idle * 8, idle * 0.5, idle * 0.1, idle * 2, idle * 0.3, 1)
    if point == "dp":
        # Runs near its rated (allowed) pressure difference; the packs alarm at ±20 % of it.
        rated = float(device.tags.get("dp_rated", "1000"))
        return SignalSpec(rated, rated * 0.04, rated * 0.01, rated * 0.02, rated * 0.03, 0)
    designed = _design(device, point)
    if designed is not None:
        return designed
    sector = device.tags.get("sector", "coal") if device.kind == "gas_detector" else ""
    return _BY_POINT[(sector, point)]


def halted_power(device: DeviceRegistration) -> SignalSpec:
    idle = float(device.tags.get("idle_kw", "100"))
    return SignalSpec(idle * 0.6, idle * 0.05, idle * 0.03, idle * 0.05, idle * 0.03, 1)


class PointSignal:
    """The undisturbed reading of one point of one device; call `sample` once per tick, in
    time order, so the noise sequence (and so the bytes) depends only on the seed."""

    def __init__(self, spec: SignalSpec, seed: str) -> None:
        self.spec = spec
        # A string seed is hashed with SHA-512 by `random`: stable across runs and platforms.
        self._rng = random.Random(seed)
        self._offset = self._rng.uniform(-spec.spread, spec.spread)
        self._drift_phase = self._rng.uniform(0, 2 * math.pi)

    def mean(self, clock_ms: int) -> float:
        """The noiseless level at `clock_ms`, the scenario's own local clock (ms since a
        local midnight), so a scenario reads the same whenever it is run."""
        s = self.spec
        local_h = (clock_ms % DAY_MS) / 3_600_000
        daily = s.daily * math.cos((local_h - 14.0) / 24.0 * 2 * math.pi)
        drift = s.drift * math.sin(2 * math.pi * clock_ms / DRIFT_PERIOD_MS + self._drift_phase)
        return s.base + self._offset + daily + drift

    def noise(self) -> float:
        if self.spec.noise == 0:
            return 0.0
        # Bounded at 4 sigma so that `SignalSpec.ceiling` is a true bound.
        return max(-4.0, min(4.0, self._rng.gauss(0.0, 1.0))) * self.spec.noise

    def sample(self, clock_ms: int) -> float:
        return self.clamp(self.mean(clock_ms) + self.noise())

    def clamp(self, value: float) -> float:
        return round(min(self.spec.hi, max(self.spec.lo, value)), self.spec.decimals)
