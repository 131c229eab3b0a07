"""The threshold rule on event time: levels, hysteresis, durations, late readings."""

from __future__ import annotations

import numpy as np

from yujing.rules.engine import Engine
from yujing.rules.model import parse_rule
from yujing.testing.rules import batch, gas, series

FACE = parse_rule(
    {
        "id": "coal-face-ch4", "kind": "threshold", "name": "采煤工作面甲烷",
        "select": {"device_kind": "gas_detector", "point": "ch4",
                   "tags": {"location": "coal_face"}},
        "levels": {"yellow": 0.8, "orange": 1.0, "red": 1.5}, "clear": {"red": 1.0},
    }
)  # fmt: skip
DEV = gas("dev-17")


def levels(transitions: list) -> list[tuple[int, int, int]]:  # type: ignore[type-arg]
    return [(t.from_level, t.to_level, t.ts) for t in transitions]


def test_levels_rise_and_clear_with_the_restore_value() -> None:
    engine = Engine([(FACE, 3)])
    got = engine.on_batch(series(DEV, "ch4", [0.5, 0.9, 1.2, 1.6, 1.2, 0.99, 0.7]))
    assert levels(got) == [(0, 2, 1000), (2, 3, 2000), (3, 4, 3000), (4, 2, 5000), (2, 0, 6000)]
    red = got[2]
    assert (red.key, red.rule_version, red.value, red.threshold) == (
        "e1/dev-17/ch4/coal-face-ch4",
        3,
        1.6,
        1.5,
    )
    assert red.message() == "采煤工作面甲烷 1.6 %CH4 ≥ 1.5（红色）"
    # red holds at 1.2 (restore is < 1.0); the drop names the restore value it crossed
    assert (got[3].value, got[3].threshold) == (0.99, 1.0)


def test_for_s_and_clear_for_s_use_event_time() -> None:
    rule = FACE.model_copy(update={"for_s": 10.0, "clear_for_s": 5.0})
    engine = Engine([(rule, 1)])
    # 1.2 from t=0; at t=9 s not yet 10 s, at t=10 s orange is confirmed
    got = engine.on_batch(series(DEV, "ch4", [1.2] * 11))
    assert levels(got) == [(0, 3, 10_000)]
    got = engine.on_batch(series(DEV, "ch4", [0.5] * 6, t0=11_000))
    assert levels(got) == [(3, 0, 16_000)]


def test_below_rule_and_deadband() -> None:
    o2 = parse_rule({"id": "o2-low", "kind": "threshold", "select": {"point": "o2"},
                     "direction": "below",
                     "levels": {"orange": 19.5}, "deadband": 0.5})  # fmt: skip
    engine = Engine([(o2, 1)])
    got = engine.on_batch(series(DEV, "o2", [20.9, 19.5, 19.8, 20.0, 20.1]))
    assert levels(got) == [(0, 3, 1000), (3, 0, 4000)]  # 20.0 still holds: clear is "> 20.0"
    assert got[1].threshold == 20.0


def test_late_readings_are_skipped_and_counted() -> None:
    engine = Engine([(FACE, 1)])
    got = engine.on_batch(
        batch([(DEV, "ch4", 5000, 0.5), (DEV, "ch4", 4000, 1.6), (DEV, "ch4", 5000, 0.6)])
    )
    assert got == [] and engine.late_readings == 1
    got = engine.on_batch(batch([(DEV, "ch4", 4500, 1.7)]))
    assert got == [] and engine.late_readings == 2


def test_bad_quality_and_missing_values_do_not_feed_hazard_rules() -> None:
    engine = Engine([(FACE, 1)])
    got = engine.on_batch(
        batch([(DEV, "ch4", 1, 2.0, 1), (DEV, "ch4", 2, float("nan")), (DEV, "ch4", 3, 2.0, 2)])
    )
    assert got == []


def test_overrides_apply_per_device() -> None:
    rule = parse_rule(
        FACE.model_dump() | {"overrides": {"dev-9": {"levels": {"orange": 0.9, "red": 1.2}}}}
    )
    engine = Engine([(rule, 1)])
    other = gas("dev-9")
    got = engine.on_batch(batch([(DEV, "ch4", 1, 0.95), (other, "ch4", 1, 0.95)]))
    assert [(t.device, t.to_level) for t in got] == [("dev-17", 2), ("dev-9", 3)]


