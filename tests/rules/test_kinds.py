"""Health, event and composite rules, on a timeline."""

from __future__ import annotations

import math

from yujing.ingest.batch import DeviceInfo, Event
from yujing.rules.engine import Engine
from yujing.rules.model import parse_rule
from yujing.rules.packs import default_rules
from yujing.testing.rules import batch, gas, series

CRIT = gas("ch4-1", critical=True)
T0 = 1_763_856_000_000


def pack(*ids: str) -> Engine:
    return Engine([(r, 1) for r in default_rules() if r.id in ids])


def steps(ts: list) -> list[tuple[str, int, int, int]]:  # type: ignore[type-arg]
    return [(t.rule_id, t.from_level, t.to_level, t.ts - T0) for t in ts]


def test_offline_escalates_on_the_clock_and_clears_on_the_next_reading() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    assert engine.on_tick(T0 + 74_999) == []
    assert steps(engine.on_tick(T0 + 75_000)) == [("critical-offline", 0, 1, 75_000)]
    assert steps(engine.on_tick(T0 + 300_000)) == [("critical-offline", 1, 3, 300_000)]
    assert engine.on_tick(T0 + 400_000) == []
    got = engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0 + 401_000))
    assert steps(got) == [("critical-offline", 3, 0, 401_000)]
    assert got[0].health


def test_fault_quality_escalates_and_feeds_no_hazard_rule() -> None:
    engine = pack("critical-fault", "coal-face-ch4")
    faulty = [(CRIT, "ch4", T0 + i * 15_000, 9.9, 1) for i in range(5)]
    assert engine.on_batch(batch(faulty)) == []  # a faulty 9.9 % CH4 is not a red methane alarm
    assert steps(engine.on_tick(T0 + 75_000)) == [("critical-fault", 0, 1, 75_000)]
    got = engine.on_batch(batch([(CRIT, "ch4", T0 + 80_000, 0.3, 0)]))
    assert steps(got) == [("critical-fault", 1, 0, 80_000)]


def test_stuck_value_on_event_time() -> None:
    engine = pack("critical-stuck")
    flat = series(CRIT, "ch4", [0.31] * 121, t0=T0, step_ms=15_000)  # 30 min of one value
    assert steps(engine.on_batch(flat)) == [("critical-stuck", 0, 1, 1_800_000)]
    got = engine.on_batch(series(CRIT, "ch4", [0.35], t0=T0 + 1_815_000))
    assert steps(got) == [("critical-stuck", 1, 0, 1_815_000)]


def test_seal_events_depend_on_site_state() -> None:
    engine = pack("seal-person-in", "seal-camera-blocked", "seal-camera-blocked-halted")
    seal = DeviceInfo("e1", "seal-1", "electronic_seal", "mine-9", {"position": "main_shaft"})
    assert engine.on_events([Event(seal, T0, "person_in", 3)]) == []  # operating mine
    got = engine.on_events([Event(seal, T0 + 1, "camera_blocked")])
    assert [(t.rule_id, t.to_level) for t in got] == [("seal-camera-blocked", 1)]
    engine.set_site_state("e1", "mine-9", "halted")
    got = engine.on_events(
        [Event(seal, T0 + 2, "person_in", 2), Event(seal, T0 + 3, "camera_blocked")]
    )
    assert [(t.rule_id, t.to_level, t.value) for t in got] == [
        ("seal-person-in", 4, 2.0),
        ("seal-camera-blocked-halted", 3, 1.0),
    ]
    # the window (30 min) empties on the clock
    expired = engine.on_tick(T0 + 1_800_003)
    assert sorted((t.rule_id, t.to_level) for t in expired) == [
        ("seal-camera-blocked", 0),
        ("seal-camera-blocked-halted", 0),
        ("seal-person-in", 0),
    ]


def tailings(n: int, item: str = "displacement") -> DeviceInfo:
    tags = {"dam": "dam-1", "item": item, "warn_blue": "10", "warn_yellow": "20",
            "warn_orange": "30", "warn_red": "40"}  # fmt: skip
    return DeviceInfo("e1", f"tm-{n}", "tailings_monitor", "tk-1", tags, {"displacement": "mm"})


def test_tailings_points_aggregate_into_group_alerts() -> None:
    engine = pack(
        "tailings-displacement", "tailings-item-yellow", "tailings-item-orange", "tailings-item-red"
    )
    devs = [tailings(i) for i in range(4)]
    got = engine.on_batch(batch([(d, "displacement", T0 + i, 12.0) for i, d in enumerate(devs)]))
    groups = [(t.key, t.from_level, t.to_level) for t in got if t.device is None]
    assert groups == [("e1/dam-1:displacement/-/tailings-item-yellow", 0, 2)]  # 4 blue → yellow
    got = engine.on_batch(
        batch([(d, "displacement", T0 + 10 + i, 31.0) for i, d in enumerate(devs[:2])])
    )
    reds = [(t.rule_id, t.to_level) for t in got if t.device is None]
    assert reds == [("tailings-item-red", 4)]  # 2 orange → red; still 4 ≥ blue, 2 ≥ yellow
    other_item = tailings(9, "phreatic")
    got = engine.on_batch(batch([(other_item, "displacement", T0 + 20, 35.0)]))
    assert [t.device for t in got] == ["tm-9"]  # another item is another group


