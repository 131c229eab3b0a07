"""The periodic loop every background helper uses (escalation, storage upkeep, webhook
dispatch, the feed relay, alarm figures, online counts, the hazard watch, the SSE hub).

`work()` runs now, then again every `every_s` (or as soon as `wake` is set, or at once
when it returns True: more is waiting). A passing outage (retry.transient) is logged and
retried with backoff; any other error ends the loop, and with it the stage whose
`TaskGroup` runs it, so the supervisor restarts the stage and says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from yujing.pipeline import retry
from yujing.pipeline.health import Health

log = logging.getLogger(__name__)


async def periodic(
    name: str,
    work: Callable[[], Awaitable[bool | None]],
    every_s: float,
    stop: asyncio.Event,
    *,
    wake: asyncio.Event | None = None,
    health: Health | None = None,
    backoff: retry.Backoff = retry.RETRY,
) -> None:
    delays = backoff.delays()
    while not stop.is_set():
        try:
            more = await work()
        except Exception as exc:
            target = retry.target_of(exc)
            if target is None:
                raise
            if health is not None:
                health.refused(name, target, exc)
            wait = max(delays.next(), min(every_s, backoff.max_s))
            log.warning("%s: %s refused (%s); again in %.1f s", name, target, exc, wait)
            await retry.pause(stop, wait)
            continue
        delays.reset()
        if health is not None:
            health.accepted(name)
        if more:
            await asyncio.sleep(0)  # let others run between rounds of a backlog
            continue
        await _wait(stop, wake, every_s)


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    if wake is None:
        await retry.pause(stop, seconds)
        return
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await w
    wake.clear()
