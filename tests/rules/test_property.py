"""The vectorised engine against the per-reading reference on random streams, and
against itself under different batch splits; group rules judged inline and by their
group's owner (`groups.py`, as the engine stage runs them) alike."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from yujing.ingest.batch import DeviceInfo, ReadingBatch, Status
from yujing.rules.engine import Engine
from yujing.rules.groups import GroupRules
from yujing.rules.model import Rule, parse_rule
from yujing.rules.reference import Reference
from yujing.rules.snapshot import encode
from yujing.rules.transition import Transition
from yujing.testing.rules import batch, gas

VALUES = [0.0, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.2, 1.5, 1.6, 2.0, math.nan]
DEVICES = [gas("d0", critical=True), gas("d1"), gas("d2", location="upper_corner", critical=True),
           DeviceInfo("e1", "d3", "gas_detector", "s2", {"sector": "coal", "location": "coal_face"},
                      intervals={"ch4": 1.0})]  # fmt: skip
STATES = ["online", "offline", "fault", "maintenance"]


@st.composite
def threshold_rules(draw: st.DrawFn, i: int) -> dict[str, Any]:
    words = draw(
        st.lists(
            st.sampled_from(["blue", "yellow", "orange", "red"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    order = ["blue", "yellow", "orange", "red"]
    words.sort(key=order.index)
    base = sorted(
        draw(
            st.lists(
                st.sampled_from([0.8, 0.9, 1.0, 1.2, 1.5]), min_size=len(words), max_size=len(words)
            )
        )
    )
    direction = draw(st.sampled_from(["above", "below"]))
    if direction == "below":
        base = base[::-1]
    levels = dict(zip(words, base, strict=True))
    rule: dict[str, Any] = {"id": f"t{i}", "kind": "threshold", "direction": direction,
                            "levels": levels,
                            "select": {"point": draw(st.sampled_from(["ch4", "o2"]))}}  # fmt: skip
    hyst = draw(st.sampled_from(["none", "deadband", "clear"]))
    if hyst == "deadband":
        rule["deadband"] = draw(st.sampled_from([0.0, 0.1, 0.3]))
    elif hyst == "clear":
        w = draw(st.sampled_from(words))
        rule["clear"] = {w: levels[w] - 0.2 if direction == "above" else levels[w] + 0.2}
    rule["for_s"] = draw(st.sampled_from([0, 0, 2, 5]))
    rule["clear_for_s"] = draw(st.sampled_from([0, 0, 3]))
    if draw(st.booleans()):
        rule["overrides"] = {
            "d1": {
                "for_s": 0,
                "levels": {
                    w: v * 1.1 if direction == "above" else v * 0.9 for w, v in levels.items()
                },
            }
        }
    return rule


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    n = draw(st.integers(1, 3))
    rules = [draw(threshold_rules(i)) for i in range(n)]
    if draw(st.booleans()):
        rules.append({"id": "stuck", "kind": "stuck", "select": {"tags": {"critical": "true"}},
                      "epsilon": draw(st.sampled_from([0.0, 0.1])),
                      "levels": {"blue": 3, "orange": 6}})  # fmt: skip
    if draw(st.booleans()):
        rules.append(
            {
                "id": "fault",
                "kind": "absent",
                "signal": "fault",
                "select": {"point": "ch4"},
                "levels": {"blue": 2},
            }
        )
        rules.append(
            {"id": "silent", "kind": "absent", "select": {}, "levels": {"blue": 4, "red": 9}}
        )
    if draw(st.booleans()):
        # counted in reporting intervals: d3 reports every 1 s, the others take the default
        rules.append({"id": "missed", "kind": "absent", "select": {"point": "ch4"},
                      "signal": draw(st.sampled_from(["silence", "fault"])),
                      "intervals": {"blue": 3}, "levels": {"orange": 5},
                      "default_interval_s": draw(st.sampled_from([1, 2, 4]))})  # fmt: skip
    if draw(st.booleans()):
        direction = draw(st.sampled_from(["above", "below"]))
        sign = 1 if direction == "above" else -1
        rules.append({"id": "rate", "kind": "rate", "select": {"point": "ch4"},
                      "direction": direction, "levels": {"yellow": sign * 10.0, "red": sign * 40.0},
                      "window_s": draw(st.sampled_from([1, 3, 5])),
                      "for_s": draw(st.sampled_from([0, 2])),
                      "clear_for_s": draw(st.sampled_from([0, 2]))})  # fmt: skip
    if draw(st.booleans()):
        rules.append({"id": "grp", "kind": "composite", "group_by": "site", "of_level": "yellow",
                      "count": 2,
                      "level": "orange", "window_s": 5})  # fmt: skip
    if draw(st.booleans()):
        # a group of groups: distinct locations of one sector with a point at blue or above
        rules.append({"id": "grp2", "kind": "composite", "group_by": "sector",
                      "distinct": "location", "of_level": "blue", "count": 2, "level": "red",
                      "window_s": draw(st.sampled_from([1, 5]))})  # fmt: skip
    return [parse_rule(r) for r in rules]


@st.composite
def streams(draw: st.DrawFn) -> list[Any]:
    """Readings (device, point, ts, value, quality), with clock ticks ("tick", now) between."""
    n = draw(st.integers(1, 60))
    t = 1_000_000
    rows: list[Any] = []
    for _ in range(n):
        t += draw(st.sampled_from([0, 500, 1000, 1000, 2000]))
        jitter = draw(st.sampled_from([0, 0, 0, -700, -3000, 300]))  # disorder and late readings
        q = draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2]))
        rows.append((draw(st.sampled_from(DEVICES)), draw(st.sampled_from(["ch4", "o2"])),
                     t + jitter, draw(st.sampled_from(VALUES)), q))  # fmt: skip
        if draw(st.integers(0, 9)) == 0:
            rows.append(("tick", t + draw(st.sampled_from([0, 3000, 5000, 10_000]))))
        if draw(st.integers(0, 7)) == 0:
            rows.append(("status", Status(draw(st.sampled_from(DEVICES)),
                                          t + draw(st.sampled_from([-2000, 0, 500])),
                                          draw(st.sampled_from(STATES)))))  # fmt: skip
    return rows


class Routed:
    """An engine that only routes group rules, and the groups' owner fed its member
    changes in publication order: the engine stage's two halves."""

    def __init__(self, versions: list[tuple[Rule, int]]) -> None:
        self.engine = Engine(versions, route_groups=True)
        self.groups = GroupRules(versions)

    def _owner(self, out: list[Transition]) -> list[Transition]:
        return out + self.groups.evaluate(self.engine.composites.drain())

    def on_batch(self, b: ReadingBatch) -> list[Transition]:
        return self._owner(self.engine.on_batch(b))

    def on_status(self, s: list[Status]) -> list[Transition]:
        return self._owner(self.engine.on_status(s))

    def on_tick(self, now: int) -> list[Transition]:
        return self._owner(self.engine.on_tick(now)) + self.groups.on_tick(now)


