"""Device health by each point's own interval, a device's own status messages, methane
sensors that cut power, and calibration due dates: timelines with an injected clock."""

from __future__ import annotations

from msgspec.structs import replace

from yujing.ingest.batch import DeviceInfo, Status
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.reference import Reference
from yujing.testing.rules import batch, gas, series

T0 = 1_763_856_000_000  # 2025-11-23 00:00 UTC
CRIT = gas("ch4-1", critical=True)
FAST = replace(gas("ch4-fast", critical=True), intervals={"ch4": 1.0})
SLOW = DeviceInfo("e1", "tm-1", "tailings_monitor", "dam", {"critical": "true"},
                  {"phreatic": "m"}, intervals={"phreatic": 600.0})  # fmt: skip
CUT = replace(gas("ch4-cut", critical=True), tags={**CRIT.tags, "power_cut": "true"})


def pack(*ids: str) -> Engine:
    return Engine([(r, 1) for r in default_rules() if r.id in ids])


def steps(ts: list) -> list[tuple[str, int, int, int]]:  # type: ignore[type-arg]
    return [(t.rule_id, t.from_level, t.to_level, t.ts - T0) for t in ts]


def test_a_one_second_sensor_goes_blue_after_three_seconds() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(FAST, "ch4", [0.3], t0=T0))
    assert engine.on_tick(T0 + 2_999) == []
    assert steps(engine.on_tick(T0 + 3_000)) == [("critical-offline", 0, 1, 3_000)]
    assert steps(engine.on_tick(T0 + 300_000)) == [("critical-offline", 1, 3, 300_000)]


def test_a_ten_minute_point_stays_quiet_between_readings() -> None:
    engine = pack("critical-offline")
    out = []
    for i in range(6):  # readings every 10 min, the clock ticking every 10 s between them
        out += engine.on_batch(series(SLOW, "phreatic", [10.0], t0=T0 + i * 600_000))
        for t in range(10_000, 600_000, 10_000):
            out += engine.on_tick(T0 + i * 600_000 + t)
    assert out == []
    # three missed intervals (30 min) is past the 5-minute orange: straight to orange
    got = engine.on_tick(T0 + 5 * 600_000 + 1_800_000)
    assert steps(got) == [("critical-offline", 0, 3, 4_800_000)]


def test_unregistered_interval_uses_the_default_25_s() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    assert engine.on_tick(T0 + 74_999) == []
    assert steps(engine.on_tick(T0 + 75_000)) == [("critical-offline", 0, 1, 75_000)]


def test_offline_status_acts_at_once_and_online_clears() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    got = engine.on_status([Status(CRIT, T0 + 5_000, "offline", "last will")])
    assert steps(got) == [("critical-offline", 0, 1, 5_000)]
    assert got[0].health
    # escalation still counts from the last reading
    assert steps(engine.on_tick(T0 + 300_000)) == [("critical-offline", 1, 3, 300_000)]
    assert steps(engine.on_status([Status(CRIT, T0 + 310_000, "online")])) == [
        ("critical-offline", 3, 0, 310_000)
    ]
    # after `online`, silence counts from the status, not from the old reading
    assert engine.on_tick(T0 + 310_000 + 74_999) == []
    assert steps(engine.on_tick(T0 + 385_000)) == [("critical-offline", 0, 1, 385_000)]


def test_a_status_older_than_the_newest_reading_does_nothing() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0 + 10_000))
    assert engine.on_status([Status(CRIT, T0 + 5_000, "offline")]) == []


def test_fault_status_raises_the_fault_rule_and_a_good_reading_ends_it() -> None:
    engine = pack("critical-fault", "critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    assert steps(engine.on_status([Status(CRIT, T0 + 1_000, "fault", "sensor")])) == [
        ("critical-fault", 0, 1, 1_000)
    ]
    assert steps(engine.on_tick(T0 + 301_000)) == [
        ("critical-fault", 1, 3, 301_000),
        ("critical-offline", 0, 3, 301_000),
    ]
    got = engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0 + 302_000))
    assert sorted(steps(got)) == [
        ("critical-fault", 3, 0, 302_000),
        ("critical-offline", 3, 0, 302_000),
    ]


def test_maintenance_status_does_not_judge_health() -> None:
    engine = pack("critical-offline", "critical-fault")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    assert engine.on_status([Status(CRIT, T0 + 1_000, "maintenance")]) == []


