"""Keeps stages running: a stage that fails is logged, counted (`yj_stage_restarts_total`),
marked restarting in `Health` (so `/readyz` answers 503 and the system alert
`stage_down` is raised) and started again after a backoff that doubles while it keeps
failing and starts over once it has run for `healthy_after_s`.

Errors in `fatal` are not restarted: they end the process (an API port already taken)."""

from __future__ import annotations

import asyncio
import logging

from yujing.pipeline import retry
from yujing.pipeline.stage import Runtime, Stage

log = logging.getLogger(__name__)

RESTART = retry.Backoff(first_s=1.0, max_s=30.0)


class Supervisor:
    def __init__(
        self,
        rt: Runtime,
        *,
        backoff: retry.Backoff = RESTART,
        healthy_after_s: float = 30.0,
        fatal: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.rt = rt
        self.backoff = backoff
        self.healthy_after_s = healthy_after_s
        self.fatal = fatal

    async def run(self, stage: Stage, stop: asyncio.Event) -> None:
        health = self.rt.health
        loop = asyncio.get_running_loop()
        delays = self.backoff.delays()
        while not stop.is_set():
            health.running(stage.name)
            started = loop.time()
            try:
                await stage.run(self.rt, stop)
            except Exception as exc:
                self._raise_fatal(exc)
                error: Exception = exc
            else:
                if stop.is_set():
                    break
                error = RuntimeError(f"stage {stage.name} returned before stop")
            if loop.time() - started >= self.healthy_after_s:
                delays.reset()
            health.failed(stage.name, error)
            target = retry.target_of(_first(error))
            if target is not None:
                health.refused(stage.name, target, error, restart=True)
            wait = delays.next()
            log.error("stage %s failed, restarting in %.0f s", stage.name, wait, exc_info=error)
            await retry.pause(stop, wait)
        health.stopped(stage.name)

    def _raise_fatal(self, exc: Exception) -> None:
        for leaf in _leaves(exc):
            if isinstance(leaf, self.fatal):
                raise leaf


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def _first(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
