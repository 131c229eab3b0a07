"""Load mode: N coal-mine gas detectors publishing at a steady total rate from P processes.

Each process owns every P-th device and one MQTT connection (QoS 1); it paces itself in
2 ms steps with at most `WINDOW` publishes awaiting their PUBACK, and reports what it
published, what the broker acknowledged and how long acknowledgements took. A target the
broker cannot take shows as an achieved rate below it. The connection is a minimal MQTT
3.1.1 publisher on a plain socket (`_Publisher`: CONNECT, PUBLISH at QoS 1, PUBACK,
DISCONNECT), each step's messages in one write: paho spends about 50 µs a message, so two
paho processes could not offer the 20,000 msg/s that issue 16 asks ingest to take.

Three message shapes (`SHAPES`): `gas`, one reading of each of the four gases; `gateway`,
a gateway's batch of 25 such samples (100 readings a message); `single`, one methane value
(a simple detector). `bench/pipeline.py` steps these against `yujing up`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import random
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from yujing.simulators.fleet import UNITS, DeviceRegistration
from yujing.simulators.publisher import parse_mqtt_url
from yujing.simulators.report import percentile

LOAD_POINTS = ("ch4", "co", "o2", "co2")
LOCATIONS = ("coal_face", "heading_face", "return_airway", "upper_corner", "mixed_return")
STEP_S = 0.002
WINDOW = 1000


# Readings per message of each shape; a gateway's batch holds 25 samples 10 ms apart.
SHAPES = {"gas": 4, "gateway": 100, "single": 1}
GATEWAY_SAMPLES = 25
SAMPLE_MS = 10


def load_devices(
    n: int, *, enterprise: str = "load", interval_s: int = 15, shape: str = "gas"
) -> list[DeviceRegistration]:
    """The load fleet: 100 detectors a site, methane plus CO, O2 and CO2 on each (methane
    alone for the `single` shape, so that no point of theirs is silent)."""
    points = ("ch4",) if shape == "single" else LOAD_POINTS
    return [
        DeviceRegistration(
            enterprise=enterprise,
            device=f"gd-{i:06d}",
            kind="gas_detector",
            site=f"site-{i // 100:04d}",
            tags={"sector": "coal", "location": LOCATIONS[i % len(LOCATIONS)], "critical": "true"},
            points={p: {"unit": UNITS[p], "interval_s": interval_s} for p in points},
        )
        for i in range(n)
    ]


@dataclass
class WorkerResult:
    published: int = 0
    acked: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # a sample of PUBACK round trips


@dataclass
class LoadResult:
    shape: str
    devices: int
    processes: int
    target_rate: float
    duration_s: float
    published: int
    acked: int
    errors: int
    elapsed_s: float
    ack_p50_ms: float | None
    ack_p99_ms: float | None

    @property
    def rate(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s else 0.0

    def render(self) -> str:
        lat = (
            "n/a"
            if self.ack_p50_ms is None
            else f"p50 {self.ack_p50_ms:.1f} ms, p99 {self.ack_p99_ms:.1f} ms"
        )
        return (
            f"load: {self.devices} devices, {self.processes} process(es), target "
            f"{self.target_rate:,.0f} msg/s for {self.duration_s:g} s, shape {self.shape}\n"
            f"  published {self.published:,} messages ({self.rate:,.0f} msg/s, "
            f"{self.rate * SHAPES[self.shape]:,.0f} readings/s), acknowledged {self.acked:,}, "
            f"errors {self.errors}\n"
            f"  achieved {100 * self.rate / self.target_rate:.0f} % of the target rate\n"
            f"  PUBACK round trip: {lat}"
        )


def run_load(
    mqtt_url: str,
    *,
    devices: int,
    rate: float,
    duration_s: float,
    processes: int = 1,
    enterprise: str = "load",
    seed: int = 1,
    shape: str = "gas",
    seq_start: int = 0,
    progress: Any = None,
) -> LoadResult:
    """Publishes for `duration_s`. `progress`, a shared `multiprocessing.Array("q", P)`
    from the spawn context, is kept at each process's count of published messages so a
    caller can watch the rate while the load runs; `seq_start` continues devices' `seq`
    from an earlier run."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r}: one of {', '.join(SHAPES)}")
    host, port = parse_mqtt_url(mqtt_url)
    processes = max(1, min(processes, devices))
    args = [
        (host, port, enterprise, devices, w, processes, rate / processes, duration_s, seed,
         shape, seq_start, progress)
        for w in range(processes)
    ]  # fmt: skip
    if processes == 1:
        results = [_worker(*args[0])]
    else:
        ctx = mp.get_context("spawn")
        out: Any = ctx.Queue()
        procs = [ctx.Process(target=_run_worker, args=(out, *a), daemon=True) for a in args]
        for proc in procs:
            proc.start()
        try:
            results = [out.get(timeout=duration_s + 60) for _ in procs]
        finally:
            for proc in procs:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
    lat = sorted(x for r in results for x in r.latencies_ms)
    return LoadResult(
        shape=shape,
        devices=devices,
        processes=processes,
        target_rate=rate,
        duration_s=duration_s,
        published=sum(r.published for r in results),
        acked=sum(r.acked for r in results),
        errors=sum(r.errors for r in results),
        elapsed_s=max(r.elapsed_s for r in results),
        ack_p50_ms=percentile(lat, 50) if lat else None,
        ack_p99_ms=percentile(lat, 99) if lat else None,
    )