def test_a_faulty_or_silent_power_cut_methane_sensor_reaches_red() -> None:
    engine = pack("ch4-powercut-fault", "ch4-powercut-silent")
    engine.on_batch(series(CUT, "ch4", [0.3], t0=T0))
    got = engine.on_batch(batch([(CUT, "ch4", T0 + 15_000, 0.0, 1)]))
    assert got == []
    assert steps(engine.on_tick(T0 + 17_000)) == [("ch4-powercut-fault", 0, 4, 17_000)]
    engine.on_batch(series(CUT, "ch4", [0.3], t0=T0 + 20_000))
    assert steps(engine.on_tick(T0 + 20_000 + 75_000)) == [("ch4-powercut-silent", 0, 4, 95_000)]
    fresh = pack("ch4-powercut-fault", "ch4-powercut-silent")
    fresh.on_batch(series(CUT, "ch4", [0.3], t0=T0))
    assert steps(fresh.on_status([Status(CUT, T0 + 1_000, "offline")])) == [
        ("ch4-powercut-silent", 0, 4, 1_000)
    ]
    assert steps(fresh.on_status([Status(CUT, T0 + 2_000, "fault")])) == [
        ("ch4-powercut-fault", 0, 4, 2_000)
    ]


def test_the_reference_agrees_on_status_and_intervals() -> None:
    rules = [(r, 1) for r in default_rules() if r.kind == "absent"]
    engine, ref = Engine(rules), Reference(rules)
    rows = [(FAST, "ch4", T0, 0.3), (CUT, "ch4", T0, 0.3), (SLOW, "phreatic", T0, 9.0)]
    plan = [
        ("batch", rows),
        ("status", Status(CUT, T0 + 500, "offline")),
        ("tick", T0 + 4_000),
        ("status", Status(FAST, T0 + 5_000, "online")),
        ("tick", T0 + 9_000),
        ("status", Status(FAST, T0 + 9_500, "fault")),
        ("tick", T0 + 2_000_000),
    ]
    for what, arg in plan:
        for e in (engine, ref):
            if what == "batch":
                got = e.on_batch(batch(arg))  # type: ignore[arg-type]
            elif what == "status":
                got = e.on_status([arg])  # type: ignore[list-item]
            else:
                got = e.on_tick(arg)  # type: ignore[arg-type]
            if e is engine:
                want = got
            else:
                assert got == want, what


def test_a_lapsed_calibration_raises_one_blue_alert() -> None:
    due = replace(CRIT, device="ch4-cal", tags={**CRIT.tags, "calibration_due": "2025-11-23"})
    engine = pack("calibration-lapsed")
    engine.on_batch(series(due, "ch4", [0.3], t0=T0))
    # due on 23 Nov (Beijing time): lapses at 24 Nov 00:00 +08:00 = 23 Nov 16:00 UTC
    assert engine.on_tick(T0 + 16 * 3_600_000 - 1) == []
    got = engine.on_tick(T0 + 16 * 3_600_000)
    assert [(t.rule_id, t.device, t.point, t.to_level, t.health) for t in got] == [
        ("calibration-lapsed", "ch4-cal", None, 1, False)
    ]
    assert engine.on_tick(T0 + 17 * 3_600_000) == []
    # recalibrated: the record's new due date clears it
    redone = replace(due, tags={**due.tags, "calibration_due": "2026-05-23"}, rev=2)
    engine.device_changed("e1", "ch4-cal")  # as the registry announces it
    engine.on_batch(series(redone, "ch4", [0.3], t0=T0 + 18 * 3_600_000))
    got = engine.on_tick(T0 + 18 * 3_600_000)
    assert [(t.rule_id, t.from_level, t.to_level) for t in got] == [("calibration-lapsed", 1, 0)]


def test_calibration_levels_survive_a_snapshot() -> None:
    due = replace(CRIT, tags={**CRIT.tags, "calibration_due": "2025-01-01"})
    rules = [(r, 1) for r in default_rules() if r.id == "calibration-lapsed"]
    engine = Engine(rules)
    engine.on_batch(series(due, "ch4", [0.3], t0=T0))
    assert len(engine.on_tick(T0)) == 1
    restored = Engine.restore(engine.snapshot(0), rules, 0)
    assert restored.on_tick(T0 + 1_000) == []
