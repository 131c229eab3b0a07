"""`yujing ingest`: MQTT in, validated columnar batches and dead letters onto the bus.

Messages are taken in small batches (a few milliseconds of linger); every message ends in
exactly one of accepted, duplicate or dead-lettered; the bus must accept the whole batch
before any of its QoS 1 messages is acknowledged, so a crash or a bus outage leaves them
with the broker for redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import asyncpg
import numpy as np
from prometheus_client import Counter

from yujing.config import Settings
from yujing.ingest import payloads as p
from yujing.ingest.batch import DeadLetter, DeviceInfo, Event, ReadingBatch, Status, encode
from yujing.ingest.bus import Bus, Topics
from yujing.ingest.dedup import SeqWindow
from yujing.ingest.registry import Registry
from yujing.names import device_key, is_identifier

log = logging.getLogger(__name__)

MESSAGES = Counter("yj_ingest_messages_total", "MQTT messages by outcome", ["outcome"])
DEAD = Counter("yj_ingest_deadletters_total", "Dead-lettered messages by reason", ["reason"])
READINGS = Counter("yj_ingest_readings_total", "Readings accepted")
DUP_READINGS = Counter("yj_ingest_duplicate_readings_total", "Readings dropped as redeliveries")
GAPS = Counter("yj_ingest_seq_gaps_total", "Sequence numbers never received")

# The whole `yj/` namespace, so that a device publishing to a wrong topic is dead-lettered
# as `bad_topic` instead of vanishing; `yj/alerts/` is yujing's own output (the enterprise
# id `alerts` is reserved for it) and is not device input.
SUBSCRIPTIONS = ("yj/#",)
OUTPUT_PREFIX = "yj/alerts/"


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    received_ms: int


class Ingestor:
    """Validates messages and publishes what they became; no MQTT here, so it is tested
    with plain bytes."""

    def __init__(
        self, settings: Settings, registry: Registry, bus: Bus, clock: Callable[[], int]
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._bus = bus
        self._clock = clock
        self._seqs = SeqWindow()

    async def handle(self, messages: Sequence[Message]) -> None:
        out: dict[str, list[tuple[bytes, bytes]]] = {}
        tally = _Tally()
        self._seqs.begin()
        for m in messages:
            try:
                topic, key, value = await self._outcome(m, tally)
            except p.Rejected as r:
                topic, key, value = Topics.DEADLETTER, *self._dead_letter(m, r)
                tally.dead(r.reason)
            else:
                if topic is None:
                    tally.outcomes.append("duplicate")
                    continue
                tally.outcomes.append("accepted")
            out.setdefault(topic, []).append((key, value))
        try:
            for topic, records in out.items():
                await self._bus.publish(topic, records)
        except BaseException:
            # MQTT redelivers the batch: its seqs must not count as seen by then.
            self._seqs.rollback()
            raise
        # Counted only once the bus has the batch: a failed publish is redelivered by MQTT.
        tally.count()

    async def _outcome(self, m: Message, tally: _Tally) -> tuple[Any, bytes, bytes]:
        """The total input policy: whatever one message's bytes do to the code, it ends as
        accepted, duplicate or dead-lettered. Only the registry's I/O errors escape (the
        database is down: the batch waits for MQTT's redelivery)."""
        try:
            return await self._accept(m, tally)
        except (p.Rejected, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            raise
        except Exception as exc:
            log.warning("ingest: %s on %r dead-lettered as internal", type(exc).__name__, m.topic)
            raise p.Rejected(p.Reason.INTERNAL, f"{type(exc).__name__}: {exc}") from exc

    async def _accept(self, m: Message, tally: _Tally) -> tuple[Any, bytes, bytes]:
        if len(m.payload) > self._settings.max_payload_bytes:
            raise p.Rejected(
                p.Reason.TOO_LARGE,
                f"{len(m.payload)} bytes, at most {self._settings.max_payload_bytes}",
            )
        where = p.parse_topic(m.topic)
        now, skew = self._clock(), int(self._settings.max_future_skew_s * 1000)
        if where.kind == "telemetry":
            rows = p.decode_telemetry(m.payload, now, skew)
        elif where.kind == "event":
            event = p.decode_event(m.payload, now, skew)
        else:
            status = p.decode_status(m.payload, now, skew)
        info = await self._registry.lookup(where.enterprise, where.device)
        if info is None:
            raise p.Rejected(
                p.Reason.UNKNOWN_DEVICE, f"{where.enterprise}/{where.device} is not registered"
            )
        key = device_key(where.enterprise, where.device).encode()
        if where.kind == "telemetry":
            batch = self._readings(info, rows, m.received_ms, tally)
            return (
                (Topics.READINGS if batch is not None else None),
                key,
                batch.to_bytes() if batch else b"",
            )
        if where.kind == "event":
            ts, type_, count, seq, attrs = event
            if seq is not None and not self._seqs.accept((info.enterprise, info.device), seq):
                return None, key, b""
            return Topics.EVENTS, key, encode(Event(info, ts, type_, count, seq, attrs))
        ts, state, detail = status
        return Topics.STATUS, key, encode(Status(info, ts, state, detail))

    def _readings(
        self, info: DeviceInfo, rows: p.ReadingRows, received_ms: int, tally: _Tally
    ) -> ReadingBatch | None:
        device = (info.enterprise, info.device)
        gaps = self._seqs.gaps
        fresh = np.array([s is None or self._seqs.accept(device, s) for s in rows.seqs])
        tally.gaps += self._seqs.gaps - gaps
        keep = fresh[rows.entry_of_row]
        dropped = int((~keep).sum())
        tally.duplicate_readings += dropped
        if dropped == len(keep):
            return None
        tally.readings += len(keep) - dropped
        n = int(keep.sum())
        return ReadingBatch(
            devices=[info],
            points=rows.points,
            device=np.zeros(n, np.int32),
            point=rows.point[keep],
            ts=rows.ts[keep],
            value=rows.value[keep],
            quality=rows.quality[keep],
            received_ms=received_ms,
        )

    @staticmethod
    def _dead_letter(m: Message, r: p.Rejected) -> tuple[bytes, bytes]:
        parts = m.topic.split("/")
        ent, dev = (
            (parts[1], parts[2])
            if len(parts) == 4 and is_identifier(parts[1]) and is_identifier(parts[2])
            else (None, None)
        )
        # The topic and the detail go to text columns: no NUL, no lone surrogate there.
        letter = DeadLetter(
            _printable(m.topic), m.received_ms, r.reason, _printable(r.detail[:1000]),
            m.payload, ent, dev,
        )  # fmt: skip
        return (device_key(ent, dev) if ent and dev else "-").encode(), encode(letter)


@dataclass(slots=True)
class _Tally:
    """What one batch did to the counters, applied once the bus has the batch."""

    outcomes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    readings: int = 0
    duplicate_readings: int = 0
    gaps: int = 0

    def dead(self, reason: str) -> None:
        self.outcomes.append("deadletter")
        self.reasons.append(reason)

    def count(self) -> None:
        for outcome in self.outcomes:
            MESSAGES.labels(outcome).inc()
        for reason in self.reasons:
            DEAD.labels(reason).inc()
        READINGS.inc(self.readings)
        DUP_READINGS.inc(self.duplicate_readings)
        GAPS.inc(self.gaps)


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class MqttSource:
    """Takes messages from the broker with manual QoS 1 acknowledgement."""

    def __init__(self, settings: Settings, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self._settings = settings
        self._next: asyncio.Future[aiomqtt.Message] | None = None

    def _topics(self) -> list[str]:
        group = self._settings.mqtt_shared_group
        return [f"$share/{group}/{t}" if group else t for t in SUBSCRIPTIONS]

    async def run(self, ingestor: Ingestor, clock: Callable[[], int], stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                await self._session(ingestor, clock, stop)
                delay = 0.5
            except aiomqtt.MqttError as exc:
                log.warning("MQTT connection lost (%s); reconnecting in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)

    async def _session(
        self, ingestor: Ingestor, clock: Callable[[], int], stop: asyncio.Event
    ) -> None:
        client_id = self._settings.mqtt_client_id or f"yujing-ingest-{socket.gethostname()}"
        client = aiomqtt.Client(
            self.host, self.port, identifier=client_id,
            clean_session=False,
            max_queued_incoming_messages=self._settings.ingest_max_batch * 4,
        )  # fmt: skip
        # aiomqtt has no public switch for it; paho acknowledges only when told to.
        client._client.manual_ack_set(True)
        self._next = None
        async with client:
            for topic in self._topics():
                await client.subscribe(topic, qos=1)
            log.info("ingest subscribed at %s:%s", self.host, self.port)
            messages = aiter(client.messages)
            try:
                await self._consume(ingestor, clock, client, messages, stop)
            finally:
                if self._next is not None:
                    self._next.cancel()
                    self._next = None

    async def _consume(
        self,
        ingestor: Ingestor,
        clock: Callable[[], int],
        client: aiomqtt.Client,
        messages: Any,
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            batch = await self._gather(client, messages, stop)
            if not batch:
                continue
            now = clock()
            await ingestor.handle(
                [
                    Message(str(m.topic), _bytes(m.payload), now)
                    for m in batch
                    if not str(m.topic).startswith(OUTPUT_PREFIX)
                ]
            )
            for m in batch:
                if m.qos > 0:
                    client._client.ack(m.mid, m.qos)

    async def _gather(
        self, client: aiomqtt.Client, messages: Any, stop: asyncio.Event
    ) -> list[aiomqtt.Message]:
        """The next batch: wait for one message, then take what arrives within the linger.

        aiomqtt's iterator loses a message if `anext()` is cancelled just as it completes,
        so the wait for the first message is a task that survives across calls (cancelled
        only when the session ends: that message was not acknowledged, so the broker sends
        it again), and the linger polls the queue length instead of cancelling a read.
        """
        if self._next is None:
            self._next = asyncio.ensure_future(anext(messages))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({self._next, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not self._next.done():
            return []
        first, self._next = self._next, None
        batch = [first.result()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.ingest_linger_ms / 1000
        while len(batch) < self._settings.ingest_max_batch:
            if len(client.messages):
                batch.append(await anext(messages))  # completes at once: the queue has one
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, 0.001))
        return batch


def _bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    return str(payload).encode()


async def watch_registry(bus: Bus, registry: Registry, stop: asyncio.Event) -> None:
    """Evicts cached devices when the API publishes a change on `yj.registry`."""
    consumer = bus.consumer([Topics.REGISTRY], None)
    try:
        while not stop.is_set():
            for record in await consumer.next_batch(timeout_s=0.5):
                kind, _, name = record.key.decode().partition(":")
                if kind == "device" and "/" in name:
                    ent, dev = name.split("/", 1)
                    registry.evict(ent, dev)
    finally:
        await consumer.close()


async def run_ingest(
    settings: Settings,
    bus: Bus,
    registry: Registry,
    mqtt_url: str,
    clock: Callable[[], int],
    stop: asyncio.Event,
) -> None:
    ingestor = Ingestor(settings, registry, bus, clock)
    # One task group: if the source fails (the registry's database is down) or the watcher
    # does, the other is cancelled and the stage fails, to be restarted by the supervisor;
    # the MQTT broker redelivers what was not acknowledged.
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(watch_registry(bus, registry, stop), name="registry-watch")
        tasks.create_task(MqttSource(settings, mqtt_url).run(ingestor, clock, stop), name="mqtt")