def test_nan_value_has_no_value() -> None:
    engine = pack("coal-face-ch4")
    assert engine.on_batch(series(gas("d"), "ch4", [math.nan, math.nan])) == []


def test_every_default_threshold_cites_its_source() -> None:
    rules = default_rules()
    assert len(rules) > 40
    assert all(r.source for r in rules)
    kinds = {r.kind for r in rules}
    assert {"threshold", "absent", "stuck", "event", "composite"} <= kinds
    face = next(r for r in rules if r.id == "coal-face-ch4")
    assert face.model_dump()["levels"] == {"yellow": 0.8, "orange": 1.0, "red": 1.5}
    assert face.model_dump()["clear"] == {"red": 1.0}


def test_snapshot_restores_state_into_a_new_engine() -> None:
    rules = [(parse_rule(r.model_dump(mode="json")), 1) for r in default_rules()]
    engine = Engine(rules)
    engine.on_batch(series(CRIT, "ch4", [1.6], t0=T0))
    engine.on_tick(T0 + 80_000)  # offline blue
    data = engine.snapshot()
    again = Engine.restore(data, rules)
    # red holds at 1.2 (no re-raise); the reading clears offline
    got = again.on_batch(series(CRIT, "ch4", [1.2, 0.5], t0=T0 + 90_000))
    assert steps(got) == [("critical-offline", 1, 0, 90_000), ("coal-face-ch4", 4, 0, 91_000)]
    # late readings stay late after a restore
    assert again.on_batch(series(CRIT, "ch4", [1.9], t0=T0)) == [] and again.late_readings == 1


def test_rate_per_minute_over_the_window_survives_a_snapshot() -> None:
    rule = parse_rule({"id": "ch4-rise", "kind": "rate", "select": {"point": "ch4"},
                       "levels": {"yellow": 0.2}, "window_s": 60})  # fmt: skip
    engine = Engine([(rule, 1)])
    dev = gas("d1")
    # +0.1 % in 15 s = 0.4 %/min: yellow at the second reading
    got = engine.on_batch(series(dev, "ch4", [0.30, 0.40], t0=T0, step_ms=15_000))
    assert [(t.to_level, round(t.value or 0, 6), t.threshold, t.unit) for t in got] == [
        (2, 0.4, 0.2, "%CH4/min")
    ]
    again = Engine.restore(engine.snapshot(), [(rule, 1)])
    # the restored window still holds 0.30 at T0: 0.1 % in 45 s = 0.13 %/min, cleared
    got = again.on_batch(series(dev, "ch4", [0.40], t0=T0 + 45_000))
    assert [(t.to_level, t.ts - T0) for t in got] == [(0, 45_000)]


def test_event_windows_are_snapshotted_with_their_partition() -> None:
    rules = [(r, 1) for r in default_rules() if r.id == "dust-spark"]
    engine = Engine(rules)
    dc = DeviceInfo("e1", "dc-1", "dust_collector", "s1", {"collector": "dry"})
    got = engine.on_events(
        [Event(dc, T0, "spark_detected"), Event(dc, T0 + 1, "spark_detected")], 2
    )
    assert [t.to_level for t in got] == [3]
    assert Engine.restore(engine.snapshot(1), rules, 1).events.state == {}  # another partition
    again = Engine.restore(engine.snapshot(2), rules, 2)
    got = again.on_events([Event(dc, T0 + 2, "spark_detected")], 2)
    assert [(t.from_level, t.to_level, t.value) for t in got] == [(3, 4, 3.0)]  # 3 in 60 s → red


def test_the_clock_only_judges_owned_partitions() -> None:
    engine = pack("critical-offline")
    other = gas("ch4-2", critical=True)
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0), partition=0)
    engine.on_batch(series(other, "ch4", [0.3], t0=T0), partition=1)
    got = engine.on_tick(T0 + 80_000, partitions={1})  # partition 0 moved to another engine
    assert [t.device for t in got] == ["ch4-2"]


def test_a_deleted_device_raises_no_offline_alert_until_it_reports_again() -> None:
    engine = pack("critical-offline")
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0))
    engine.device_removed(CRIT.enterprise, CRIT.device)
    assert engine.on_tick(T0 + 300_000) == []
    engine.on_batch(series(CRIT, "ch4", [0.3], t0=T0 + 301_000))  # registered again, reports
    assert steps(engine.on_tick(T0 + 376_000)) == [("critical-offline", 0, 1, 376_000)]
