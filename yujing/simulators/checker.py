"""Running a scenario against a live yujing and judging what it reports.

Registers the fleet, sets site states, listens to the SSE stream, publishes the scenario at
its pace, waits for the last transitions to arrive, then reads the dead letters and judges
everything against the ground truth (`report.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from yujing.simulators.api import SseEvent, YujingApi, sse_events
from yujing.simulators.picture import judge_map, judge_picture, judge_statistics
from yujing.simulators.publisher import Publisher, parse_mqtt_url
from yujing.simulators.report import Observed, Report, judge_alerts, judge_deadletters
from yujing.simulators.scenario import Scenario
from yujing.simulators.wire import Message

Say = Callable[[str], None]
CRITICAL_LAG_MS = 30_000


class CheckError(RuntimeError):
    pass


@dataclass
class _Run:
    """What the checker remembers while a scenario runs."""

    scenario: Scenario
    speed: float
    start_ms: int  # event time of simulated t = 0
    wall0: float  # epoch seconds at simulated t = 0
    sent: dict[tuple[str, str], list[tuple[int, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (enterprise, device) -> [(event ts, publish wall time)], ts ascending per message
    events: list[SseEvent] = field(default_factory=list)
    published: int = 0
    # For the picture: when each device last said something yujing takes as a report
    # (accepted readings or events, an `online` status), and who said offline or fault.
    last_report: dict[tuple[str, str], float] = field(default_factory=dict)
    said_status: set[tuple[str, str]] = field(default_factory=set)

    def on_sent(self, msg: Message, wall: float) -> None:
        self.published += 1
        who = (msg.enterprise, msg.device)
        if msg.reason is None:
            online = msg.note != "status" or json.loads(msg.payload).get("state") == "online"
            if online:
                self.last_report[who] = wall
            else:
                self.said_status.add(who)
        if msg.reason is None and msg.note != "status":
            log = self.sent[(msg.enterprise, msg.device)]
            for ts in msg.ts:
                log.append((ts, wall))

    def observe(self, ev: SseEvent) -> Observed | None:
        alert = ev.data.get("alert")
        if not isinstance(alert, dict):
            return None
        enterprises = self.scenario.fleet.enterprises
        if alert.get("enterprise") not in enterprises:
            return None
        at_ms = _epoch_ms(ev.data.get("at")) or _epoch_ms(alert.get("changed_at"))
        publish = self._publish_of(alert, at_ms, ev.received)
        if at_ms is not None and publish is not None:
            offset = (at_ms - self.start_ms) / 1000.0
        else:  # decided by a clock (absent), or `at` unknown: judge by arrival
            offset = (ev.received - self.wall0) * self.speed
        latency = None if publish is None else ev.received - publish
        return Observed(
            int(ev.data.get("seq") or ev.id or 0),
            str(ev.data.get("transition") or ev.event),
            alert,
            offset,
            latency,
        )

    def _publish_of(
        self, alert: dict[str, Any], at_ms: int | None, received: float
    ) -> float | None:
        """Publish time of the reading that decided a transition: the one whose event time is
        the transition's; for group alerts, the latest reading of the enterprise before it."""
        if at_ms is None:
            return None
        device = alert.get("device")
        if device:
            log = self.sent.get((str(alert["enterprise"]), str(device)), [])
            for ts, wall in log[-2000:]:
                if ts == at_ms:
                    return wall
            return None
        walls = [
            w
            for (ent, _), log in self.sent.items()
            if ent == alert["enterprise"]
            for ts, w in log[-2000:]
            if ts <= at_ms and w <= received
        ]
        return max(walls) if walls else None


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value:
        try:
            return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def event_start_ms(now_ms: int, duration_s: float, speed: float, *, clock_bound: bool) -> int:
    """Event time of t = 0 for a run starting now at `speed`.

    At 1x event time is the wall clock. Faster, event time runs ahead of the wall clock, and
    two rules bound it: ingest rejects readings more than 5 minutes in the future, and the
    `absent` rules of critical devices compare the wall clock with the last reading's event
    time (and event windows expire on the clock tick). Without such rules the run starts in
    the past and ends now; with them it starts 30 s in the past and may end at most 270 s
    ahead (`Scenario.max_speed`).
    """
    if speed == 1.0:
        return now_ms
    if clock_bound:
        return now_ms - CRITICAL_LAG_MS
    return now_ms - round(duration_s * 1000 * (1 - 1 / speed))


async def check_scenario(
    scenario: Scenario,
    mqtt_url: str,
    api_url: str,
    token: str,
    *,
    speed: float = 1.0,
    say: Say = print,
    progress_every_s: float = 10.0,
    cleanup: bool = True,
) -> Report:
    """Run the scenario against a live yujing and judge it. With `cleanup`, the scenario's
    devices are deleted afterwards, so they do not go silent on the board (offline alerts)."""
    if scenario.max_speed is not None and speed > scenario.max_speed:
        raise CheckError(
            f"scenario {scenario.name} runs at most at {scenario.max_speed:.2f}x: "
            f"{scenario.speed_limit_reason}"
        )
    api = YujingApi(api_url, token)
    try:
        return await _check(scenario, mqtt_url, api, speed, say, progress_every_s)
    finally:
        try:
            if cleanup:
                n = await api.unregister(scenario.fleet.devices)
                say(f"cleaned up: deleted the scenario's {n} devices")
        finally:
            await api.close()


