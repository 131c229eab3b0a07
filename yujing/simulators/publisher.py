"""Publishing a message stream over MQTT at its simulated pace (QoS 1), surviving broker drops.

Messages go out in order on one connection; up to `window` publishes await their PUBACK at
once. After a dropped connection the unacknowledged ones are sent again: that is a QoS 1
redelivery with the same `seq`, which yujing must drop as a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import aiomqtt

from yujing.simulators.wire import Message

Say = Callable[[str], None]
OnSent = Callable[[Message, float], None]


@dataclass
class PublishStats:
    published: int = 0  # acknowledged by the broker
    reconnects: int = 0
    started: float = 0.0  # wall clock, epoch seconds
    finished: float = 0.0


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """`mqtt://host:port` (or `tcp://`, or bare `host:port`) to (host, port)."""
    rest = url.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest or "127.0.0.1", 1883
    return host.strip("[]"), int(port)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when `stop` is set; True if it was."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


class Publisher:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        window: int = 200,
        say: Say = print,
        keepalive: int = 30,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.window, self.say, self.keepalive = window, say, keepalive

    async def run(
        self,
        messages: Iterable[Message],
        stop: asyncio.Event,
        *,
        speed: float = 1.0,
        on_sent: OnSent | None = None,
        t0: float | None = None,
    ) -> PublishStats:
        """Publish each message at `t0 + at_ms / 1000 / speed` (monotonic seconds)."""
        stats = PublishStats(started=time.time())
        start = time.monotonic() if t0 is None else t0
        source = iter(messages)
        retry: list[Message] = []
        backoff = 0.5
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id or None,
                    keepalive=self.keepalive,
                    timeout=30,
                ) as client:
                    # Up to `window` publishes await their PUBACK by design; no warning.
                    client.pending_calls_threshold = self.window + 1
                    backoff = 0.5
                    done = await self._session(
                        client, source, retry, stop, speed, start, stats, on_sent
                    )
                if done:
                    break
            except aiomqtt.MqttError as exc:
                stats.reconnects += 1
                self.say(f"MQTT {self.host}:{self.port}: {exc}; reconnecting in {backoff:.1f} s")
                if await _pause(stop, backoff):
                    break
                backoff = min(backoff * 2, 10.0)
        stats.finished = time.time()
        return stats

    async def _session(
        self,
        client: aiomqtt.Client,
        source: Iterator[Message],
        retry: list[Message],
        stop: asyncio.Event,
        speed: float,
        start: float,
        stats: PublishStats,
        on_sent: OnSent | None,
    ) -> bool:
        """One connection's worth of publishing; True when the stream is exhausted."""
        inflight: dict[asyncio.Task[None], Message] = {}
        try:
            for msg in _chain(retry, source):
                due = start + msg.at_ms / 1000.0 / speed
                if await _pause(stop, due - time.monotonic()):
                    return True
                while len(inflight) >= self.window:
                    await self._reap(inflight, stats, wait=True)
                if on_sent is not None:
                    on_sent(msg, time.time())
                task = asyncio.create_task(
                    client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
                )
                inflight[task] = msg
                await self._reap(inflight, stats, wait=False)
            while inflight:
                await self._reap(inflight, stats, wait=True)
            return True
        finally:
            # Whatever was not acknowledged goes again on the next connection, in order.
            unacked = []
            for task, msg in inflight.items():
                if task.done() and not task.cancelled() and task.exception() is None:
                    stats.published += 1
                else:
                    task.cancel()
                    unacked.append(msg)
            retry[:0] = unacked

    async def _reap(
        self, inflight: dict[asyncio.Task[None], Message], stats: PublishStats, *, wait: bool
    ) -> None:
        if wait:
            await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
        for task in [t for t in inflight if t.done()]:
            exc = task.exception()
            if exc is not None:
                raise aiomqtt.MqttError(f"publish failed: {exc}") from exc
            del inflight[task]
            stats.published += 1


def _chain(retry: list[Message], source: Iterator[Message]) -> Iterator[Message]:
    while retry:
        yield retry.pop(0)
    yield from source
