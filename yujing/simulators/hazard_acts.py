"""The hazard part of a scenario (`hazards:` in its file): people taking the steps of the
closed loop through the API after the readings are in, and the ground truth of each step.

Each act is one hazard: proposed by yujing from repeated alarms on a point (`from_alarms`)
or reported by someone (`report`). Its `steps` are taken in order by an actor (operator,
operator2, supervisor: tokens the checker makes for the scenario's enterprises); a step
with `status` expects that refusal instead. `wait_for` waits for a step yujing takes itself
(overdue, escalated). `expect` is the hazard's history, step by step, that must result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from yujing.simulators.api import YujingApi
from yujing.simulators.fleet import FleetError

ACTORS = {"operator": "operator", "operator2": "operator", "supervisor": "supervisor"}
DOS = (
    "confirm", "plan", "evidence", "rectified", "send_back", "sign_off", "list", "dismiss",
    "close_alerts",
)  # fmt: skip
# A minimal PNG (signature and an IHDR chunk header): enough for yujing's type check.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 17


@dataclass(frozen=True)
class Step:
    do: str  # one of DOS, or "wait_for"
    actor: str = "operator"
    status: int | None = None  # expected refusal (403, 409, 422, …); None: must succeed
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HazardAct:
    name: str
    enterprise: str
    steps: tuple[Step, ...]
    expect: tuple[str, ...]  # the hazard's history, step names in order
    from_alarms: dict[str, Any] | None = None  # {device, point, alerts: how many linked}
    report: dict[str, Any] | None = None  # the POST /hazards body (without enterprise)
    timeout_s: float = 120.0


def parse_acts(raw: list[Any], enterprises: list[str]) -> tuple[HazardAct, ...]:
    acts = []
    for n, spec in enumerate(raw):
        where = f"hazards[{n}]"
        enterprise = str(spec.get("enterprise") or (enterprises[0] if enterprises else ""))
        if enterprise not in enterprises:
            raise FleetError(f"{where}: enterprise {enterprise!r} is not in the fleet")
        if ("from_alarms" in spec) == ("report" in spec):
            raise FleetError(f"{where}: give exactly one of from_alarms and report")
        steps = tuple(_step(s, f"{where}.steps[{i}]") for i, s in enumerate(spec["steps"]))
        acts.append(
            HazardAct(
                str(spec.get("name", where)),
                enterprise,
                steps,
                tuple(str(x) for x in spec["expect"]),
                spec.get("from_alarms"),
                spec.get("report"),
                float(spec.get("timeout_s", 120)),
            )
        )
    return tuple(acts)


def _step(spec: dict[str, Any], where: str) -> Step:
    if "wait_for" in spec:
        return Step("wait_for", "system", None, {"step": str(spec["wait_for"])})
    do = str(spec.get("do"))
    if do not in DOS:
        raise FleetError(f"{where}: do {do!r} is not one of {', '.join(DOS)}")
    actor = str(spec.get("as", "operator"))
    if actor not in ACTORS:
        raise FleetError(f"{where}: as {actor!r} is not one of {', '.join(ACTORS)}")
    status = spec.get("status")
    args = {k: v for k, v in spec.items() if k not in ("do", "as", "status")}
    return Step(do, actor, None if status is None else int(status), args)


@dataclass
class ActResult:
    name: str
    hazard_id: str | None
    history: list[str]
    failures: list[str]


async def run_acts(
    api: YujingApi, acts: tuple[HazardAct, ...], say: Callable[[str], None]
) -> list[ActResult]:
    """Takes every act's steps; returns, per act, its history and what went wrong."""
    enterprises = sorted({a.enterprise for a in acts})
    clients = {name: await _client(api, name, role, enterprises) for name, role in ACTORS.items()}
    try:
        return [await _run(api, clients, act, say) for act in acts]
    finally:
        for c in clients.values():
            await c.aclose()


async def _client(api: YujingApi, name: str, role: str, ents: list[str]) -> httpx.AsyncClient:
    body = {"name": f"scenario-{name}", "role": role, "enterprises": ents}
    r = await api.client.post("/tokens", json=body)
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    return httpx.AsyncClient(base_url=api.client.base_url, headers=headers, timeout=30.0)