async def _check(
    scenario: Scenario,
    mqtt_url: str,
    api: YujingApi,
    speed: float,
    say: Say,
    progress_every_s: float,
) -> Report:
    await api.register_enterprises(scenario.fleet.registrations)
    n = await api.register(scenario.fleet.devices)
    changed = [s for s in scenario.fleet.sites if s.state != "operating"]
    await api.set_site_states(changed)
    say(f"registered {n} devices; {len(changed)} sites set halted/closed")
    since = datetime.now(UTC).isoformat()
    ready = asyncio.Event()
    run = _Run(scenario, speed, 0, 0.0)
    listener = asyncio.create_task(_listen(api, run, ready, say))
    try:
        await asyncio.wait_for(ready.wait(), timeout=30)
        run.wall0 = time.time() + 0.5
        run.start_ms = event_start_ms(
            int(run.wall0 * 1000), scenario.duration_s, speed, clock_bound=scenario.clock_bound
        )
        t0 = time.monotonic() + 0.5
        host, port = parse_mqtt_url(mqtt_url)
        publisher = Publisher(host, port, client_id=f"yj-check-{secrets.token_hex(4)}", say=say)
        stop = asyncio.Event()
        progress = asyncio.create_task(_progress(run, scenario, say, progress_every_s))
        try:
            stats = await publisher.run(
                scenario.timeline(run.start_ms), stop, speed=speed, on_sent=run.on_sent, t0=t0
            )
        finally:
            progress.cancel()
        await _settle(run, scenario)
        letters = await _run_letters(api, since, scenario)
        picture = await _check_picture(api, run, scenario)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    report = Report(
        scenario.name, published=stats.published, speed=speed, wall_s=stats.finished - stats.started
    )
    observed = [o for o in map(run.observe, run.events) if o is not None]
    report.transitions = len(observed)
    judge_alerts(report, scenario.truth, observed)
    judge_deadletters(report, scenario.truth, letters)
    report.picture = picture
    resyncs = sum(1 for ev in run.events if ev.event == "resync")
    if resyncs:
        report.notes.append(
            f"the SSE stream asked to resync {resyncs} times: transitions "
            "may be missing, so misses may be the checker's, not yujing's"
        )
    if stats.reconnects:
        report.notes.append(f"the MQTT connection dropped {stats.reconnects} times")
    return report


async def _check_picture(api: YujingApi, run: _Run, scenario: Scenario) -> list[str]:
    """The overview against the ground truth; asked up to three times a second apart, since a
    transition may be on its way while the overview is read."""
    if not scenario.fleet.registrations:
        return []
    errors: list[str] = []
    for attempt in range(3):
        if attempt:
            await asyncio.sleep(1.0)
        items = await api.overview(scenario.fleet.enterprises)
        now = time.time()
        observed = [o for o in map(run.observe, run.events) if o is not None]
        errors = judge_picture(
            scenario.fleet, items, observed, run.last_report, run.said_status, now
        )
        errors += judge_map(scenario.fleet, await api.map_features(), items)
        for reg in scenario.fleet.registrations:
            groups = await api.alarm_groups(reg.enterprise)
            errors += judge_statistics(reg.enterprise, reg.division, groups, observed)
        if not errors:
            return []
    return errors


async def _listen(api: YujingApi, run: _Run, ready: asyncio.Event, say: Say) -> None:
    async for ev in sse_events(api, ready=ready, say=say):
        run.events.append(ev)


async def _settle(run: _Run, scenario: Scenario) -> None:
    """Wait for late transitions: until every expected alert is in, then a little longer for
    false ones, at most `settle_s`."""
    deadline = time.monotonic() + scenario.truth.settle_s
    await asyncio.sleep(min(2.0, scenario.truth.settle_s))
    while time.monotonic() < deadline:
        report = Report(scenario.name)
        judge_alerts(report, scenario.truth, [o for o in map(run.observe, run.events) if o])
        if not report.misses:
            return
        await asyncio.sleep(0.5)


async def _run_letters(api: YujingApi, since: str, scenario: Scenario) -> list[dict[str, Any]]:
    ents = set(scenario.fleet.enterprises)
    out = []
    for dl in await api.deadletters(since):
        topic = str(dl.get("topic", "")).split("/")
        if dl.get("enterprise") in ents or (len(topic) > 1 and topic[1] in ents):
            out.append(dl)
    return out


async def _progress(run: _Run, scenario: Scenario, say: Say, every_s: float) -> None:
    """A line now and then on long runs: about twenty in all, at most one each `every_s`."""
    wall_s = scenario.duration_s / run.speed
    if wall_s < 3 * every_s:
        return
    ents = set(scenario.fleet.enterprises)
    while True:
        await asyncio.sleep(max(every_s, wall_s / 20))
        sim = (time.time() - run.wall0) * run.speed
        mine = sum(1 for ev in run.events if (ev.data.get("alert") or {}).get("enterprise") in ents)
        say(
            f"  … {sim:,.0f}/{scenario.duration_s:,.0f} s simulated, {run.published:,} published, "
            f"{mine:,} transitions of this run seen"
        )
