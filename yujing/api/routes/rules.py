"""`/rules`: the rule set. Every change is stored as a new version (who, when) and then
published on `yj.rules`, which every running engine swaps in between two batches.
An invalid rule is refused here (422 with each problem) and never reaches an engine.

Who may do what: anyone with a token sees the rules that apply inside their scope; an
admin creates, replaces and deletes rules; an operator may PATCH the numbers of a rule
(levels, clear, deadband, delays). A rule scoped to enterprises may be changed by a scoped
token covering all of them; a global rule (`enterprises: ["*"]`) only by a global token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field, ValidationError

from yujing.api.auth import Principal
from yujing.api.deps import Admin, BusDep, Operator, Pool, Viewer
from yujing.api.problems import Problem
from yujing.api.query import Instant, check_range
from yujing.ingest import topics
from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import Topics
from yujing.levels import Level
from yujing.names import IDENTIFIER
from yujing.rules import store
from yujing.rules.backtest import Summary, summarise
from yujing.rules.engine import Engine
from yujing.rules.model import Rule, parse_rule, rule_json
from yujing.rules.transition import Transition

router = APIRouter(prefix="/rules", tags=["rules"])

RuleId = Annotated[str, Path(pattern=IDENTIFIER.pattern)]
RuleBody = Annotated[
    dict[str, Any],
    Body(
        description="a rule (docs/contracts.md 'Rules'), or the object GET returns: its `rule`"
        " is used and its `version`, when given, must still be the current one",
        examples=[{"id": "face-ch4", "kind": "threshold", "name": "采煤工作面甲烷",
                   "select": {"device_kind": "gas_detector", "point": "ch4"},
                   "levels": {"yellow": 0.8, "orange": 1.0, "red": 1.5}}],
    ),
]  # fmt: skip
BACKTEST_MAX_READINGS = 2_000_000
# What PATCH may change: the numbers an operator tunes, never what the rule watches.
TUNABLE = frozenset({"levels", "clear", "deadband", "for_s", "clear_for_s", "window_s", "epsilon"})


class RulePublic(BaseModel):
    """The stored rule with its version; PUT takes this same object back."""

    id: str
    version: int
    kind: str
    enterprises: list[str] = Field(description='["*"] for a global rule, else enterprise ids')
    rule: dict[str, Any] = Field(description="the rule as written (defaults left out)")
    changed_at: datetime
    changed_by: str


class RulePage(BaseModel):
    items: list[RulePublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class RuleVersion(BaseModel):
    version: int
    rule: dict[str, Any] | None
    deleted: bool
    changed_at: datetime
    changed_by: str


class RulePatch(BaseModel):
    """A JSON merge patch (RFC 7396) of the rule's numbers; `null` removes a key."""

    model_config = {"extra": "forbid"}
    version: int | None = Field(default=None, description="refuse if the rule moved on (409)")
    levels: dict[str, Any] | None = None
    clear: dict[str, Any] | None = None
    deadband: float | None = None
    for_s: float | dict[str, Any] | None = None
    clear_for_s: float | None = None
    window_s: float | None = None
    epsilon: float | None = None


class BacktestRequest(BaseModel):
    rule: dict[str, Any] | None = Field(
        default=None, description="the proposed rule; default: the current one"
    )
    since: Instant
    until: Instant
    enterprise: str | None = Field(default=None, pattern=IDENTIFIER.pattern)


class BacktestTransition(BaseModel):
    key: str
    at: datetime = Field(description="event time of the deciding reading")
    from_level: str
    to_level: str
    value: float | None
    threshold: float | None


class BacktestSummary(BaseModel):
    alerts: int = Field(description="alerts raised (from no alert)")
    by_level: dict[str, int] = Field(description="entries into each level")
    time_in_alarm_s: float = Field(description="summed over conditions; open ones to `until`")
    open_at_end: int


class BacktestResult(BaseModel):
    readings: int
    since: datetime
    until: datetime
    proposed: list[BacktestTransition]
    proposed_summary: BacktestSummary
    current: list[BacktestTransition] | None
    current_summary: BacktestSummary | None
    difference: BacktestSummary | None = Field(description="proposed minus current")


def _public(s: store.StoredRule) -> RulePublic:
    return RulePublic(id=s.rule.id, version=s.version, kind=s.rule.kind,
                      enterprises=list(s.rule.enterprises), rule=rule_json(s.rule),
                      changed_at=s.changed_at, changed_by=s.changed_by)  # fmt: skip


