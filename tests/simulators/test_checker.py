"""The checker's pure parts: reading the SSE stream, placing a transition on the scenario's
timeline and measuring its latency from the publish of its deciding reading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from yujing.simulators.api import SseEvent, _parse_sse
from yujing.simulators.checker import _Run, event_start_ms
from yujing.simulators.scenario import load_scenario
from yujing.simulators.wire import Message

START_MS = 1_763_856_000_000


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def test_sse_events_are_parsed() -> None:
    stream = (
        ": heartbeat\n\n"
        'id: 41\nevent: raised\ndata: {"seq": 41, "transition": "raised",\n'
        'data:  "alert": {"key": "k"}}\n\n'
        "event: resync\ndata: not json\n\n"
        'id: 42\nevent: resolved\ndata: {"seq": 42}\n\n'
    )
    events = [ev async for ev in _parse_sse(_lines(stream))]
    assert [(e.id, e.event) for e in events] == [
        ("41", "raised"),
        ("", "resync"),
        ("42", "resolved"),
    ]
    assert events[1].data == {}
    assert events[0].data == {"seq": 41, "transition": "raised", "alert": {"key": "k"}}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_a_transition_is_placed_at_its_deciding_reading() -> None:
    sc = load_scenario("coal-methane")
    run = _Run(sc, 1.0, START_MS, START_MS / 1000)
    ts = START_MS + 115_801
    msg = Message(
        115_801,
        "yj/shanxi-coal-01/gd-1201-cf1/telemetry",
        b"{}",
        "shanxi-coal-01",
        "gd-1201-cf1",
        (ts,),
    )
    run.on_sent(msg, START_MS / 1000 + 115.802)
    alert = {"enterprise": "shanxi-coal-01", "device": "gd-1201-cf1", "key": "x", "level": "red"}
    ev = SseEvent(
        "7",
        "escalated",
        {"seq": 7, "transition": "escalated", "at": _iso(ts), "alert": alert},
        START_MS / 1000 + 116.252,
    )
    observed = run.observe(ev)
    assert observed is not None
    assert abs(observed.offset_s - 115.801) < 1e-6
    assert observed.latency_s is not None and abs(observed.latency_s - 0.45) < 1e-6


def test_a_clock_decided_transition_is_placed_by_arrival() -> None:
    sc = load_scenario("sensor-silent")
    run = _Run(sc, 1.0, START_MS, START_MS / 1000)
    alert = {"enterprise": "pingdingshan-coal-04", "device": "gd-1408-hf", "key": "x"}
    at = _iso(START_MS + 195_000)  # the engine's clock, matching no reading
    ev = SseEvent(
        "3",
        "raised",
        {"seq": 3, "transition": "raised", "at": at, "alert": alert},
        START_MS / 1000 + 195.3,
    )
    observed = run.observe(ev)
    assert observed is not None and observed.latency_s is None
    assert abs(observed.offset_s - 195.3) < 1e-6


def test_other_enterprises_are_ignored() -> None:
    run = _Run(load_scenario("coal-methane"), 1.0, START_MS, START_MS / 1000)
    ev = SseEvent("1", "raised", {"alert": {"enterprise": "someone-else"}}, 0.0)
    assert run.observe(ev) is None


def test_event_time_never_runs_too_far_ahead() -> None:
    now = START_MS
    assert event_start_ms(now, 420, 1.0, clock_bound=True) == now
    # without critical devices: starts in the past, ends at the wall clock
    start = event_start_ms(now, 3600, 60.0, clock_bound=False)
    assert start + 3_600_000 == now + 60_000
    # with them: 30 s behind at the start, at most 270 s ahead at the end
    sc = load_scenario("coal-methane")
    assert sc.max_speed is not None
    start = event_start_ms(now, sc.duration_s, sc.max_speed, clock_bound=True)
    end_lead = start + sc.duration_s * 1000 - (now + sc.duration_s * 1000 / sc.max_speed)
    assert start == now - 30_000 and end_lead <= 270_000 + 1
