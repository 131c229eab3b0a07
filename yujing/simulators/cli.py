"""`yujing simulate`: the demo fleet, a scenario (published, dumped or checked), or load."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import aiomqtt
import httpx
import typer

from yujing import endpoints
from yujing.config import Settings
from yujing.simulators.api import ApiError, YujingApi
from yujing.simulators.checker import CheckError, check_scenario, event_start_ms
from yujing.simulators.demo import demo_devices, run_demo
from yujing.simulators.fleet import DeviceRegistration, Site
from yujing.simulators.load import load_devices, run_load
from yujing.simulators.publisher import Publisher, parse_mqtt_url
from yujing.simulators.scenario import Scenario, builtin_scenarios, load_scenario


def simulate(
    mqtt_url: Annotated[
        str | None,
        typer.Option(envvar="YJ_MQTT_URL", help="mqtt://host:port; default: where `yujing up` is"),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(envvar="YJ_API_URL", help="yujing's HTTP API; default: where `yujing up` is"),
    ] = None,
    token: Annotated[
        str,
        typer.Option(
            envvar="YJ_TOKEN", help="bearer token (admin to register); default: YJ_ADMIN_TOKEN"
        ),
    ] = "",
    scenario: Annotated[
        str | None, typer.Option(help="scenario YAML file, or a built-in name (see --list)")
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list", help="list the built-in scenarios and their speed caps")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="run the scenario and judge yujing against its ground truth")
    ] = False,
    register: Annotated[
        bool, typer.Option(help="PUT every device (and site state) through the API first")
    ] = False,
    cleanup: Annotated[
        bool, typer.Option(help="--check: delete the scenario's devices afterwards")
    ] = True,
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
    """Simulate devices: the demo fleet by default, a scenario with --scenario, load with
    --load. The broker, API and token are those of `yujing up` unless given."""
    if speed <= 0:
        raise typer.BadParameter("--speed must be positive")
    if list_scenarios:
        _list()
        return
    settings = Settings()
    found = endpoints.read(settings.data_dir) or endpoints.defaults(settings)
    mqtt_url, api_url = mqtt_url or found.mqtt_url, api_url or found.api_url
    token = token or settings.admin_token
    if load:
        _need_broker(mqtt_url)
        _load(mqtt_url, api_url, token, register, devices, rate, duration, processes, seed)
    elif scenario is not None:
        ns = namespace if namespace is not None else (f"r{secrets.token_hex(3)}" if check else "")
        try:
            sc = load_scenario(scenario, namespace=ns, seed=seed)
        except FileNotFoundError as exc:
            _say(f"error: {exc}; `yujing simulate --list` shows the built-in ones")
            raise typer.Exit(2) from None
        if dump is not None:
            _dump(sc, dump, speed)
            return
        if check and sc.max_speed is not None and speed > sc.max_speed:
            _say(
                f"error: scenario {sc.name} runs at most at {sc.max_speed:.2f}x:"
                f" {sc.speed_limit_reason}"
            )
            raise typer.Exit(2)
        _need_broker(mqtt_url)
        if check:
            _check(sc, mqtt_url, api_url, token, speed, cleanup)
        else:
            _publish(sc, mqtt_url, api_url, token, register, speed)
    else:
        _need_broker(mqtt_url)
        if register:
            _register(api_url, token, demo_devices(), [])
        host, port = parse_mqtt_url(mqtt_url)
        asyncio.run(
            _until_interrupted(lambda stop: run_demo(host, port, stop, speed=speed, say=_say))
        )


def _list() -> None:
    for path in builtin_scenarios():
        sc = load_scenario(path)
        cap = f"at most {sc.max_speed:g}x" if sc.max_speed is not None else "any speed"
        first = sc.description.split(". ")[0].strip().rstrip(".")
        _say(f"{sc.name:<20} {sc.duration_s:>7g} s  {cap:<16} {first}")


def _need_broker(mqtt_url: str) -> None:
    """Stop at once, naming the URL, when nothing listens there (rather than publishing
    into the void for the whole run)."""

    async def connect(host: str, port: int) -> None:
        async with aiomqtt.Client(host, port, identifier=f"yujing-simulate-probe-{os.getpid()}",
                                  timeout=3):  # fmt: skip
            pass

    try:
        asyncio.run(connect(*parse_mqtt_url(mqtt_url)))
    except (aiomqtt.MqttError, OSError, ValueError, TimeoutError) as exc:
        _say(
            f"error: no MQTT broker at {mqtt_url} ({exc}); is `yujing up` running?"
            " Give the broker with --mqtt-url or YJ_MQTT_URL"
        )
        raise typer.Exit(2) from None


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
        _say(f"error: could not register at the API {api_url}: {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None


async def _until_interrupted(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await body(stop)


def _check(
    sc: Scenario, mqtt_url: str, api_url: str, token: str, speed: float, cleanup: bool
) -> None:
    _say(
        f"checking {sc.name} ({len(sc.fleet.devices)} devices, {sc.duration_s:g} s at {speed:g}x, "
        f"enterprises {', '.join(sc.fleet.enterprises)}; API {api_url}, broker {mqtt_url})"
    )
    try:
        report = asyncio.run(
            check_scenario(sc, mqtt_url, api_url, token, speed=speed, say=_say, cleanup=cleanup)
        )
    except CheckError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    except (ApiError, httpx.HTTPError) as exc:
        _say(f"error: the API at {api_url}: {type(exc).__name__}: {exc}")
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
