"""Live alert changes for SSE clients: one LISTEN connection per API process fans out to
bounded per-client queues. A client that falls behind gets a `resync` event and is
disconnected rather than slowing anyone else down; `Last-Event-ID` replays from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

import asyncpg

from yujing.alerts.store import NOTIFY_CHANNEL, AlertStore, StoredChange
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscriber:
    accept: Callable[[StoredChange], bool]
    queue: asyncio.Queue[StoredChange]
    overflowed: bool = False


@dataclass
class ChangeHub:
    pool: asyncpg.Pool
    store: AlertStore
    queue_size: int = 1000
    seq: int = 0
    _subscribers: set[Subscriber] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        """Listens until `stop`; a lost connection is listened on again (periodic.py)."""
        started = False

        async def session() -> None:
            nonlocal started
            if not started:
                self.seq = await self.store.last_seq()
                started = True
            await self._listen(stop)

        await periodic("sse-hub", session, 1.0, stop, health=health)

    async def _listen(self, stop: asyncio.Event) -> None:
        async with self.pool.acquire() as conn:
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            try:
                while not stop.is_set():
                    # The timeout is a safety net for a lost notification.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 2.0)
                    self._wake.clear()
                    await self._fan_out()
            finally:
                with contextlib.suppress(Exception):
                    await conn.reset()

    async def _fan_out(self) -> None:
        while True:
            changes = await self.store.changes_since(self.seq, limit=500)
            if not changes:
                return
            for change in changes:
                for sub in list(self._subscribers):
                    if sub.overflowed or not sub.accept(change):
                        continue
                    try:
                        sub.queue.put_nowait(change)
                    except asyncio.QueueFull:
                        sub.overflowed = True
                self.seq = change.seq

    async def subscribe(
        self,
        accept: Callable[[StoredChange], bool],
        last_event_id: int | None,
        heartbeat_s: float,
        record: str = "alert",
    ) -> AsyncGenerator[str, None]:
        """Changes of one kind of record (alerts, or hazards) that `accept` lets through."""

        def of_record(change: StoredChange) -> bool:
            return change.record == record and accept(change)

        sub = Subscriber(of_record, asyncio.Queue(self.queue_size))
        self._subscribers.add(sub)
        try:
            sent = last_event_id if last_event_id is not None else self.seq
            if last_event_id is not None:
                while True:
                    backlog = await self.store.changes_since(sent, limit=500)
                    for change in backlog:
                        if of_record(change):
                            yield _frame(change)
                        sent = change.seq
                    if len(backlog) < 500:
                        break
            yield "retry: 2000\n\n"
            while True:
                if sub.overflowed:
                    yield f"event: resync\ndata: {json.dumps({'last_seq': sent})}\n\n"
                    return
                try:
                    change = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if change.seq > sent:
                    sent = change.seq
                    yield _frame(change)
        finally:
            self._subscribers.discard(sub)


def _frame(change: StoredChange) -> str:
    data = json.dumps(change.public(), ensure_ascii=False)
    return f"id: {change.seq}\nevent: {change.transition}\ndata: {data}\n\n"