async def _run(
    api: YujingApi,
    clients: dict[str, httpx.AsyncClient],
    act: HazardAct,
    say: Callable[[str], None],
) -> ActResult:
    result = ActResult(act.name, None, [], [])
    hid = await _start(api, clients, act, result)
    if hid is None:
        return result
    result.hazard_id = hid
    for step in act.steps:
        if step.do == "wait_for":
            if not await _wait_for(api, hid, step.args["step"], act.timeout_s):
                result.failures.append(f"yujing did not take step {step.args['step']!r} in time")
            continue
        r = await _take(clients[step.actor], api, hid, step)
        want = step.status or 200
        got = r.status_code if r.status_code not in (201,) else 200
        if got != want:
            result.failures.append(
                f"{step.do} as {step.actor}: HTTP {r.status_code}, expected {want}: {r.text[:200]}"
            )
    detail = (await api.client.get(f"/hazards/{hid}")).json()
    result.history = [c["transition"] for c in detail.get("history", [])]
    if result.history != list(act.expect):
        result.failures.append(f"history {result.history} != expected {list(act.expect)}")
    say(f"hazard {act.name}: {' → '.join(result.history)}")
    return result


async def _start(
    api: YujingApi, clients: dict[str, httpx.AsyncClient], act: HazardAct, result: ActResult
) -> str | None:
    if act.report is not None:
        actor = str(act.report.get("as", "supervisor"))
        body = {k: v for k, v in act.report.items() if k != "as"}
        r = await clients[actor].post("/hazards", json={**body, "enterprise": act.enterprise})
        if r.status_code != 201:
            result.failures.append(f"report: HTTP {r.status_code}: {r.text[:200]}")
            return None
        return str(r.json()["id"])
    spec = act.from_alarms or {}
    params = {"enterprise": act.enterprise, "device": spec["device"], "source": "alarm"}
    deadline = time.monotonic() + act.timeout_s
    while time.monotonic() < deadline:
        found = await api.pages("/hazards", params)
        mine = [h for h in found if h.get("point") == spec.get("point")]
        if mine:
            linked = len(mine[0]["alert_ids"])
            if "alerts" in spec and linked != int(spec["alerts"]):
                result.failures.append(f"proposal links {linked} alerts, not {spec['alerts']}")
            return str(mine[0]["id"])
        await asyncio.sleep(1.0)
    result.failures.append(f"no hazard proposed from alarms on {spec['device']}/{spec['point']}")
    return None


async def _wait_for(api: YujingApi, hid: str, step: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        history = (await api.client.get(f"/hazards/{hid}")).json().get("history", [])
        if any(c["transition"] == step for c in history):
            return True
        await asyncio.sleep(0.5)
    return False


async def _take(c: httpx.AsyncClient, api: YujingApi, hid: str, step: Step) -> httpx.Response:
    a = step.args
    path = f"/hazards/{hid}"
    if step.do == "evidence":
        body = b"" if a.get("file") == "empty" else PNG
        return await c.post(f"{path}/evidence", files={"file": ("photo.png", body, "image/png")})
    if step.do == "close_alerts":
        return await _close_alerts(c, api, hid, a.get("follow_up"))
    soon = datetime.now(UTC) + timedelta(seconds=float(a.get("deadline_s", 3600)))
    bodies: dict[str, dict[str, Any]] = {
        "confirm": {}, "sign_off": {}, "rectified": {"note": a.get("note", "整改完成")},
        "send_back": {"reason": a.get("reason", "证据不足")},
        "dismiss": {"reason": a.get("reason", "误报")},
        "plan": {
            "responsible_unit": "安全科", "responsible_person": "张工",
            "measures": a.get("measures", "按方案整改"), "deadline": soon.isoformat(),
        },
        "list": {"deadline": soon.isoformat()},
    }  # fmt: skip
    return await c.post(f"{path}/{step.do.replace('_', '-')}", json=bodies[step.do])


async def _close_alerts(
    c: httpx.AsyncClient, api: YujingApi, hid: str, follow_up: dict[str, Any] | None
) -> httpx.Response:
    """Close every alert the hazard links (resolved by then); the last answer, or the first
    refusal, is the step's."""
    ids = (await api.client.get(f"/hazards/{hid}")).json()["alert_ids"]
    body: dict[str, Any] = {"disposal": "现场核查处置完毕"}
    if follow_up:
        body["follow_up"] = follow_up
    r = httpx.Response(404, text="no linked alert")
    for alert_id in ids:
        r = await c.post(f"/alerts/{alert_id}/close", json=body)
        if r.status_code != 200:
            return r
    return r