def _run_worker(out: Any, *args: Any) -> None:
    out.put(_worker(*args))


class _Publisher:
    """MQTT 3.1.1 at QoS 1 over a socket: publishes are buffered and written once a step;
    PUBACKs are read whenever the socket has some, and paired with their send times."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self._sock = socket.create_connection((host, port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid
        self._sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._recv_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the connection: {connack!r}")
        self._out = bytearray()
        self._in = b""
        self._mid = 0
        self.sent: dict[int, float] = {}
        self.acked = 0
        self.latencies_ms: list[float] = []

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def publish(self, topic: bytes, payload: bytes) -> None:
        self._mid = self._mid % 65535 + 1
        head = struct.pack("!H", len(topic)) + topic + struct.pack("!H", self._mid)
        self._out += b"\x32" + _varint(len(head) + len(payload)) + head + payload
        self.sent[self._mid] = time.perf_counter()

    def flush(self) -> None:
        if self._out:
            self._sock.sendall(self._out)
            self._out = bytearray()

    def pair(self, wait_s: float = 0.0) -> None:
        """Reads what PUBACKs have arrived (waiting up to `wait_s` for the first)."""
        while select.select([self._sock], [], [], wait_s)[0]:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self._in += chunk
            wait_s = 0.0
        buf, i, now = self._in, 0, time.perf_counter()
        while len(buf) - i >= 4:  # PUBACKs only: 0x40, length 2, packet id
            if buf[i] != 0x40 or buf[i + 1] != 2:
                raise ConnectionError(f"unexpected packet {buf[i]:#x} from the broker")
            mid = (buf[i + 2] << 8) | buf[i + 3]
            i += 4
            self.acked += 1
            sent = self.sent.pop(mid, None)
            if sent is not None and len(self.latencies_ms) < 200_000:
                self.latencies_ms.append((now - sent) * 1000)
        self._in = buf[i:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        self._sock.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Payloads:
    """Message bodies of one shape. Values come from a fixed pool drawn once (normal
    readings, far from any alarm level), so that a publisher's CPU goes to publishing."""

    def __init__(self, shape: str, rng: random.Random) -> None:
        self.shape = shape
        self._values = [
            f'"ch4":{0.3 + rng.gauss(0, 0.02):.2f},"co":{4 + rng.gauss(0, 0.6):.1f},'
            f'"o2":{20.75 + rng.gauss(0, 0.04):.2f},"co2":{0.08 + rng.gauss(0, 0.01):.2f}'
            for _ in range(1009)
        ]
        self._ch4 = [f"{0.3 + rng.gauss(0, 0.02):.2f}" for _ in range(1009)]
        self._n = 0

    def __call__(self, ts: int, seq: int) -> bytes:
        self._n += 1
        n = self._n
        if self.shape == "single":
            return f'{{"ts":{ts},"seq":{seq},"values":{{"ch4":{self._ch4[n % 1009]}}}}}'.encode()
        if self.shape == "gas":
            return f'{{"ts":{ts},"seq":{seq},"values":{{{self._values[n % 1009]}}}}}'.encode()
        # A gateway's batch: one seq per sample, the newest sample stamped `ts`.
        first = ts - (GATEWAY_SAMPLES - 1) * SAMPLE_MS
        base = (seq - 1) * GATEWAY_SAMPLES
        entries = ",".join(
            f'{{"ts":{first + k * SAMPLE_MS},"seq":{base + k + 1},'
            f'"values":{{{self._values[(n + k) % 1009]}}}}}'
            for k in range(GATEWAY_SAMPLES)
        )
        return f'{{"batch":[{entries}]}}'.encode()


def _worker(
    host: str,
    port: int,
    enterprise: str,
    n_devices: int,
    w: int,
    p: int,
    rate: float,
    duration_s: float,
    seed: int,
    shape: str = "gas",
    seq_start: int = 0,
    progress: Any = None,
) -> WorkerResult:
    mine = list(range(w, n_devices, p))
    payload = _Payloads(shape, random.Random(f"{seed}/load/{w}"))
    seqs = [seq_start] * len(mine)
    topics = [f"yj/{enterprise}/gd-{i:06d}/telemetry".encode() for i in mine]
    client = _Publisher(host, port, f"yj-load-{seed}-{w}-{p}")
    result = WorkerResult()
    try:
        start = time.perf_counter()
        while (now := time.perf_counter()) - start < duration_s:
            due = int((now - start) * rate)
            client.pair()
            wall_ms = int(time.time() * 1000)
            # Back-pressure: never more than WINDOW unacknowledged, so a broker that cannot
            # keep up shows as a rate below target, not as a queue growing in this process.
            while result.published < due and result.published - client.acked < WINDOW:
                d = result.published % len(mine)
                seqs[d] += 1
                client.publish(topics[d], payload(wall_ms, seqs[d]))
                result.published += 1
            client.flush()
            if progress is not None:
                progress[w] = result.published
            time.sleep(STEP_S)
        result.elapsed_s = time.perf_counter() - start
        deadline = time.perf_counter() + 10.0
        while client.acked < result.published and time.perf_counter() < deadline:
            client.pair(0.05)
    except OSError:
        result.errors += 1
    finally:
        client.close()
    result.acked, result.latencies_ms = client.acked, client.latencies_ms
    return result
