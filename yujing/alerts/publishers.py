"""Ways out for alert changes. Each publisher says whether a failure is worth retrying;
the relay, not the publisher, decides what to do about it (Alertmanager's notify stage).

`KafkaFeed` is the machine feed: every stored change, marked or not, so a reader can
rebuild the alert table. `MqttFeed` (and `webhooks.WebhookFanout`) are for people: they
skip changes whose `notify` is false (maintenance, unreliable sensor, chattering)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Protocol

import aiomqtt

from yujing.alerts import cloudevents
from yujing.alerts.store import StoredChange
from yujing.ingest.bus import Bus, Topics


class PublishError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Publisher(Protocol):
    name: str

    async def publish(self, changes: Sequence[StoredChange]) -> None: ...

    async def close(self) -> None:
        """Release connections; called once when the alerts stage stops."""


class KafkaFeed:
    """`yj.alerts`: every change as a CloudEvent keyed by alert key."""

    name = "kafka"

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, changes: Sequence[StoredChange]) -> None:
        records = [(c.key.encode(), cloudevents.encode(c)) for c in changes]
        try:
            await self._bus.publish(Topics.ALERTS, records)
        except Exception as exc:
            raise PublishError(f"bus refused alert feed: {exc}", retryable=True) from exc

    async def close(self) -> None:
        return None  # the bus belongs to the runtime, which closes it


class MqttFeed:
    """`yj/alerts/{enterprise}/{level}`, QoS 1, the alert JSON as payload; hazard changes go
    to `yj/hazards/{enterprise}/{grade}` the same way.

    A feed for people: changes that are not to be pushed to people (suppressed by a
    maintenance window, unreliable sensor, chattering after its first notice) are skipped;
    `yj.alerts` carries them."""

    name = "mqtt"

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._client: aiomqtt.Client | None = None

    async def _connect(self) -> aiomqtt.Client:
        if self._client is None:
            # Unique per process: two relays with one client id would keep disconnecting each other.
            client = aiomqtt.Client(
                self._host, self._port, identifier=f"yj-feed-{uuid.uuid4().hex[:12]}"
            )
            await client.__aenter__()
            self._client = client
        return self._client

    async def publish(self, changes: Sequence[StoredChange]) -> None:
        try:
            client = await self._connect()
            for c in changes:
                if not c.notify:
                    continue
                topic = _topic(c)
                body = {"seq": c.seq, "transition": c.transition, **c.alert}
                await client.publish(topic, json.dumps(body, ensure_ascii=False), qos=1)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise PublishError(f"MQTT publish failed: {exc}", retryable=True) from exc

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)


def _topic(c: StoredChange) -> str:
    if c.record == "hazard":
        return f"yj/hazards/{c.alert['enterprise']}/{c.alert['grade']}"
    return f"yj/alerts/{c.alert['enterprise']}/{c.alert['level']}"
