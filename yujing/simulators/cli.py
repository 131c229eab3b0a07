"""`yujing simulate`: the demo fleet, a scenario (published, dumped or checked), or load."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from yujing.simulators.api import ApiError, YujingApi
from yujing.simulators.checker import CheckError, check_scenario, event_start_ms
from yujing.simulators.demo import demo_devices, run_demo
from yujing.simulators.fleet import DeviceRegistration, Site
from yujing.simulators.load import load_devices, run_load
from yujing.simulators.publisher import Publisher, parse_mqtt_url
from yujing.simulators.scenario import Scenario, load_scenario

DEFAULT_MQTT = "mqtt://127.0.0.1:1883"


def simulate(
    mqtt_url: Annotated[
        str, typer.Option(envvar="YJ_MQTT_URL", help="mqtt://host:port")
    ] = DEFAULT_MQTT,
    api_url: Annotated[
        str, typer.Option(envvar="YJ_API_URL", help="yujing's HTTP API")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str, typer.Option(envvar="YJ_TOKEN", help="bearer token (admin to register)")
    ] = "",
    scenario: Annotated[
        str | None, typer.Option(help="scenario YAML file, or a built-in name")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="run the scenario and judge yujing against its ground truth")
    ] = False,
    register: Annotated[
        bool, typer.Option(help="PUT every device (and site state) through the API first")
    ] = False,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall-clock second")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="override the fleet's seed")] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="prefix for enterprise ids; --check picks one per run unless given ('' for none)"
        ),
    ] = None,
    dump: Annotated[
        Path | None,
        typer.Option(help="write the scenario's messages as JSON lines instead of publishing"),
    ] = None,
    load: Annotated[bool, typer.Option(help="load mode: steady publishing for benchmarks")] = False,
    devices: Annotated[int, typer.Option(help="load mode: number of devices")] = 1000,
    rate: Annotated[float, typer.Option(help="load mode: messages per second in total")] = 1000.0,
    duration: Annotated[float, typer.Option(help="load mode: seconds")] = 60.0,
    processes: Annotated[int, typer.Option(help="load mode: publisher processes")] = 1,
) -> None:
    """Simulate devices: the demo fleet by default, a scenario with --scenario, load with --load."""
    if speed <= 0:
        raise typer.BadParameter("--speed must be positive")
    if load:
        _load(mqtt_url, api_url, token, register, devices, rate, duration, processes, seed)
    elif scenario is not None:
        ns = namespace if namespace is not None else (f"r{secrets.token_hex(3)}" if check else "")
        sc = load_scenario(scenario, namespace=ns, seed=seed)
        if dump is not None:
            _dump(sc, dump, speed)
        elif check:
            _check(sc, mqtt_url, api_url, token, speed)
        else:
            _publish(sc, mqtt_url, api_url, token, register, speed)
    else:
        if register:
            _register(api_url, token, demo_devices(), [])
        host, port = parse_mqtt_url(mqtt_url)
        asyncio.run(
            _until_interrupted(lambda stop: run_demo(host, port, stop, speed=speed, say=_say))
        )


def _say(line: str) -> None:
    print(line, flush=True)


def _register(api_url: str, token: str, devs: list[DeviceRegistration], sites: list[Site]) -> None:
    async def run() -> int:
        api = YujingApi(api_url, token)
        try:
            n = await api.register(devs)
            await api.set_site_states(sites)
            return n
        finally:
            await api.close()

    try:
        _say(f"registered {asyncio.run(run())} devices at {api_url}")
    except (ApiError, httpx.HTTPError) as exc:
        _say(f"error: could not register at {api_url}: {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None


async def _until_interrupted(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await body(stop)


def _check(sc: Scenario, mqtt_url: str, api_url: str, token: str, speed: float) -> None:
    _say(
        f"checking {sc.name} ({len(sc.fleet.devices)} devices, {sc.duration_s:g} s at {speed:g}x, "
        f"enterprises {', '.join(sc.fleet.enterprises)})"
    )
    try:
        report = asyncio.run(check_scenario(sc, mqtt_url, api_url, token, speed=speed, say=_say))
    except (CheckError, ApiError, httpx.HTTPError) as exc:
        _say(f"error: {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    _say(report.render())
    raise typer.Exit(0 if report.ok else 1)


def _publish(
    sc: Scenario, mqtt_url: str, api_url: str, token: str, register: bool, speed: float
) -> None:
    if sc.max_speed is not None and speed > sc.max_speed:
        _say(f"note: {sc.name} has wall-clock expectations; at {speed:g}x they will not hold")
    if register:
        halted = [s for s in sc.fleet.sites if s.state != "operating"]
        _register(api_url, token, list(sc.fleet.devices), halted)
    host, port = parse_mqtt_url(mqtt_url)
    start = event_start_ms(
        int(time.time() * 1000), sc.duration_s, speed, clock_bound=sc.clock_bound
    )

    async def body(stop: asyncio.Event) -> None:
        stats = await Publisher(host, port, say=_say).run(sc.timeline(start), stop, speed=speed)
        _say(f"published {stats.published} messages in {stats.finished - stats.started:.1f} s")

    asyncio.run(_until_interrupted(body))


def _dump(sc: Scenario, path: Path, speed: float) -> None:
    """JSON lines: when to publish (ms), topic, payload (text, or base64 when not UTF-8)."""
    start = event_start_ms(
        int(time.time() * 1000), sc.duration_s, speed, clock_bound=sc.clock_bound
    )
    with contextlib.ExitStack() as stack:
        out = (
            sys.stdout
            if str(path) == "-"
            else stack.enter_context(path.open("w", encoding="utf-8"))
        )
        for msg in sc.timeline(start):
            line: dict[str, object] = {"at_ms": msg.at_ms, "topic": msg.topic}
            try:
                line["payload"] = msg.payload.decode("utf-8")
            except UnicodeDecodeError:
                line["payload_b64"] = base64.b64encode(msg.payload).decode()
            if msg.reason:
                line["expect_dead_letter"] = msg.reason
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _load(
    mqtt_url: str,
    api_url: str,
    token: str,
    register: bool,
    devices: int,
    rate: float,
    duration: float,
    processes: int,
    seed: int | None,
) -> None:
    if register:
        _register(api_url, token, load_devices(devices), [])
    result = run_load(
        mqtt_url,
        devices=devices,
        rate=rate,
        duration_s=duration,
        processes=processes,
        seed=seed or 1,
    )
    _say(result.render())
    if result.errors or result.acked < result.published:
        raise typer.Exit(1)
