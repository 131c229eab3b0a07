"""A test kit for alert timelines (bytewax style): engine level changes at timeline seconds,
a clock the test moves, and a real HTTP webhook receiver on loopback. Used by the tests
and handy in a REPL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


@dataclass
class WebhookReceiver:
    """Answers each path with its next scripted status (then 200) and keeps what it got:
    (path, headers, body)."""

    script: dict[str, list[int]] = field(default_factory=dict)
    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    reply: bytes = b""  # the body of every answer

    async def endpoint(self, request: Request) -> Response:
        path = request.url.path
        self.got.append((path, dict(request.headers), await request.body()))
        statuses = self.script.get(path, [])
        return Response(self.reply, status_code=statuses.pop(0) if statuses else 200)

    @contextlib.asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[str]:
        """Serves on 127.0.0.1:`port`; yields the base URL."""
        app = Starlette(routes=[Route("/{name}", self.endpoint, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())

        async def started() -> bool:
            if task.done():
                task.result()  # raises what stopped the server
            return bool(server.started)

        await wait_for(started)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task