def points_and_groups(out: list[Transition]) -> tuple[list[Transition], list[Transition]]:
    """Routed group transitions come after the batch's point transitions, not between."""
    return [t for t in out if t.device is not None], [t for t in out if t.device is None]


def run(
    engine: Engine | Reference | Routed, rows: list[Any], cuts: list[int], final_tick: int
) -> list[Transition]:
    """Feed the stream cut into batches at `cuts` (and at every tick); then a last tick."""
    out: list[Transition] = []
    edges = {c % (len(rows) + 1) for c in cuts}
    pending: list[Any] = []
    for i, row in enumerate([*rows, ("tick", final_tick)]):
        if (i in edges or row[0] in ("tick", "status")) and pending:
            out.extend(engine.on_batch(batch(pending)))
            pending = []
        if row[0] == "tick":
            out.extend(engine.on_tick(row[1]))
        elif row[0] == "status":
            out.extend(engine.on_status([row[1]]))
        else:
            pending.append(row)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), rows=streams(), cuts=st.lists(st.integers(0, 60), max_size=6),
       cuts2=st.lists(st.integers(0, 60), max_size=6), tick=st.integers(0, 20_000))  # fmt: skip
def test_vectorised_engine_equals_reference_however_split(
    rules: list[Rule], rows: list[Any], cuts: list[int], cuts2: list[int], tick: int
) -> None:
    versions = [(r, 1) for r in rules]
    now = (
        max(r[1] if r[0] == "tick" else r[1].ts if r[0] == "status" else r[2] for r in rows) + tick
    )
    ref = Reference(versions)
    want = run(ref, rows, [], now)
    engine = Engine(versions)
    assert run(engine, rows, cuts, now) == want
    # The second split also carries registry ids, as ingest sends them: the engine then maps
    # devices by uid instead of by name, and must not notice the difference.
    assert run(Engine(versions), with_registry_ids(rows), cuts2, now) == want
    assert points_and_groups(run(Routed(versions), rows, cuts, now)) == points_and_groups(want)
    assert engine.late_readings == ref.late_readings


def stamp(row: Any) -> int:
    if row[0] == "tick":
        return int(row[1])
    return int(row[1].ts) if row[0] == "status" else int(row[2])


def with_registry_ids(rows: list[Any]) -> list[Any]:
    ids = {d.key: i + 1 for i, d in enumerate(DEVICES)}
    return [
        row
        if row[0] in ("tick", "status")
        else (replace(row[0], uid=ids[row[0].key], rev=1), *row[1:])
        for row in rows
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), rows=streams(), at=st.integers(0, 60), more=st.integers(0, 30),
       tick=st.integers(0, 20_000))  # fmt: skip
def test_a_base_and_a_delta_restore_an_engine_that_goes_on_identically(
    rules: list[Rule], rows: list[Any], at: int, more: int, tick: int
) -> None:
    """Every kind's snapshot section: an engine restored from a whole snapshot taken at
    one point and a delta taken later emits what the engine it came from emits."""
    versions = [(r, 1) for r in rules]
    now = max(stamp(r) for r in rows) + tick
    first, second = at % (len(rows) + 1), min(at % (len(rows) + 1) + more, len(rows))
    engine = Engine(versions)
    run(engine, rows[:first], [], now)  # (ends with a tick at `now`; the clock moves on)
    base, _ = engine.capture(0, full=True)
    engine.saved()
    run(engine, rows[first:second], [], now + 1)
    delta, whole = engine.capture(0, full=False)
    event(f"delta is {'whole' if whole else 'partial'}")
    restored = Engine(versions)
    restored.load([encode(base), encode(delta)], 0)
    rest = rows[second:]
    assert run(restored, rest, [], now + 2) == run(engine, rest, [], now + 2)
    assert restored.late_readings <= engine.late_readings
