"""The checker's picture judgement: the overview row must match the register facts, the
colour the SSE transitions imply, and the online/connected counts the publish log implies."""

from __future__ import annotations

from typing import Any

from yujing.simulators.picture import judge_picture
from yujing.simulators.report import Observed
from yujing.simulators.scenario import load_scenario

NOW = 1_000_000.0


def alert(key: str, level: str, state: str, **marks: bool) -> dict[str, Any]:
    return {"enterprise": "shanxi-coal-01", "key": key, "level": level, "state": state, **marks}


def test_the_overview_is_judged_against_the_ground_truth() -> None:
    fleet = load_scenario("coal-methane").fleet
    [reg] = fleet.registrations
    devices = [d for d in fleet.devices if d.enterprise == reg.enterprise]
    # every device reported 1 s ago except the first, silent for an hour
    last = {(d.enterprise, d.device): NOW - 1 for d in devices[1:]}
    last[(devices[0].enterprise, devices[0].device)] = NOW - 3600
    observed = [
        Observed(1, "raised", alert("k1", "red", "active"), 0, None),
        Observed(2, "resolved", alert("k1", "red", "resolved"), 0, None),
        Observed(3, "raised", alert("k2", "orange", "active"), 0, None),
        Observed(4, "raised", alert("k3", "red", "active", suppressed=True), 0, None),
        Observed(5, "raised", alert("k4", "red", "active", health=True), 0, None),
    ]
    row = {
        "enterprise": reg.enterprise, "division": "141102", "sectors": ["coal_mine"],
        "state": "operating", "devices": len(devices), "colour": "orange",
        "connected": len(devices), "online": len(devices) - 1,
    }  # fmt: skip
    assert judge_picture(fleet, [row], observed, last, set(), NOW) == []
    wrong = {**row, "colour": "red", "online": len(devices), "division": "141100"}
    errors = judge_picture(fleet, [wrong], observed, last, set(), NOW)
    assert len(errors) == 3 and any("colour 'red'" in e for e in errors)
    assert judge_picture(fleet, [], observed, last, set(), NOW) == [
        f"{reg.enterprise}: not in the overview"
    ]


def test_statistics_are_judged_against_the_alerts_seen_raised() -> None:
    from yujing.simulators.picture import judge_statistics

    def seen(seq: int, alert_id: str, level: str, peak: str) -> Observed:
        a = {"enterprise": "e", "id": alert_id, "level": level, "peak_level": peak}
        return Observed(seq, "raised", a, 0, None)

    observed = [seen(1, "a1", "orange", "orange"), seen(2, "a1", "red", "red"),
                seen(3, "a2", "blue", "blue")]  # fmt: skip
    group = {"division": "141102", "level": "red", "raised": 1}
    blue = {**group, "level": "blue"}
    assert judge_statistics("e", "141102", [group, blue], observed) == []
    assert judge_statistics("e", "141102", [group], observed) != []
    assert judge_statistics("e", "141100", [group, blue], observed) != []
