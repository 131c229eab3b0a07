"""Load mode: N coal-mine gas detectors publishing at a steady total rate from P processes.

Each process owns every P-th device and one MQTT connection (paho-mqtt, its network loop in
a thread, QoS 1); it paces itself in 2 ms steps with at most `WINDOW` publishes awaiting
their PUBACK, and reports what it published, what the broker acknowledged and how long
acknowledgements took. A target the broker cannot take shows as an achieved rate below it.

Three message shapes (`SHAPES`): `gas`, one reading of each of the four gases; `gateway`,
a gateway's batch of 25 such samples (100 readings a message); `single`, one methane value
(a simple detector). `bench/pipeline.py` steps these against `yujing up`.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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


class _Acks:
    """PUBACK bookkeeping. paho calls `on_publish` from its network thread while holding its
    own lock, so the callback only appends to a deque; the publishing thread pairs acks
    with send times between steps (a lock here could deadlock against paho's)."""

    def __init__(self) -> None:
        self.acks: deque[tuple[int, float]] = deque()
        self.sent: dict[int, float] = {}
        self.acked = 0
        self.latencies_ms: list[float] = []

    def on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.acks.append((mid, time.perf_counter()))

    def pair(self) -> None:
        while self.acks:
            mid, t = self.acks.popleft()
            self.acked += 1
            sent = self.sent.pop(mid, None)
            if sent is not None and len(self.latencies_ms) < 200_000:
                self.latencies_ms.append((t - sent) * 1000)


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
    topics = [f"yj/{enterprise}/gd-{i:06d}/telemetry" for i in mine]
    acks = _Acks()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"yj-load-{seed}-{w}-{p}")
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    client.on_publish = acks.on_publish
    client.connect(host, port, keepalive=30)
    client.loop_start()
    result = WorkerResult()
    try:
        start = time.perf_counter()
        while (now := time.perf_counter()) - start < duration_s:
            due = int((now - start) * rate)
            acks.pair()
            wall_ms = int(time.time() * 1000)
            # Back-pressure: never more than WINDOW unacknowledged, so a broker that cannot
            # keep up shows as a rate below target, not as a queue growing in this process.
            while result.published < due and result.published - acks.acked < WINDOW:
                d = result.published % len(mine)
                seqs[d] += 1
                t = time.perf_counter()
                info = client.publish(topics[d], payload(wall_ms, seqs[d]), qos=1)
                acks.sent[info.mid] = t
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    result.errors += 1
                result.published += 1
            if progress is not None:
                progress[w] = result.published
            time.sleep(STEP_S)
        result.elapsed_s = time.perf_counter() - start
        _drain(acks, result.published, timeout_s=10.0)
    finally:
        client.loop_stop()
        client.disconnect()
    result.acked, result.latencies_ms = acks.acked, acks.latencies_ms
    return result


def _drain(acks: _Acks, published: int, *, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while acks.acked < published and time.perf_counter() < deadline:
        time.sleep(0.05)
        acks.pair()
