"""The few calls of yujing's HTTP API the simulators make (docs/contracts.md, "HTTP API")."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from yujing.simulators.fleet import DeviceRegistration, EnterpriseRegistration, Site


class ApiError(RuntimeError):
    pass


@dataclass(frozen=True)
class SseEvent:
    id: str
    event: str
    data: dict[str, Any]
    received: float  # wall clock, epoch seconds


class YujingApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise ApiError(
                f"{response.request.method} {response.request.url}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return response

    async def register(
        self, devices: Iterable[DeviceRegistration], *, concurrency: int = 16
    ) -> int:
        """PUT every device's record; returns how many."""
        gate = asyncio.Semaphore(concurrency)

        async def one(d: DeviceRegistration) -> None:
            async with gate:
                await self._check(
                    await self.client.put(f"/devices/{d.enterprise}/{d.device}", json=d.record())
                )

        items = list(devices)
        await asyncio.gather(*(one(d) for d in items))
        return len(items)

    async def unregister(
        self, devices: Iterable[DeviceRegistration], *, concurrency: int = 16
    ) -> int:
        """DELETE every device's record (one already gone counts as deleted); how many."""
        gate = asyncio.Semaphore(concurrency)

        async def one(d: DeviceRegistration) -> None:
            async with gate:
                r = await self.client.delete(f"/devices/{d.enterprise}/{d.device}")
                if r.status_code != 404:
                    await self._check(r)

        items = list(devices)
        await asyncio.gather(*(one(d) for d in items))
        return len(items)

    async def register_enterprises(self, registrations: Iterable[EnterpriseRegistration]) -> int:
        """PUT every enterprise's record (before its devices); returns how many."""
        n = 0
        for reg in registrations:
            await self._check(
                await self.client.put(f"/enterprises/{reg.enterprise}", json=reg.record)
            )
            n += 1
        return n

    async def overview(self, enterprises: Iterable[str]) -> list[dict[str, Any]]:
        """The overview rows of these enterprises (the caller's scope may hold others)."""
        wanted = set(enterprises)
        body = await self._check(await self.client.get("/overview", params={"limit": 10_000}))
        return [i for i in body.json()["items"] if i["enterprise"] in wanted]

    async def map_features(self) -> list[dict[str, Any]]:
        body = await self._check(await self.client.get("/map"))
        features: list[dict[str, Any]] = body.json()["features"]
        return features

    async def alarm_groups(self, enterprise: str) -> list[dict[str, Any]]:
        """An enterprise's alarm statistics over two days around now: a scenario's event
        time starts behind the wall clock and may end ahead of it."""
        now = datetime.now(UTC)
        params = {
            "enterprise": enterprise, "period": "month",
            "since": (now - timedelta(days=1)).isoformat(),
            "until": (now + timedelta(days=1)).isoformat(),
        }  # fmt: skip
        body = await self._check(await self.client.get("/statistics/alarms", params=params))
        groups: list[dict[str, Any]] = body.json()["groups"]
        return groups

    async def set_site_states(self, sites: Iterable[Site]) -> None:
        for s in sites:
            await self._check(
                await self.client.patch(f"/sites/{s.enterprise}/{s.site}", json={"state": s.state})
            )

    async def pages(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            body = (await self._check(await self.client.get(path, params=query))).json()
            items.extend(body.get("items", []))
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    async def deadletters(self, since: str) -> list[dict[str, Any]]:
        return await self.pages("/deadletters", {"since": since})

    async def alerts(self, enterprise: str, since: str) -> list[dict[str, Any]]:
        return await self.pages("/alerts", {"enterprise": enterprise, "since": since})


async def sse_events(
    api: YujingApi,
    *,
    ready: asyncio.Event | None = None,
    say: Callable[[str], None] = print,
) -> AsyncIterator[SseEvent]:
    """Alert transitions from `GET /alerts/stream`, resuming with Last-Event-ID after a drop."""
    last_id = ""
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            async with api.client.stream(
                "GET", "/alerts/stream", headers=headers, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                await api._check(response)
                if ready is not None:
                    ready.set()
                async for ev in _parse_sse(response.aiter_lines()):
                    if ev.id:
                        last_id = ev.id
                    yield ev
        except (httpx.TransportError, ApiError) as exc:
            say(f"SSE stream: {exc}; reconnecting")
            await asyncio.sleep(1.0)


async def _parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    ev_id, ev_type = "", "message"
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except json.JSONDecodeError:
                    payload = None
                # Kept even without a JSON object: a `resync` says transitions were lost.
                body = payload if isinstance(payload, dict) else {}
                yield SseEvent(ev_id, ev_type, body, time.time())
            ev_id, ev_type, data = "", "message", []
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            ev_id = value
        elif name == "event":
            ev_type = value
        elif name == "data":
            data.append(value)
