"""Judging observations against ground truth: a timeline of pushes and expected windows."""

from __future__ import annotations

from typing import Any

from yujing.simulators.report import Observed, Report, judge_alerts, judge_deadletters, percentile
from yujing.simulators.scenario import parse_scenario

SCENARIO = {
    "name": "t",
    "duration_s": 300,
    "fleet": {
        "seed": 1,
        "enterprises": [
            {
                "id": "e1",
                "sites": [
                    {
                        "id": "s1",
                        "devices": [
                            {
                                "kind": "gas_detector",
                                "ids": ["d1", "d2", "d3"],
                                "tags": {"sector": "coal"},
                                "vary": {"location": ["coal_face"]},
                            }
                        ],
                    }
                ],
            }
        ],
    },
    "expect": {
        "alerts": [
            {
                "device": "d1",
                "point": "ch4",
                "level": "orange",
                "max_level": "red",
                "within": [50, 70],
            },
            {"device": "d1", "point": "ch4", "level": "red", "within": [60, 80]},
        ],
        "allow": [{"device": "d2", "rule": "critical-offline", "max_level": "blue"}],
        "quiet": [{"device": "d3"}],
        "deadletters": [{"reason": "bad_json", "device": "d1", "count": 2}],
    },
}


def _obs(
    seq: int,
    device: str,
    level: str,
    at: float,
    *,
    rule: str = "coal-face-ch4",
    transition: str = "raised",
    latency: float | None = 0.2,
) -> Observed:
    alert: dict[str, Any] = {
        "key": f"e1/{device}/ch4/{rule}",
        "enterprise": "e1",
        "device": device,
        "point": "ch4",
        "rule_id": rule,
        "level": level,
    }
    return Observed(seq, transition, alert, at, latency)


def _judge(observed: list[Observed]) -> Report:
    report = Report("t")
    judge_alerts(report, parse_scenario(SCENARIO).truth, observed)
    return report


def test_hits_in_their_windows_pass() -> None:
    report = _judge(
        [
            _obs(1, "d1", "yellow", 45),
            _obs(2, "d1", "orange", 55, transition="escalated"),
            _obs(3, "d1", "red", 65, transition="escalated", latency=0.5),
            _obs(4, "d2", "blue", 100, rule="critical-offline"),
        ]
    )
    assert report.ok and len(report.hits) == 2
    assert report.latencies == [0.2, 0.5]


def test_late_missing_and_false_alerts_fail() -> None:
    report = _judge(
        [
            _obs(1, "d1", "orange", 75),
            _obs(2, "d3", "yellow", 30),
            _obs(3, "d2", "orange", 40, rule="critical-offline"),
        ]
    )
    assert not report.ok
    whys = sorted(m.why for m in report.misses)
    assert whys == ["never reached (peak orange)", "reached orange late, at 75.0 s"]
    falses = {(f.key, f.why) for f in report.false_alerts}
    assert ("e1/d3/ch4/coal-face-ch4", "must not fire (quiet)") in falses
    assert ("e1/d2/ch4/critical-offline", "above the expected blue") in falses


def test_resolutions_are_not_alerts() -> None:
    report = _judge([_obs(1, "d3", "yellow", 30, transition="resolved")])
    assert not report.false_alerts


def test_dead_letters_by_reason_and_device() -> None:
    truth = parse_scenario(SCENARIO).truth
    ok = Report("t")
    judge_deadletters(ok, truth, [{"reason": "bad_json", "enterprise": "e1", "device": "d1"}] * 2)
    assert ok.ok and ok.deadletters["bad_json"] == 2
    wrong = Report("t")
    judge_deadletters(
        wrong,
        truth,
        [
            {"reason": "bad_json", "enterprise": "e1", "device": "d1"},
            {
                "reason": "bad_topic",
                "enterprise": None,
                "device": None,
                "topic": "yj/e1/d2/metrics",
            },
        ],
    )
    assert wrong.wrong_deadletters == [
        "bad_json from e1/d1: expected 2, got 1",
        "bad_topic from e1/d2: expected 0, got 1",
    ]


def test_percentile_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
