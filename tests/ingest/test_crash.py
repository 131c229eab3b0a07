"""Embedded mode is durable: `yujing up` killed with SIGKILL under load, then restarted on
the same data directory, stores every reading the MQTT broker acknowledged to a device.

Ingest acknowledges a message to the broker only once the bus log has it on disk, so a
message is either with the broker (redelivered to the restarted ingest) or in the log
(replayed to the sink); the broker and PostgreSQL are the test's own and survive the kill.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import asyncpg
import httpx
import pytest

from yujing.ingest.registry import upsert_device
from yujing.testing.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 20
PER_MESSAGE = 100
RECORD = {"kind": "gas_detector", "site": "face-1", "points": {"ch4": {"unit": "%CH4"}}}


class Up:
    """`yujing up --no-simulate` as a child process, on the test's broker and database."""

    def __init__(self, tmp: Path, database_url: str, mqtt: tuple[str, int]) -> None:
        self.port = free_port()
        self.log_path = tmp / "yujing.log"
        self.env = {
            **os.environ, "YJ_DATA_DIR": str(tmp / "var"), "YJ_DATABASE_URL": database_url,
            "YJ_MQTT_URL": f"mqtt://{mqtt[0]}:{mqtt[1]}", "YJ_HTTP_PORT": str(self.port),
            "YJ_ADMIN_TOKEN": "crash-test-token", "YJ_MQTT_CLIENT_ID": f"yj-crash-{self.port}",
            "YJ_LOG_LEVEL": "INFO",
        }  # fmt: skip
        self.env.pop("YJ_KAFKA_BOOTSTRAP", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        yujing = Path(sys.executable).parent / "yujing"
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(yujing), "up", "--no-simulate"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.output()
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("yujing up not ready in 60 s:\n" + self.output())

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-4000:]


@pytest.fixture
def up(tmp_path: Path, database_url: str, mqtt_broker: tuple[str, int]) -> Iterator[Up]:
    server = Up(tmp_path, database_url, mqtt_broker)
    yield server
    server.stop()


async def publish(mqtt: tuple[str, int], acked: list[tuple[str, int]], stop: asyncio.Event) -> None:
    """Gateway-like messages of PER_MESSAGE readings each, 100 in flight; a reading counts
    as acknowledged once the broker's PUBACK for its message is in."""
    t0 = int(time.time() * 1000) - 120_000
    n = 0

    async def one(client: aiomqtt.Client, k: int) -> None:
        device = f"gd-{k % DEVICES}"
        base = t0 + (k // DEVICES) * PER_MESSAGE
        rows = [{"ts": base + i, "values": {"ch4": 0.2}} for i in range(PER_MESSAGE)]
        await client.publish(f"yj/ent1/{device}/telemetry", json.dumps({"batch": rows}), qos=1)
        acked.extend((device, base + i) for i in range(PER_MESSAGE))

    async with aiomqtt.Client(mqtt[0], mqtt[1], identifier=f"crash-pub-{os.getpid()}") as client:
        while not stop.is_set():
            await asyncio.gather(*(one(client, n + i) for i in range(100)))
            n += 100


async def stored(pool: asyncpg.Pool) -> set[tuple[str, int]]:
    rows = await pool.fetch(
        "SELECT s.device, (extract(epoch FROM r.ts) * 1000)::bigint AS ms FROM readings r"
        " JOIN reading_series s ON s.id = r.series"
    )
    return {(r["device"], r["ms"]) for r in rows}


async def test_every_acknowledged_reading_is_stored_after_a_kill_9(
    up: Up, pool: asyncpg.Pool, mqtt_broker: tuple[str, int]
) -> None:
    async with pool.acquire() as conn:
        for i in range(DEVICES):
            await upsert_device(conn, "ent1", f"gd-{i}", RECORD, "test")
    up.start()
    await up.ready()
    acked: list[tuple[str, int]] = []
    stop = asyncio.Event()
    load = asyncio.create_task(publish(mqtt_broker, acked, stop))
    await asyncio.sleep(3)
    async with pool.acquire() as conn, conn.transaction():
        # The database stalls: the sink cannot store, while ingest goes on taking (and
        # acknowledging) what the bus accepts, so that acknowledged readings sit in the
        # bus at the kill. Without the log on disk they would be lost.
        await conn.execute("LOCK TABLE readings IN EXCLUSIVE MODE")
        await asyncio.sleep(1.5)
        at_kill = len(acked)
        up.kill()
    stored_at_kill = len(await stored(pool))
    await asyncio.sleep(0.5)  # the broker goes on acknowledging, for the next ingest
    stop.set()
    await load
    up.start()
    await up.ready()
    want = set(acked)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        have = await stored(pool)
        if want <= have:
            break
        await asyncio.sleep(0.5)
    missing = want - have
    assert at_kill > 1000, "too little load before the kill"
    assert not missing, f"{len(missing)} of {len(want)} acknowledged readings lost"
    assert len(have) == len(want)  # and nothing stored that was not sent
    print(f"{at_kill} readings acknowledged before the kill, {stored_at_kill} stored then, "
          f"{len(want)} in all; "
          + next((ln for ln in up.output().splitlines() if "bus log replayed" in ln), "")
          )  # fmt: skip
