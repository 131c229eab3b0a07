"""The retry policy, in one place: which errors are a passing outage of the database or the
broker (retried where they happened, with backoff), and which are not (they fail the stage,
and the supervisor restarts it)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiomqtt
import asyncpg
from aiokafka.errors import KafkaError

# Class 08 (connection), 53 (insufficient resources: disk full, too many connections),
# 57 (operator intervention: shutdown, cannot connect now), 25006 (read-only: a standby or
# a database set read-only refuses writes until it is promoted or set back).
_PG_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InterfaceError,
)


def target_of(exc: BaseException) -> str | None:
    """`database` or `bus` for an error that is a passing outage of that server, None for
    an error that retrying the same work will not cure (a bug, a refused row)."""
    if isinstance(exc, KafkaError):
        return "bus" if exc.retriable else None
    if isinstance(exc, aiomqtt.MqttError):
        return "bus"
    if isinstance(exc, _PG_TRANSIENT):
        return "database"
    if isinstance(exc, OSError | TimeoutError):
        # asyncpg raises a refused or reset connection as a bare OSError; the Kafka and
        # MQTT clients wrap theirs (above).
        return "database"
    return None


def transient(exc: BaseException) -> bool:
    return target_of(exc) is not None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential waits: first_s, doubled each time, at most max_s."""

    first_s: float = 0.5
    max_s: float = 10.0

    def delays(self) -> Delays:
        return Delays(self)


class Delays:
    def __init__(self, backoff: Backoff) -> None:
        self._b = backoff
        self._next = backoff.first_s

    def reset(self) -> None:
        self._next = self._b.first_s

    def next(self) -> float:
        out = self._next
        self._next = min(self._next * 2, self._b.max_s)
        return out


RETRY = Backoff()


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Waits `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
