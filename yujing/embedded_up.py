"""`yujing up`: every stage on one loop, with embedded servers where none is named."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from yujing import endpoints
from yujing.config import Settings
from yujing.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    MosquittoBroker,
    find_mosquitto,
    first_free_port,
)
from yujing.ingest.registry import upsert_device
from yujing.runtime import STAGES, Runtime, mqtt_host_port, open_runtime, run_stages


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    server = await asyncio.to_thread(EmbeddedPostgres, settings.data_dir / "pgdata")
    try:
        print(f"embedded PostgreSQL in {settings.data_dir / 'pgdata'}")
        yield server.get_uri("postgres")
    finally:
        await asyncio.to_thread(server.cleanup)


@contextlib.asynccontextmanager
async def broker(settings: Settings) -> AsyncIterator[str]:
    if settings.mqtt_url:
        yield settings.mqtt_url
        return
    host = "127.0.0.1"
    port = first_free_port(host, settings.mqtt_port)
    # Mosquitto when installed: amqtt takes a third of the messages per second and shares
    # yujing's loop (README, "Ingest end to end"). YJ_EMBEDDED_BROKER=amqtt keeps amqtt.
    exe = find_mosquitto() if settings.embedded_broker != "amqtt" else None
    mqtt: EmbeddedBroker | MosquittoBroker = (
        MosquittoBroker(exe, host, port, settings.data_dir / "mosquitto")
        if exe
        else EmbeddedBroker(host, port)
    )
    await mqtt.start()
    try:
        print(f"embedded MQTT broker ({mqtt.name}) on mqtt://{host}:{port}")
        yield f"mqtt://{host}:{port}"
    finally:
        await mqtt.stop()


async def register_demo_fleet(rt: Runtime) -> None:
    from yujing.simulators.demo import demo_devices

    async with rt.pool.acquire() as conn:
        for d in demo_devices():
            await upsert_device(conn, d.enterprise, d.device, d.record(), "demo")


async def run_up(settings: Settings, stop: asyncio.Event, *, simulate: bool) -> None:
    """Raises `endpoints.DataDirInUse` (before starting anything) when another `yujing up`
    holds the data directory."""
    with endpoints.hold(settings.data_dir):
        await _run_up(settings, stop, simulate=simulate)


async def _run_up(settings: Settings, stop: asyncio.Event, *, simulate: bool) -> None:
    async with (
        database(settings) as db_url,
        broker(settings) as mqtt_url,
        open_runtime(settings, db_url, mqtt_url) as rt,
    ):
        kafka = settings.kafka_bootstrap
        print("bus: " + (f"Kafka at {kafka}" if kafka else "in-process"))
        extra = []
        if simulate:
            from yujing.simulators.demo import run_demo

            await register_demo_fleet(rt)
            host, port = mqtt_host_port(mqtt_url)
            extra.append(run_demo(host, port, stop))
        base = f"http://{settings.http_host}:{settings.http_port}"
        where = endpoints.write(settings.data_dir, base, mqtt_url)
        print(f"endpoints for `yujing simulate`: {where}")
        await run_stages(rt, STAGES, stop, extra)
