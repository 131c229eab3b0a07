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
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import asyncpg
import numpy as np
import numpy.typing as npt
import paho.mqtt.client as mqtt
from prometheus_client import Counter

from yujing.config import Settings
from yujing.ingest import payloads as p
from yujing.ingest.batch import DeadLetter, DeviceInfo, Event, ReadingBatch, Status, encode
from yujing.ingest.bus import Bus, Topics
from yujing.ingest.dedup import SeqWindow
from yujing.ingest.registry import Registry
from yujing.ingest.topics import RegistryKey
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
        # The bus's partition count (KafkaBus; the in-process bus has one): readings of
        # one batch are published as one record per partition.
        self._partitions = int(getattr(bus, "partitions", 1))

    async def handle(self, messages: Sequence[Message]) -> None:
        out: dict[str, list[tuple[bytes, bytes]]] = {}
        # What each value was encoded from, for consumers in this process (no decode there).
        built: dict[str, list[Any]] = {}
        tally = _Tally()
        readings = _Readings(self._partitions)
        self._seqs.begin()
        for m in messages:
            try:
                topic, key, value, obj = await self._outcome(m, tally, readings)
            except p.Rejected as r:
                topic, key, value, obj = Topics.DEADLETTER, *self._dead_letter(m, r), None
                tally.dead(r.reason)
            else:
                if topic is None:
                    tally.outcomes.append("duplicate")
                    continue
                tally.outcomes.append("accepted")
                if topic == Topics.READINGS:  # held in `readings`; its place in the order
                    out.setdefault(topic, [])
                    continue
            out.setdefault(topic, []).append((key, value))
            built.setdefault(topic, []).append(obj)
        if Topics.READINGS in out:
            batches = readings.batches()
            out[Topics.READINGS] = [(k, b.to_bytes()) for k, b in batches]
            built[Topics.READINGS] = [b for _, b in batches]
        try:
            for topic, records in out.items():
                await self._bus.publish(topic, records, built[topic])
        except BaseException:
            # MQTT redelivers the batch: its seqs must not count as seen by then.
            self._seqs.rollback()
            raise
        # Counted only once the bus has the batch: a failed publish is redelivered by MQTT.
        tally.count()

    async def _outcome(
        self, m: Message, tally: _Tally, readings: _Readings
    ) -> tuple[Any, bytes, bytes, Any]:
        """The total input policy: whatever one message's bytes do to the code, it ends as
        accepted, duplicate or dead-lettered. Only the registry's I/O errors escape (the
        database is down: the batch waits for MQTT's redelivery)."""
        try:
            return await self._accept(m, tally, readings)
        except (p.Rejected, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            raise
        except Exception as exc:
            log.warning("ingest: %s on %r dead-lettered as internal", type(exc).__name__, m.topic)
            raise p.Rejected(p.Reason.INTERNAL, f"{type(exc).__name__}: {exc}") from exc

    async def _accept(
        self, m: Message, tally: _Tally, readings: _Readings
    ) -> tuple[Any, bytes, bytes, Any]:
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
        info = self._registry.cached(where.enterprise, where.device) or (
            await self._registry.lookup(where.enterprise, where.device)
        )
        if info is None:
            raise p.Rejected(
                p.Reason.UNKNOWN_DEVICE, f"{where.enterprise}/{where.device} is not registered"
            )
        key = device_key(where.enterprise, where.device).encode()
        if where.kind == "telemetry":
            kept = self._readings(info, rows, tally)
            if kept is None:
                return None, key, b"", None
            readings.add(key, info, rows, kept, m.received_ms)
            return Topics.READINGS, key, b"", None
        if where.kind == "event":
            ts, type_, count, seq, attrs = event
            if seq is not None and not self._seqs.accept((info.enterprise, info.device), seq):
                return None, key, b"", None
            ev = Event(info, ts, type_, count, seq, attrs)
            return Topics.EVENTS, key, encode(ev), ev
        ts, state, detail = status
        st = Status(info, ts, state, detail)
        return Topics.STATUS, key, encode(st), st

    def _readings(
        self, info: DeviceInfo, rows: p.ReadingRows, tally: _Tally
    ) -> npt.NDArray[np.bool_] | None:
        """Which rows are new (None: none is), by the device's seq window."""
        device = (info.enterprise, info.device)
        gaps = self._seqs.gaps
        fresh = np.array(self._seqs.accept_all(device, rows.seqs))
        tally.gaps += self._seqs.gaps - gaps
        keep: npt.NDArray[np.bool_] = fresh[rows.entry_of_row]
        dropped = int((~keep).sum())
        tally.duplicate_readings += dropped
        if dropped == len(keep):
            return None
        tally.readings += len(keep) - dropped
        return keep

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


class _Readings:
    """The readings one batch of messages brought, as one `ReadingBatch` per bus
    partition: one record to encode, publish and decode downstream instead of one per
    message. Kafka keeps a device's records on the partition its key hashes to, so a
    group is keyed by one of its own devices (the producer's partitioner is asked)."""

    def __init__(self, partitions: int) -> None:
        self._partitions = partitions
        self._groups: dict[int, _Group] = {}

    def add(
        self, key: bytes, info: DeviceInfo, rows: p.ReadingRows, keep: Any, received_ms: int
    ) -> None:
        part = 0 if self._partitions <= 1 else _partition(key, self._partitions)
        group = self._groups.get(part)
        if group is None:
            group = self._groups[part] = _Group(key)
        group.add(info, rows, keep, received_ms)

    def batches(self) -> list[tuple[bytes, ReadingBatch]]:
        return [(g.key, g.batch()) for g in self._groups.values()]


@dataclass(slots=True)
class _Group:
    key: bytes
    devices: list[DeviceInfo] = field(default_factory=list)
    points: dict[str, int] = field(default_factory=dict)
    columns: tuple[list[Any], ...] = field(default_factory=lambda: ([], [], [], [], []))
    received_ms: int = 0

    def add(self, info: DeviceInfo, rows: p.ReadingRows, keep: Any, received_ms: int) -> None:
        every = bool(keep.all())
        point = rows.point if every else rows.point[keep]
        pmap = np.array(
            [self.points.setdefault(name, len(self.points)) for name in rows.points], np.int32
        )
        # Every column worked out before any is appended: a failure leaves the group whole.
        row = (
            np.full(len(point), len(self.devices), np.int32),
            pmap[point],
            rows.ts if every else rows.ts[keep],
            rows.value if every else rows.value[keep],
            rows.quality if every else rows.quality[keep],
        )
        for column, part in zip(self.columns, row, strict=True):
            column.append(part)
        self.devices.append(info)
        self.received_ms = max(self.received_ms, received_ms)

    def batch(self) -> ReadingBatch:
        device, points, ts, value, quality = (np.concatenate(c) for c in self.columns)
        return ReadingBatch(
            self.devices, list(self.points), device, points, ts, value, quality, self.received_ms
        )


_PARTITIONS: dict[tuple[bytes, int], int] = {}


def _partition(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner gives `key` (murmur2, as Java's)."""
    part = _PARTITIONS.get((key, partitions))
    if part is None:
        from aiokafka.partitioner import DefaultPartitioner

        every = list(range(partitions))
        part = _PARTITIONS[key, partitions] = DefaultPartitioner()(key, every, every)
    return part


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
    """Takes messages from the broker with manual QoS 1 acknowledgement.

    paho reads the socket on the event loop (aiomqtt registers the reader); its messages go
    into an inbox that ingest empties whole each turn, so many messages cost one wake-up,
    not one queue round trip each. Back-pressure instead of loss: when the inbox holds
    `high_water` messages, the socket is no longer read until ingest has caught up; the
    broker then keeps the rest (its in-flight window stays full of messages that will be
    acknowledged, not of messages dropped here), and TCP slows it down. Acknowledgements
    of a batch leave in one write once the bus has it.
    """

    def __init__(self, settings: Settings, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self._settings = settings
        self.high_water = settings.ingest_max_batch * 4
        self._inbox: list[mqtt.MQTTMessage] = []
        self._arrived = asyncio.Event()
        self._paused_fd: int | None = None
        self.pauses = 0  # how often the socket was left unread: tests watch it

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
        client = aiomqtt.Client(self.host, self.port, identifier=client_id, clean_session=False)
        paho = client._client
        # aiomqtt has no public switch for it; paho acknowledges only when told to.
        paho.manual_ack_set(True)
        # paho's own callback, not aiomqtt's queue: no per-message wrapper or queue hop.
        paho.on_message = self._on_message
        # paho logs every packet at DEBUG through `logging`: a cost per message for lines
        # nobody reads; connection failures still surface through aiomqtt.
        paho.disable_logger()
        self._inbox = []  # unacknowledged: the broker sends them again in this session
        self._paused_fd = None
        async with client:
            for topic in self._topics():
                await client.subscribe(topic, qos=1)
            log.info("ingest subscribed at %s:%s", self.host, self.port)
            try:
                await self._consume(ingestor, clock, client, stop)
            finally:
                self._resume(client)

    def _on_message(self, paho: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        self._inbox.append(m)
        self._arrived.set()
        if len(self._inbox) >= self.high_water and self._paused_fd is None:
            sock = paho.socket()
            if sock is not None:
                self._paused_fd = sock.fileno()
                asyncio.get_running_loop().remove_reader(self._paused_fd)
                self.pauses += 1

    def _resume(self, client: aiomqtt.Client) -> None:
        """Reads the socket again (as aiomqtt's reader does: its errors end the session)."""
        fd, self._paused_fd = self._paused_fd, None
        sock = client._client.socket()
        if fd is None or sock is None or sock.fileno() != fd:
            return

        def read() -> None:
            try:
                client._client.loop_read()
            except Exception as exc:
                if not client._disconnected.done():
                    client._disconnected.set_exception(exc)

        asyncio.get_running_loop().add_reader(fd, read)

    async def _consume(
        self,
        ingestor: Ingestor,
        clock: Callable[[], int],
        client: aiomqtt.Client,
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            batch = await self._gather(client, stop)
            if not batch:
                continue
            now = clock()
            await ingestor.handle(
                [
                    Message(t, _bytes(m.payload), now)
                    for m in batch
                    if not (t := m.topic).startswith(OUTPUT_PREFIX)
                ]
            )
            _ack(client._client, [m.mid for m in batch if m.qos == 1])
            if self._paused_fd is not None and len(self._inbox) < self.high_water // 2:
                self._resume(client)

    async def _gather(self, client: aiomqtt.Client, stop: asyncio.Event) -> list[Any]:
        """The next batch: wait for a message, linger for more, take up to the batch size."""
        if not self._inbox:
            self._arrived.clear()
            arrived = asyncio.ensure_future(self._arrived.wait())
            stopping = asyncio.ensure_future(stop.wait())
            waits: set[asyncio.Future[Any]] = {arrived, stopping, client._disconnected}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                arrived.cancel()
                stopping.cancel()
        if client._disconnected.done():
            exc = client._disconnected.exception()
            raise aiomqtt.MqttError("disconnected") from exc
        if not self._inbox:
            return []
        size = self._settings.ingest_max_batch
        if len(self._inbox) < size and self._paused_fd is None:
            await asyncio.sleep(self._settings.ingest_linger_ms / 1000)
        batch, self._inbox = self._inbox[:size], self._inbox[size:]
        return batch


def _ack(paho: mqtt.Client, mids: list[int]) -> None:
    """PUBACKs for `mids`, as one packet in paho's outgoing queue: one socket write for a
    whole batch instead of one write (and one loop wake-up) per message. The bytes are
    paho's own PUBACK (`_send_command_with_mid`), valid in MQTT 3.1.1 and 5."""
    if not mids:
        return
    if len(mids) == 1:
        paho.ack(mids[0], 1)
        return
    packets = b"".join([_PUBACK.pack(0x40, 2, mid) for mid in mids])
    paho._packet_queue(0x40, packets, 0, 0)


_PUBACK = struct.Struct("!BBH")


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
                key = RegistryKey.parse(record.key)
                if key is not None and key.kind == "device":
                    registry.evict(key.enterprise, key.name)
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
