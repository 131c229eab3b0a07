"""A test kit for alert timelines (bytewax style): engine level changes at timeline seconds
and a clock the test moves. Used by the tests and handy in a REPL; only `wait_for` sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from yujing.levels import Level
from yujing.rules.transition import Transition

T0 = 1_763_856_000_000  # 2025-11-23T00:00:00Z: event time of second 0 of every timeline


def at(t_s: float) -> datetime:
    """The time of timeline second `t_s`."""
    return datetime.fromtimestamp(T0 / 1000, tz=UTC) + timedelta(seconds=t_s)


def level_change(
    t_s: float,
    frm: Level,
    to: Level,
    *,
    ent: str = "ent1",
    device: str = "dev-17",
    point: str | None = "ch4",
    rule: str = "coal-face-ch4",
    health: bool = False,
    site: str = "face-3",
) -> Transition:
    """What the engine emits when `ent/device/point` under `rule` goes from `frm` to `to`."""
    return Transition(
        key=f"{ent}/{device}/{point or '-'}/{rule}", enterprise=ent, site=site, device=device,
        point=point, rule_id=rule, rule_version=1, kind="absent" if health else "threshold",
        from_level=int(frm), to_level=int(to), ts=T0 + int(t_s * 1000), value=1.6,
        threshold=1.5, unit="%CH4", rule_name="采煤工作面甲烷", health=health,
    )  # fmt: skip


@dataclass
class Clock:
    """An injected clock: the test moves it; nothing reads the system time."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def to(self, t_s: float) -> None:
        self.now = at(t_s)


async def wait_for(probe: Callable[[], Awaitable[bool]], limit_s: float = 20.0) -> None:
    """Polls `probe` until it holds; a limit, not a timing assertion: it only stops a hung
    test from hanging the run."""
    deadline = time.monotonic() + limit_s
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {limit_s} s")
        await asyncio.sleep(0.05)
