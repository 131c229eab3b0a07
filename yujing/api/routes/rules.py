"""`/rules`: the rule set. Every change is stored as a new version (who, when) and then
published on `yj.rules`, which every running engine swaps in between two batches.
An invalid rule is refused here (422 with each problem) and never reaches an engine."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, Field, ValidationError

from yujing.api.deps import Admin, BusDep, Pool, Viewer
from yujing.api.problems import Problem
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import Topics
from yujing.levels import Level
from yujing.names import IDENTIFIER
from yujing.rules import store
from yujing.rules.engine import Engine
from yujing.rules.model import Rule, parse_rule, rule_json

router = APIRouter(prefix="/rules", tags=["rules"])

RuleId = Annotated[str, Path(pattern=IDENTIFIER.pattern)]
RuleBody = Annotated[dict[str, Any], Body(description="a rule, as in CONTRACTS.md 'Rules'")]
BACKTEST_MAX_READINGS = 2_000_000


class RulePublic(BaseModel):
    id: str
    version: int
    kind: str
    rule: dict[str, Any]
    changed_at: datetime
    changed_by: str


class RuleVersion(BaseModel):
    version: int
    rule: dict[str, Any] | None
    deleted: bool
    changed_at: datetime
    changed_by: str


class BacktestRequest(BaseModel):
    rule: dict[str, Any] | None = Field(
        default=None, description="the proposed rule; default: the current one"
    )
    since: datetime
    until: datetime
    enterprise: str | None = Field(default=None, pattern=IDENTIFIER.pattern)


class BacktestTransition(BaseModel):
    key: str
    ts: int
    from_level: str
    to_level: str
    value: float | None
    threshold: float | None


class BacktestResult(BaseModel):
    readings: int
    proposed: list[BacktestTransition]
    current: list[BacktestTransition] | None


def _public(s: store.StoredRule) -> RulePublic:
    return RulePublic(id=s.rule.id, version=s.version, kind=s.rule.kind, rule=rule_json(s.rule),
                      changed_at=s.changed_at, changed_by=s.changed_by)  # fmt: skip


def _parse(body: dict[str, Any]) -> Rule:
    try:
        return parse_rule(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Problem(
            422, "Invalid rule", "; ".join(f"{e['msg']}" for e in errors), errors=errors
        ) from None


async def _announce(bus: BusDep, rule_id: str, version: int, body: dict[str, Any] | None) -> None:
    value = {"id": rule_id, "version": version, "deleted": body is None, "rule": body}
    await bus.publish(Topics.RULES, [(rule_id.encode(), json.dumps(value).encode())])


@router.get("")
async def list_rules(principal: Viewer, pool: Pool) -> list[RulePublic]:
    return [_public(s) for s in await store.list_rules(pool)]


@router.post("", status_code=201)
async def create_rule(
    body: RuleBody, principal: Admin, pool: Pool, bus: BusDep, response: Response
) -> RulePublic:
    rule = _parse(body)
    try:
        stored = await store.create_rule(pool, rule, principal.name)
    except store.RuleExists:
        raise Problem(
            409, "Conflict", f"rule {rule.id} exists; PUT /rules/{rule.id} changes it"
        ) from None
    await _announce(bus, rule.id, stored.version, rule_json(rule))
    response.headers["Location"] = f"/api/v1/rules/{rule.id}"
    return _public(stored)


@router.get("/{rule_id}")
async def get_rule(rule_id: RuleId, principal: Viewer, pool: Pool) -> RulePublic:
    try:
        return _public(await store.get_rule(pool, rule_id))
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}") from None


@router.put("/{rule_id}")
async def put_rule(
    rule_id: RuleId, body: RuleBody, principal: Admin, pool: Pool, bus: BusDep
) -> RulePublic:
    rule = _parse({**body, "id": body.get("id", rule_id)})
    if rule.id != rule_id:
        raise Problem(422, "Invalid rule", f"the body's id {rule.id} is not the path's {rule_id}")
    try:
        stored = await store.update_rule(pool, rule, principal.name)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}; POST /rules creates it") from None
    await _announce(bus, rule.id, stored.version, rule_json(rule))
    return _public(stored)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: RuleId, principal: Admin, pool: Pool, bus: BusDep) -> Response:
    try:
        version = await store.delete_rule(pool, rule_id, principal.name)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}") from None
    await _announce(bus, rule_id, version, None)
    return Response(status_code=204)


@router.get("/{rule_id}/versions")
async def versions(rule_id: RuleId, principal: Viewer, pool: Pool) -> list[RuleVersion]:
    try:
        rows = await store.rule_versions(pool, rule_id)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}") from None
    return [RuleVersion(version=r["version"], rule=r["body"], deleted=r["deleted"],
                        changed_at=r["changed_at"],
                        changed_by=r["changed_by"]) for r in rows]  # fmt: skip


@router.post("/{rule_id}/backtest")
async def backtest(
    rule_id: RuleId, body: BacktestRequest, principal: Viewer, pool: Pool
) -> BacktestResult:
    """The proposed rule over stored readings of a period (event time, the same engine),
    beside what the current version of the rule gives on the same readings."""
    current: store.StoredRule | None
    try:
        current = await store.get_rule(pool, rule_id)
    except store.RuleNotFound:
        current = None
    if body.rule is None and current is None:
        raise Problem(404, "Not found", f"no rule {rule_id}, and no proposed rule in the request")
    proposed = _parse({**body.rule, "id": rule_id}) if body.rule is not None else current.rule  # type: ignore[union-attr]
    enterprises = principal.scope(body.enterprise)
    readings = await _readings(pool, body.since, body.until, enterprises)
    return BacktestResult(
        readings=len(readings),
        proposed=_run(proposed, 0, readings),
        current=_run(current.rule, current.version, readings) if current is not None else None,
    )


async def _readings(
    pool: Pool, since: datetime, until: datetime, enterprises: list[str] | None
) -> ReadingBatch:
    rows = await pool.fetch(
        """SELECT s.enterprise, s.device, s.point, d.kind, d.site, d.tags, d.points,
                  (extract(epoch FROM r.ts) * 1000)::bigint AS ts, r.value, r.quality
           FROM readings r JOIN reading_series s ON s.id = r.series
           JOIN devices d ON d.enterprise = s.enterprise AND d.device = s.device
           WHERE r.ts >= $1 AND r.ts < $2 AND ($3::text[] IS NULL OR s.enterprise = ANY($3))
           ORDER BY r.ts LIMIT $4""",
        since, until, enterprises, BACKTEST_MAX_READINGS + 1,
    )  # fmt: skip
    if len(rows) > BACKTEST_MAX_READINGS:
        raise Problem(
            422,
            "Period too long",
            f"more than {BACKTEST_MAX_READINGS} readings; choose a shorter period",
        )
    devices: dict[tuple[str, str], int] = {}
    infos: list[DeviceInfo] = []
    points: dict[str, int] = {}
    dev, pt = [], []
    for r in rows:
        k = (r["enterprise"], r["device"])
        if k not in devices:
            devices[k] = len(infos)
            units = {
                p: str(v.get("unit", ""))
                for p, v in (r["points"] or {}).items()
                if isinstance(v, dict)
            }
            infos.append(
                DeviceInfo(
                    r["enterprise"], r["device"], r["kind"], r["site"], dict(r["tags"] or {}), units
                )
            )
        dev.append(devices[k])
        pt.append(points.setdefault(r["point"], len(points)))
    return ReadingBatch(
        infos, list(points), np.array(dev, np.int32), np.array(pt, np.int32),
        np.array([r["ts"] for r in rows], np.int64),
        np.array([np.nan if r["value"] is None else r["value"] for r in rows], np.float64),
        np.array([r["quality"] for r in rows], np.uint8),
    )  # fmt: skip


def _run(rule: Rule, version: int, readings: ReadingBatch) -> list[BacktestTransition]:
    engine = Engine([(rule.model_copy(update={"enabled": True}), version)])
    return [
        BacktestTransition(key=t.key, ts=t.ts, from_level=Level(t.from_level).name.lower(),
                           to_level=Level(t.to_level).name.lower(), value=t.value,
                           threshold=t.threshold)
        for t in engine.on_batch(readings)
    ]  # fmt: skip