def test_tag_thresholds_bind_per_device() -> None:
    rule = parse_rule(
        {
            "id": "dp-high",
            "kind": "threshold",
            "select": {"point": "dp"},
            "levels": {"orange": "1.2*dp_rated"},
        }
    )
    from yujing.ingest.batch import DeviceInfo

    rated = DeviceInfo("e1", "dc-1", "dust_collector", "s1", {"dp_rated": "1000"})
    bare = DeviceInfo("e1", "dc-2", "dust_collector", "s1", {})
    engine = Engine([(rule, 1)])
    got = engine.on_batch(batch([(rated, "dp", 1, 1300.0), (bare, "dp", 1, 1e9)]))
    assert [(t.device, t.threshold) for t in got] == [("dc-1", 1200.0)]


def test_rule_change_keeps_level_and_unchanged_rules_keep_state() -> None:
    o2 = parse_rule({"id": "o2-low", "kind": "threshold", "select": {"point": "o2"},
                     "direction": "below",
                     "levels": {"orange": 19.5}})  # fmt: skip
    engine = Engine([(FACE, 1), (o2, 1)])
    engine.on_batch(batch([(DEV, "ch4", 1, 1.2), (DEV, "o2", 1, 19.0)]))
    stricter = FACE.model_copy(update={"levels": {"yellow": 0.8, "orange": 1.3, "red": 1.5}})
    engine.set_rules([(stricter, 2), (o2, 1)])
    # orange is kept; the next reading is judged by version 2, whose orange clears below 1.3
    got = engine.on_batch(batch([(DEV, "ch4", 2, 1.2), (DEV, "o2", 2, 19.0)]))
    assert [(t.rule_id, t.rule_version, t.from_level, t.to_level) for t in got] == [
        ("coal-face-ch4", 2, 3, 2)
    ]
    engine.set_rules([(stricter, 2)])
    assert engine.on_batch(batch([(DEV, "o2", 3, 10.0)])) == []


def test_site_state_gates_a_rule() -> None:
    from yujing.ingest.batch import DeviceInfo

    rule = parse_rule({"id": "halted-power", "kind": "threshold", "select": {"point": "p_active"},
                       "site_state": "halted", "levels": {"orange": "idle_kw", "red": "idle_kw"},
                       "for_s": {"red": 1800}})  # fmt: skip
    meter = DeviceInfo("e1", "m1", "power_meter", "mine-2", {"idle_kw": "50"}, {"p_active": "kW"})
    engine = Engine([(rule, 1)])
    assert engine.on_batch(series(meter, "p_active", [400.0, 400.0])) == []
    engine.set_site_state("e1", "mine-2", "halted")
    got = engine.on_batch(series(meter, "p_active", [400.0] * 3, t0=10_000, step_ms=900_000))
    assert levels(got) == [(0, 3, 10_000), (3, 4, 1_810_000)]
    engine.set_site_state("e1", "mine-2", "operating")
    got = engine.on_batch(series(meter, "p_active", [400.0], t0=3_000_000))
    assert levels(got) == [(4, 0, 3_000_000)]


def test_many_devices_one_batch_only_changes_emit() -> None:
    engine = Engine([(FACE, 1)])
    devs = [gas(f"d{i}") for i in range(1000)]
    values = np.where(np.arange(1000) % 100 == 0, 1.6, 0.3)
    got = engine.on_batch(
        batch([(d, "ch4", 1000, float(v)) for d, v in zip(devs, values, strict=True)])
    )
    assert len(got) == 10 and {t.to_level for t in got} == {4}


def test_a_scoped_rule_fires_only_on_its_enterprises_devices() -> None:
    from yujing.ingest.batch import DeviceInfo
    from yujing.rules.reference import Reference

    scoped = FACE.model_copy(update={"enterprises": ["e2"]})
    mine = DeviceInfo("e2", DEV.device, DEV.kind, DEV.site, DEV.tags, DEV.units)
    theirs = DEV  # of e1
    readings = batch([(d, "ch4", t, 1.2) for t in (0, 1000) for d in (mine, theirs)])
    for engine in (Engine([(scoped, 1)]), Reference([(scoped, 1)])):
        got = engine.on_batch(readings)
        assert [(t.enterprise, t.to_level) for t in got] == [("e2", 3)]
