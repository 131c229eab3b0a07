"""The stage shape: a name and `run(runtime, stop)`. A stage runs until `stop` is set and
raises when it cannot go on; it never sets `stop` itself (that ends the process) and it
runs its helper tasks under an `asyncio.TaskGroup`, so a helper that fails fails the stage.

`Runtime` is what every stage is handed: the settings (read from the environment once),
the pool, the bus, the clock and the process's `Health`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import asyncpg

from yujing.alerts.settings import AlertSettings
from yujing.config import Settings
from yujing.hazards.settings import HazardSettings
from yujing.ingest.bus import Bus
from yujing.pipeline.health import Health


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall time for whatever a stage stamps or schedules; a test hands in its own `now`."""

    now: Callable[[], datetime] = utcnow

    def ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def seconds(self) -> float:
        return self.now().timestamp()


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    bus: Bus
    mqtt_url: str
    say: Callable[[str], None] = print
    clock: Clock = field(default_factory=Clock)
    alert_settings: AlertSettings = field(default_factory=AlertSettings)
    hazard_settings: HazardSettings = field(default_factory=HazardSettings)
    health: Health = field(init=False)

    def __post_init__(self) -> None:
        self.health = Health(self.clock.seconds)


class Stage(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, rt: Runtime, stop: asyncio.Event) -> None:
        """Until `stop`; raises when the stage cannot go on (the supervisor restarts it)."""
