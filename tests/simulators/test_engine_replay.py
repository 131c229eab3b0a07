"""Each scenario replayed through the real rule engine with the default packs (no broker,
no database: ingest's validation, then `Engine`, ticked by the simulated clock) must meet
its own ground truth: the windows, levels and rule ids in the YAML are what yujing's
engine really decides."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.config import Settings
from yujing.ingest.batch import DeviceInfo, Event, ReadingBatch, Status
from yujing.ingest.payloads import decode_event, decode_status, decode_telemetry, parse_topic
from yujing.levels import Level
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.transition import Transition
from yujing.simulators.consistency import FIXED_START_MS
from yujing.simulators.report import Observed, Report, judge_alerts
from yujing.simulators.scenario import Scenario, builtin_scenarios, load_scenario

SKEW_MS = round(Settings().max_future_skew_s * 1000)


def _info(sc: Scenario, enterprise: str, device: str) -> DeviceInfo:
    d = sc.fleet.device(enterprise, device)
    units = {p: str(spec["unit"]) for p, spec in d.points.items()}
    intervals = {p: float(spec["interval_s"]) for p, spec in d.points.items()}
    return DeviceInfo(
        d.enterprise, d.device, d.kind, d.site, dict(d.tags), units, intervals=intervals
    )


def _observed(t: Transition, start_ms: int) -> Observed:
    if t.from_level == 0:
        transition = "raised"
    elif t.to_level == 0:
        transition = "resolved"
    else:
        transition = "escalated" if t.to_level > t.from_level else "deescalated"
    level = Level(t.to_level).word if t.to_level else Level(t.from_level).word
    alert = {
        "key": t.key,
        "enterprise": t.enterprise,
        "device": t.device,
        "point": t.point,
        "rule_id": t.rule_id,
        "level": level,
    }
    return Observed(0, transition, alert, (t.ts - start_ms) / 1000, None)


def replay(sc: Scenario, tick_ms: int = 1000) -> list[Transition]:
    engine = Engine([(r, 1) for r in default_rules()])
    for site in sc.fleet.sites:
        engine.set_site_state(site.enterprise, site.site, site.state)
    out: list[Transition] = []
    next_tick = tick_ms
    for msg in sc.timeline(FIXED_START_MS):
        while next_tick <= msg.at_ms:
            out += engine.on_tick(FIXED_START_MS + next_tick)
            next_tick += tick_ms
        if msg.reason is not None or msg.note == "duplicate":
            continue  # dead-lettered, or dropped by ingest's seq check
        now = FIXED_START_MS + msg.at_ms
        topic = parse_topic(msg.topic)
        info = _info(sc, topic.enterprise, topic.device)
        if topic.kind == "telemetry":
            rows = decode_telemetry(msg.payload, now, SKEW_MS)
            batch = ReadingBatch(
                [info],
                rows.points,
                np.zeros(len(rows.ts), np.int32),
                rows.point,
                rows.ts,
                rows.value,
                rows.quality,
                now,
            )
            out += engine.on_batch(batch)
        elif topic.kind == "event":
            ts, etype, count, seq, attrs = decode_event(msg.payload, now, SKEW_MS)
            out += engine.on_events([Event(info, ts, etype, count, seq, attrs)])
        else:
            ts, state, detail = decode_status(msg.payload, now, SKEW_MS)
            out += engine.on_status([Status(info, ts, state, detail)])
    return out


def _judge(name: str, tick_ms: int = 1000) -> Report:
    sc = load_scenario(name)
    report = Report(name)
    observed = [_observed(t, FIXED_START_MS) for t in replay(sc, tick_ms)]
    judge_alerts(report, sc.truth, observed)
    return report


FAST = [p.stem for p in builtin_scenarios() if p.stem != "province-day"]


@pytest.mark.parametrize("name", FAST)
def test_engine_meets_the_ground_truth(name: str) -> None:
    report = _judge(name)
    assert report.ok, report.render()


def test_engine_meets_the_province_day() -> None:
    report = _judge("province-day", tick_ms=5000)
    assert report.ok, report.render()
