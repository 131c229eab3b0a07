"""The sector packs of issue 11 on timelines: design values from tags, the installation
roll-up, groups of groups (tailings items), and sparks left burning."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from yujing.ingest.batch import DeviceInfo, Event
from yujing.rules.engine import Engine
from yujing.rules.model import parse_rule, resolve_bound
from yujing.rules.packs import default_rules
from yujing.rules.reference import Reference
from yujing.testing.rules import batch, series

T0 = 1_763_856_000_000


def pack(*ids: str) -> Engine:
    return Engine([(r, 1) for r in default_rules() if r.id in ids])


def steps(ts: list) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return [(t.rule_id, t.from_level, t.to_level) for t in ts]


def test_tag_offsets_compare_counts_above_a_permitted_number() -> None:
    assert resolve_bound("max_people+1", {"max_people": "12"}) == 13.0
    assert resolve_bound("0.8*max_kg+2", {"max_kg": "10"}) == 10.0
    with pytest.raises(ValidationError):
        parse_rule({"id": "x", "kind": "threshold", "levels": {"red": "max+people"}})


def test_workshop_over_its_rated_people_and_mass() -> None:
    ratings = {"max_people": "4", "max_kg": "100"}
    ws = DeviceInfo("e1", "ws-1", "workshop_monitor", "plant", ratings, {"explosive_kg": "kg"})
    engine = pack("fireworks-people", "fireworks-explosive")
    assert engine.on_batch(series(ws, "people", [3, 4], t0=T0)) == []  # at the rating is fine
    assert steps(engine.on_batch(series(ws, "people", [5], t0=T0 + 5_000))) == [
        ("fireworks-people", 0, 3)
    ]
    got = engine.on_batch(series(ws, "explosive_kg", [70, 85, 100, 100.5], t0=T0 + 10_000))
    assert steps(got) == [("fireworks-explosive", 0, 2), ("fireworks-explosive", 2, 3)]


def test_any_red_point_makes_its_installation_red() -> None:
    tank = DeviceInfo("e1", "t-1", "tank_monitor", "farm",
                      {"installation": "mh-1", "level_h": "8", "level_hh": "9",
                       "level_l": "2", "level_ll": "1"}, {"level": "m"})  # fmt: skip
    gas = DeviceInfo("e1", "g-1", "gas_detector", "farm",
                     {"installation": "mh-1", "sector": "chemical"}, {"lel": "%LEL"})  # fmt: skip
    engine = pack("tank-level-high", "tank-level-low", "chem-lel", "installation-red")
    got = engine.on_batch(series(tank, "level", [5.0, 8.2], t0=T0))
    assert steps(got) == [("tank-level-high", 0, 3)]  # orange points do not make it red
    got = engine.on_batch(series(gas, "lel", [55.0], t0=T0 + 1_000))
    assert steps(got) == [("chem-lel", 0, 4), ("installation-red", 0, 4)]
    assert got[1].key == "e1/mh-1/-/installation-red"
    engine.on_batch(series(gas, "lel", [1.0], t0=T0 + 2_000))
    assert steps(engine.on_tick(T0 + 62_000)) == [("installation-red", 4, 0)]


def test_four_blue_items_make_the_dam_yellow() -> None:
    warn = {"warn_blue": "10", "warn_yellow": "20", "warn_orange": "30", "warn_red": "40"}
    items = ["displacement", "pond_level", "rainfall", "displacement"]
    devices = [
        DeviceInfo("e1", f"tm-{i}", "tailings_monitor", "dam", {"dam": "d", "item": it, **warn})
        for i, it in enumerate(items)
    ]
    engine = pack("tailings-displacement", "tailings-pond-level", "tailings-rainfall",
                  "tailings-beach-slope", "tailings-dam-yellow")  # fmt: skip
    slope = DeviceInfo("e1", "tm-s", "tailings_monitor", "dam",
                       {"dam": "d", "item": "beach_slope", "warn_blue": "1.0", "warn_yellow": "0.8",
                        "warn_orange": "0.6", "warn_red": "0.4"}, {"beach_slope": "%"})  # fmt: skip
    rows = [(d, d.tags["item"], T0 + i * 1000, 12.0) for i, d in enumerate(devices)]
    got = engine.on_batch(batch(rows))
    # four blue points, but only three distinct items
    assert [t.rule_id for t in got].count("tailings-dam-yellow") == 0
    got = engine.on_batch(series(slope, "beach_slope", [0.9], t0=T0 + 10_000))
    assert steps(got) == [("tailings-beach-slope", 0, 1), ("tailings-dam-yellow", 0, 2)]
    assert got[1].unit == "groups" and got[1].value == 4.0


def test_a_spark_not_extinguished_in_time_is_red() -> None:
    dc = DeviceInfo("e1", "dc-1", "dust_collector", "ws", {"collector": "dry"})
    engine = pack("dust-spark-unextinguished")
    assert engine.on_events([Event(dc, T0, "spark_detected")]) == []
    assert engine.on_events([Event(dc, T0 + 3_000, "spark_extinguished")]) == []
    assert engine.on_tick(T0 + 60_000) == []  # answered in time: nothing
    assert engine.on_events([Event(dc, T0 + 100_000, "spark_detected")]) == []
    assert engine.on_tick(T0 + 110_000) == []  # at the deadline an answer is still in time
    assert steps(engine.on_tick(T0 + 111_000)) == [("dust-spark-unextinguished", 0, 4)]
    # the alert stays up for window_s after the deadline, then clears on the clock
    assert steps(engine.on_tick(T0 + 110_000 + 600_000)) == [("dust-spark-unextinguished", 4, 0)]


def test_a_pending_spark_survives_a_snapshot() -> None:
    dc = DeviceInfo("e1", "dc-1", "dust_collector", "ws", {"collector": "dry"})
    rules = [(r, 1) for r in default_rules() if r.id == "dust-spark-unextinguished"]
    engine = Engine(rules)
    engine.on_events([Event(dc, T0, "spark_detected")])
    restored = Engine.restore(engine.snapshot(0), rules, 0)
    assert steps(restored.on_tick(T0 + 11_000)) == [("dust-spark-unextinguished", 0, 4)]


def test_wet_collector_and_casting_design_values() -> None:
    wet = DeviceInfo("e1", "dc-w", "dust_collector", "ws",
                     {"collector": "wet", "water_level_min": "0.8", "flow_min": "20"},
                     {"water_level": "m", "flow": "m³/h"})  # fmt: skip
    design = {"cw_pressure_min": "0.2", "cw_flow_min": "100"}
    cast = DeviceInfo("e1", "cm-1", "casting_monitor", "cast", design, {"cw_pressure": "MPa"})
    engine = pack("dust-wet-water-level", "casting-cw-pressure", "casting-emergency-drain")
    got = engine.on_batch(series(wet, "water_level", [1.0, 0.79], t0=T0))
    assert steps(got) == [("dust-wet-water-level", 0, 3)]
    got = engine.on_batch(series(cast, "cw_pressure", [0.3, 0.21, 0.19], t0=T0))
    assert steps(got) == [("casting-cw-pressure", 0, 2), ("casting-cw-pressure", 2, 3)]
    got = engine.on_events([Event(cast, T0 + 5_000, "emergency_drain")])
    assert steps(got) == [("casting-emergency-drain", 0, 4)]


# 2025-11-24 (Monday) 21:59 in Beijing, in UTC epoch ms
MON_2159 = 1_763_992_740_000


def test_power_above_its_night_baseline_only_off_hours() -> None:
    meter = DeviceInfo("e1", "pm-1", "power_meter", "plant", {"night_kw": "300"},
                       {"p_active": "kW"})  # fmt: skip
    rules = [(r, 1) for r in default_rules() if r.id == "off-hours-power"]
    engine, ref = Engine(rules), Reference(rules)
    for e in (engine, ref):
        e.on_tick(MON_2159)
        assert e.on_batch(series(meter, "p_active", [900.0], t0=MON_2159)) == []  # daytime
        assert e.on_tick(MON_2159 + 60_000) == []  # 22:00: the rule applies from now on
        got = e.on_batch(series(meter, "p_active", [900.0] * 32, t0=MON_2159 + 60_000,
                                step_ms=60_000))  # fmt: skip
        assert steps(got) == [("off-hours-power", 0, 2), ("off-hours-power", 2, 3)]
        assert got[1].ts - got[0].ts == 1_800_000


def test_a_sudden_jump_in_power_use() -> None:
    meter = DeviceInfo("e1", "pm-1", "power_meter", "plant", {"jump_kw": "500"},
                       {"p_active": "kW"})  # fmt: skip
    plain = DeviceInfo("e1", "pm-2", "power_meter", "plant", {}, {"p_active": "kW"})
    rules = [(r, 1) for r in default_rules() if r.id == "power-jump"]
    for e in (Engine(rules), Reference(rules)):
        steady = e.on_batch(series(meter, "p_active", [800.0, 820.0, 810.0], t0=T0, step_ms=60_000))
        assert steady == []
        got = e.on_batch(series(meter, "p_active", [1500.0], t0=T0 + 180_000))
        assert steps(got) == [("power-jump", 0, 2)]
        assert got[0].unit == "kW/min"
        assert e.on_batch(series(plain, "p_active", [0.0, 5000.0], t0=T0, step_ms=60_000)) == []