def _parse(body: dict[str, Any]) -> Rule:
    try:
        return parse_rule(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Problem(
            422, "Invalid rule", "; ".join(f"{e['msg']}" for e in errors), errors=errors
        ) from None


def sees(principal: Principal, rule: Rule) -> bool:
    """A rule is visible to whoever it may fire for."""
    scope = rule.scope
    if principal.enterprises is None or scope is None:
        return True
    return bool(scope & principal.enterprises)


def _may_change(principal: Principal, rule: Rule) -> None:
    scope = rule.scope
    if principal.enterprises is None:
        return
    if scope is None:
        raise Problem(
            403,
            "Forbidden",
            'a global rule (enterprises ["*"]) is changed only'
            " by a token of every enterprise; name your enterprises in `enterprises`",
        )
    outside = sorted(scope - principal.enterprises)
    if outside:
        raise Problem(403, "Forbidden", f"enterprises outside your scope: {', '.join(outside)}")


async def _visible_rule(pool: Pool, principal: Principal, rule_id: str) -> store.StoredRule:
    try:
        stored = await store.get_rule(pool, rule_id)
    except store.RuleNotFound:
        stored = None
    if stored is None or not sees(principal, stored.rule):
        raise Problem(404, "Not found", f"no rule {rule_id}")
    return stored


async def _announce(bus: BusDep, rule_id: str, version: int, body: dict[str, Any] | None) -> None:
    await bus.publish(Topics.RULES, [topics.rule_change(rule_id, version, body)])


@router.get("", response_model=RulePage)
async def list_rules(
    principal: Viewer,
    pool: Pool,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> RulePage:
    rules = [s for s in await store.list_rules(pool) if sees(principal, s.rule)]
    rules = [s for s in rules if (kind is None or s.rule.kind == kind)
             and (cursor is None or s.rule.id > cursor)]  # fmt: skip
    page = rules[:limit]
    more = len(rules) > limit
    return RulePage(
        items=[_public(s) for s in page], next_cursor=page[-1].rule.id if more else None
    )


@router.post("", status_code=201)
async def create_rule(
    body: RuleBody, principal: Admin, pool: Pool, bus: BusDep, response: Response
) -> RulePublic:
    rule = _parse(_unwrap(body)[0])
    _may_change(principal, rule)
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
    return _public(await _visible_rule(pool, principal, rule_id))


def _unwrap(body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The rule and the expected version, from a bare rule or from what GET returned."""
    if not isinstance(body.get("rule"), dict):
        return body, None
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise Problem(422, "Invalid rule", "version is the integer GET returned")
    return body["rule"], version


async def _replace(
    principal: Principal, pool: Pool, bus: BusDep, rule: Rule, expected: int | None
) -> RulePublic:
    current = await _visible_rule(pool, principal, rule.id)
    _may_change(principal, current.rule)
    _may_change(principal, rule)
    try:
        stored = await store.update_rule(pool, rule, principal.name, expected_version=expected)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule.id}; POST /rules creates it") from None
    except store.VersionConflict as exc:
        detail = f"the rule changed meanwhile: it is at version {exc.current}; GET it again"
        raise Problem(409, "Conflict", detail, current_version=exc.current) from None
    await _announce(bus, rule.id, stored.version, rule_json(rule))
    return _public(stored)


@router.put("/{rule_id}")
async def put_rule(
    rule_id: RuleId, body: RuleBody, principal: Admin, pool: Pool, bus: BusDep
) -> RulePublic:
    """Replace the rule: send a rule, or the object GET returned (edited)."""
    raw, expected = _unwrap(body)
    rule = _parse({**raw, "id": raw.get("id", rule_id)})
    if rule.id != rule_id:
        raise Problem(422, "Invalid rule", f"the body's id {rule.id} is not the path's {rule_id}")
    return await _replace(principal, pool, bus, rule, expected)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@router.patch("/{rule_id}")
async def patch_rule(
    rule_id: RuleId,
    principal: Operator,
    pool: Pool,
    bus: BusDep,
    body: Annotated[dict[str, Any], Body(examples=[{"levels": {"red": 1.4}}])],
) -> RulePublic:
    """Tune numbers only (operators may): a JSON merge patch of levels, clear, deadband,
    for_s, clear_for_s, window_s or epsilon, e.g. `{"levels": {"red": 1.4}}`."""
    other = sorted(set(body) - TUNABLE - {"version"})
    if other:
        raise Problem(422, "Invalid request", f"PATCH changes only {', '.join(sorted(TUNABLE))};"
                      f" {', '.join(other)} is changed by an admin with PUT")  # fmt: skip
    try:
        patch = RulePatch.model_validate(body)
    except ValidationError as exc:
        raise Problem(422, "Invalid request", str(exc.errors()[0]["msg"])) from None
    current = await _visible_rule(pool, principal, rule_id)
    changes = {k: v for k, v in body.items() if k != "version"}
    rule = _parse(_merge(rule_json(current.rule), changes))
    return await _replace(principal, pool, bus, rule, patch.version)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: RuleId, principal: Admin, pool: Pool, bus: BusDep) -> Response:
    current = await _visible_rule(pool, principal, rule_id)
    _may_change(principal, current.rule)
    try:
        version = await store.delete_rule(pool, rule_id, principal.name)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}") from None
    await _announce(bus, rule_id, version, None)
    return Response(status_code=204)


@router.get("/{rule_id}/versions")
async def versions(rule_id: RuleId, principal: Viewer, pool: Pool) -> list[RuleVersion]:
    """Every version, deletions included; visible to whoever may see the rule's last body."""
    try:
        rows = await store.rule_versions(pool, rule_id)
    except store.RuleNotFound:
        raise Problem(404, "Not found", f"no rule {rule_id}") from None
    last = next((r["body"] for r in reversed(rows) if r["body"] is not None), None)
    if last is None or not sees(principal, parse_rule(last)):
        raise Problem(404, "Not found", f"no rule {rule_id}")
    return [RuleVersion(version=r["version"], rule=r["body"], deleted=r["deleted"],
                        changed_at=r["changed_at"],
                        changed_by=r["changed_by"]) for r in rows]  # fmt: skip


def _readings_scope(principal: Principal, rule: Rule, wanted: str | None) -> list[str] | None:
    scope = principal.scope(wanted)
    if rule.scope is None:
        return scope
    return sorted(rule.scope if scope is None else rule.scope & set(scope))


@router.post("/{rule_id}/backtest")
async def backtest(
    rule_id: RuleId, body: BacktestRequest, principal: Viewer, pool: Pool
) -> BacktestResult:
    """The proposed rule over stored readings of a period (event time, the same engine),
    beside what the current version of the rule gives on the same readings, with a summary
    of each and their difference."""
    check_range(body.since, body.until)
    current: store.StoredRule | None
    try:
        current = await _visible_rule(pool, principal, rule_id)
    except Problem:
        current = None
    if body.rule is None and current is None:
        raise Problem(404, "Not found", f"no rule {rule_id}, and no proposed rule in the request")
    proposed = _parse({**body.rule, "id": rule_id}) if body.rule is not None else current.rule  # type: ignore[union-attr]
    readings = await _readings(
        pool, body.since, body.until, _readings_scope(principal, proposed, body.enterprise)
    )
    # An alarm still open is counted to the last reading, not to an `until` in the future.
    end = int(body.until.timestamp() * 1000)
    if len(readings):
        end = min(end, int(readings.ts.max()))
    mine = _run(proposed, 0, readings)
    theirs = _run(current.rule, current.version, readings) if current is not None else None
    ours_sum = summarise(mine, end)
    theirs_sum = summarise(theirs, end) if theirs is not None else None
    return BacktestResult(
        readings=len(readings), since=body.since, until=body.until,
        proposed=_public_transitions(mine), proposed_summary=_summary(ours_sum),
        current=_public_transitions(theirs) if theirs is not None else None,
        current_summary=_summary(theirs_sum) if theirs_sum else None,
        difference=_summary(ours_sum.minus(theirs_sum)) if theirs_sum else None,
    )  # fmt: skip


def _summary(s: Summary) -> BacktestSummary:
    return BacktestSummary(
        alerts=s.alerts, by_level=s.by_level, time_in_alarm_s=s.time_in_alarm_s,
        open_at_end=s.open_at_end,
    )  # fmt: skip


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


def _run(rule: Rule, version: int, readings: ReadingBatch) -> list[Transition]:
    engine = Engine([(rule.model_copy(update={"enabled": True}), version)])
    return list(engine.on_batch(readings))


def _public_transitions(transitions: list[Transition]) -> list[BacktestTransition]:
    return [
        BacktestTransition(key=t.key, at=datetime.fromtimestamp(t.ts / 1000, UTC),
                           from_level=Level(t.from_level).name.lower(),
                           to_level=Level(t.to_level).name.lower(), value=t.value,
                           threshold=t.threshold)
        for t in transitions
    ]  # fmt: skip
