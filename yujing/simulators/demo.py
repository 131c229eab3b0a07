"""The demo fleet `yujing up` runs: a small coal mine's gas detectors in real time, with a
methane leak at a coal face every ten minutes that passes yellow, orange and red."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from yujing.simulators.fleet import DeviceRegistration, Fleet, parse_fleet
from yujing.simulators.incidents import compile_plan
from yujing.simulators.publisher import Publisher
from yujing.simulators.timeline import Timeline
from yujing.simulators.wire import Message

DEMO_SEED = 2024
LEAK_DEVICE = "gd-1101-cf"
RED_CH4 = 1.5
LEAK_EVERY_S = 600
INTERVAL_S = 5

_GAS = {"kind": "gas_detector", "interval_s": INTERVAL_S, "tags": {"sector": "coal"}}

DEMO_FLEET = {
    "seed": DEMO_SEED,
    "enterprises": [
        {
            "id": "demo-coal",
            "sites": [
                {
                    "id": "face-1101",
                    "devices": [
                        {
                            **_GAS,
                            "ids": ["gd-1101-cf"],
                            "points": ["ch4", "co", "o2"],
                            "vary": {"location": ["coal_face"]},
                        },
                        {
                            **_GAS,
                            "ids": ["gd-1101-uc"],
                            "points": ["ch4"],
                            "vary": {"location": ["upper_corner"]},
                        },
                        {
                            **_GAS,
                            "ids": ["gd-1101-ra"],
                            "points": ["ch4", "co"],
                            "vary": {"location": ["return_airway"]},
                        },
                    ],
                },
                {
                    "id": "heading-2203",
                    "devices": [
                        {
                            **_GAS,
                            "ids": ["gd-2203-hf"],
                            "points": ["ch4", "co", "o2"],
                            "vary": {"location": ["heading_face"]},
                        },
                        {
                            **_GAS,
                            "ids": ["gd-2203-ra"],
                            "points": ["ch4"],
                            "vary": {"location": ["return_airway"]},
                        },
                    ],
                },
                {
                    "id": "main-roadway",
                    "devices": [
                        {
                            **_GAS,
                            "ids": ["gd-main-ia"],
                            "points": ["ch4", "o2"],
                            "vary": {"location": ["intake_airway"]},
                        },
                    ],
                },
            ],
        }
    ],
}

# Crosses 0.8 about 32 s, 1.0 about 41 s and 1.5 about 54 s after each start; holds near
# 1.8 for 30 s, falls below 1.0 at about 100 s and is back to normal by about 140 s.
DEMO_LEAK = {
    "type": "methane_leak",
    "device": LEAK_DEVICE,
    "at": 10,
    "ramp_s": 40,
    "ramp_to": 1.2,
    "spike_s": 8,
    "peak": 1.8,
    "hold_s": 30,
    "every_s": LEAK_EVERY_S,
}


def demo_fleet() -> Fleet:
    return parse_fleet(DEMO_FLEET)


def demo_devices() -> list[DeviceRegistration]:
    return list(demo_fleet().devices)


def demo_timeline(
    start_ms: int, *, speed: float = 1.0, duration_s: float | None = None
) -> Timeline:
    """The demo's endless message stream; event time runs with the wall clock (`speed` 1)."""
    fleet = demo_fleet()
    plan = compile_plan(fleet, [DEMO_LEAK])
    duration_ms = None if duration_s is None else round(duration_s * 1000)
    # The demo's daily cycles follow China's clock of the moment it starts.
    local_start = (start_ms + 8 * 3_600_000) % 86_400_000
    return Timeline(
        fleet,
        plan,
        start_ms=start_ms,
        duration_ms=duration_ms,
        ts_scale=1.0 / speed,
        local_start_ms=local_start,
    )


class _RedWatch:
    """Says one line when the leak's reading first reaches red, each time the leak comes."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.above = False

    def __call__(self, msg: Message, wall: float) -> None:
        if msg.device != LEAK_DEVICE or msg.note not in ("", "clock_skew"):
            return
        ch4 = dict(msg.values).get("ch4")
        if ch4 is None:
            return
        if ch4 >= RED_CH4 and not self.above:
            when = datetime.fromtimestamp(msg.ts[0] / 1000, UTC).astimezone()
            self.say(
                f"{when:%H:%M:%S} methane leak: demo-coal/{LEAK_DEVICE} ch4 {ch4:.2f} %CH4 "
                f"≥ {RED_CH4} — the red alert should be on the board within 2 s"
            )
        self.above = ch4 >= RED_CH4


async def run_demo(
    mqtt_host: str,
    mqtt_port: int,
    stop: asyncio.Event,
    *,
    speed: float = 1.0,
    say: Callable[[str], None] = print,
) -> None:
    """Publish the demo fleet until `stop` is set; reconnects if the broker goes away."""
    timeline = demo_timeline(int(time.time() * 1000), speed=speed)
    say(
        f"demo: {len(timeline.devices)} gas detectors of demo-coal reporting every "
        f"{INTERVAL_S / speed:g} s; a methane leak at {LEAK_DEVICE} reaches red about "
        f"{54 / speed:.0f} s from now and every {LEAK_EVERY_S / speed:.0f} s after"
    )
    publisher = Publisher(mqtt_host, mqtt_port, client_id="yujing-demo-fleet", say=say)
    await publisher.run(timeline, stop, speed=speed, on_sent=_RedWatch(say))
