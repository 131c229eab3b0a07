"""Every shipped scenario parses, and its ground truth follows from its own messages and
from the default rule packs (threshold rules evaluated reading by reading)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import pytest

from yujing.levels import Level
from yujing.rules.model import ThresholdRule, resolve_bound, site_states
from yujing.rules.packs import pack_names, pack_rules
from yujing.simulators.consistency import Readings, collect, problems
from yujing.simulators.fleet import DeviceRegistration
from yujing.simulators.incidents import FAULT_KINDS
from yujing.simulators.scenario import Scenario, builtin_scenarios, load_scenario

FAST = [p.stem for p in builtin_scenarios() if p.stem != "province-day"]


@cache
def _scenario(name: str) -> Scenario:
    return load_scenario(name)


@cache
def _readings(name: str) -> Readings:
    return collect(_scenario(name))


def test_the_required_scenarios_ship() -> None:
    names = {p.stem for p in builtin_scenarios()}
    rules_in_truth = {
        e.match.rule for n in names for e in _scenario(n).truth.alerts if e.match.rule
    }
    for pack in pack_names():
        ids = {r.id for r in pack_rules(pack)}
        assert ids & rules_in_truth, f"no scenario expects an alert of pack {pack}"
    faults = {f.kind for f in _scenario("input-faults").plan.faults}
    assert faults == set(FAULT_KINDS)
    assert _scenario("province-day").duration_s >= 86_400
    assert len(_scenario("province-day").fleet.enterprises) >= 5


@pytest.mark.parametrize("name", [*FAST, "province-day"])
def test_ground_truth_matches_the_messages(name: str) -> None:
    assert problems(_scenario(name), _readings(name)) == []


def _threshold_rules() -> list[ThresholdRule]:
    return [r for p in pack_names() for r in pack_rules(p) if isinstance(r, ThresholdRule)]


def _level(rule: ThresholdRule, dev: DeviceRegistration, value: float) -> Level:
    reached = Level.NONE
    for word, bound in rule.levels.items():
        limit = resolve_bound(bound, dev.tags)
        if limit is None:
            continue
        hit = value >= limit if rule.direction == "above" else value <= limit
        if hit:
            reached = max(reached, Level.parse(word))
    return reached


def _predicted(sc: Scenario, r: Readings) -> Iterator[tuple[DeviceRegistration, str, str, Level]]:
    """(device, point, rule id, highest level) the threshold rules reach on these readings,
    ignoring `for_s` and hysteresis (so it can only over-predict)."""
    rules = _threshold_rules()
    for (ent, device, point), series in r.by_point.items():
        dev = sc.fleet.device(ent, device)
        state = sc.fleet.site_state(ent, dev.site)
        for rule in rules:
            if not rule.select.matches(dev.kind, point, dev.tags):
                continue
            allowed = site_states(rule.site_state)
            if allowed is not None and state not in allowed:
                continue
            top = max((_level(rule, dev, v) for _, v in series), default=Level.NONE)
            if top is not Level.NONE:
                yield dev, point, rule.id, top


@pytest.mark.parametrize("name", [*FAST, "province-day"])
def test_default_packs_raise_only_what_the_ground_truth_expects(name: str) -> None:
    sc = _scenario(name)
    truth = sc.truth
    for dev, point, rule_id, top in _predicted(sc, _readings(name)):
        alert = {
            "enterprise": dev.enterprise,
            "device": dev.device,
            "point": point,
            "rule_id": rule_id,
            "key": f"{dev.key}/{point}/{rule_id}",
        }
        assert not any(q.match.matches(alert) for q in truth.quiet), f"{alert['key']} is quiet"
        limits = [e.max_level for e in truth.alerts if e.match.matches(alert)]
        limits += [a.max_level for a in truth.allow if a.match.matches(alert)]
        assert limits, f"{alert['key']} reaches {top.word} but is not in the ground truth"
        assert top <= max(limits), f"{alert['key']} reaches {top.word}, above {max(limits).word}"


@pytest.mark.parametrize("name", [*FAST, "province-day"])
def test_expected_threshold_alerts_are_reached_by_the_packs(name: str) -> None:
    sc = _scenario(name)
    predicted = {
        (d.enterprise, d.device, p, rule): top
        for d, p, rule, top in _predicted(sc, _readings(name))
    }
    threshold_ids = {r.id for r in _threshold_rules()}
    for e in sc.truth.alerts:
        m = e.match
        if m.rule not in threshold_ids or m.device is None or m.point is None:
            continue
        top = predicted.get((m.enterprise, m.device, m.point, m.rule), Level.NONE)
        assert top >= e.level, f"{m.describe()}: the pack reaches only {top.word or 'nothing'}"


def test_namespace_prefixes_every_enterprise() -> None:
    sc = load_scenario("province-day", namespace="r1a2b3")
    assert all(e.startswith("r1a2b3-") for e in sc.fleet.enterprises)
    assert all(e.match.enterprise.startswith("r1a2b3-") for e in sc.truth.alerts)
    assert all(d.enterprise.startswith("r1a2b3-") for d in sc.truth.deadletters)


def test_speed_limits_follow_the_clock_rules() -> None:
    assert _scenario("sensor-silent").max_speed == 1.0  # wall-clock expectations
    assert _scenario("tailings-rise").max_speed is None  # no clock-judged rules
    limit = _scenario("coal-methane").max_speed
    assert limit is not None and 3 < limit < 4  # 420 s with at most 300 s of lead
    dust = _scenario("dust-fire").max_speed  # spark windows expire on the clock tick
    assert dust is not None and dust < 1.3
