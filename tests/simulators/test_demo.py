"""The demo fleet: its leak passes yellow, orange and red at the promised times."""

from __future__ import annotations

import asyncio
import json

import pytest

from yujing.simulators.consistency import FIXED_START_MS
from yujing.simulators.demo import LEAK_DEVICE, demo_devices, demo_timeline, run_demo


def _ch4_of_leak(duration_s: float) -> list[tuple[float, float]]:
    out = []
    for msg in demo_timeline(FIXED_START_MS, duration_s=duration_s):
        if msg.device == LEAK_DEVICE and msg.topic.endswith("/telemetry"):
            body = json.loads(msg.payload)
            out.append((msg.at_ms / 1000, body["values"]["ch4"]))
    return out


def _first(series: list[tuple[float, float]], at_least: float, after: float = 0) -> float:
    return next(t for t, v in series if t >= after and v >= at_least)


def test_leak_reaches_red_45_to_60_s_after_start_and_repeats_every_10_min() -> None:
    series = _ch4_of_leak(1300)
    assert 45 <= _first(series, 1.5) <= 60
    assert _first(series, 0.8) < _first(series, 1.0) < _first(series, 1.5)
    assert 645 <= _first(series, 1.5, after=600) <= 660
    red = [t for t, v in series if v >= 1.5 and t < 600]
    assert 25 <= red[-1] - red[0] <= 45  # holds about 30 s
    falls = next(t for t, v in series if t > red[-1] and v < 1.0)
    assert falls - red[-1] <= 20
    assert max(v for t, v in series if 200 < t < 600) < 0.8


def test_demo_devices_use_the_vocabulary() -> None:
    devices = demo_devices()
    assert {d.enterprise for d in devices} == {"demo-coal"}
    locations = {d.tags["location"] for d in devices}
    assert {
        "coal_face",
        "heading_face",
        "return_airway",
        "upper_corner",
        "intake_airway",
    } <= locations
    for d in devices:
        rec = d.record()
        assert rec["kind"] == "gas_detector" and rec["tags"]["critical"] == "true"
        assert rec["points"]["ch4"] == {"unit": "%CH4", "interval_s": 5}
    assert len({d.site for d in devices}) >= 3


@pytest.mark.integration
async def test_run_demo_says_the_red_crossing_and_stops_promptly(
    mqtt_broker: tuple[str, int],
) -> None:
    lines: list[str] = []
    stop = asyncio.Event()

    def say(line: str) -> None:
        lines.append(line)
        if "%CH4 ≥" in line:
            stop.set()

    host, port = mqtt_broker
    # At 20x the crossing at about 55 s comes about 2.8 s in.
    await asyncio.wait_for(run_demo(host, port, stop, speed=20, say=say), timeout=15)
    crossing = [x for x in lines if "%CH4 ≥" in x]
    assert len(crossing) == 1
    assert f"demo-coal/{LEAK_DEVICE}" in crossing[0] and "ch4" in crossing[0]
