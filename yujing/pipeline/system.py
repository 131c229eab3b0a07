"""System alerts: the pipeline watching itself (docs/contracts.md, "System alerts").

Each process turns what its `Health` says into alerts of the reserved enterprise
`_system`, through the same store, lifecycle and feeds as every other alert:

- `stage_down`, orange, key `_system/stage.<stage>@<host>/-/stage_down`: a stage failed
  and waits to be restarted (or was restarted less than `healthy_after_s` ago);
- `writes_refused`, red, key `_system/<database|bus>@<host>/-/writes_refused`: that server
  has refused a stage's work for `refused_after_s`;
- `consumer_lag`, yellow, key `_system/group.<group>@<host>/-/consumer_lag`: a consumer
  group is more than `lag_records` behind its topics.

Each resolves when its condition has cleared (a restarted stage after `healthy_after_s`
of running). `_system` is not an enterprise id (ids start with a letter or digit), so no
enterprise-scoped token can name it: only tokens of global scope see system alerts.
The host is in the key because each process reports what it sees itself; on start, a
process resolves what it left raised before it was stopped.

When the database is the server that refuses, the alert cannot be stored until it is
back; meanwhile `/readyz`, `/metrics` (`yj_stage_up`, `yj_stage_retries_total`) and the
log say it, and the pending changes are stored with their original times once it answers.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

import asyncpg

from yujing.alerts.store import AlertStore, StoredChange
from yujing.levels import Level
from yujing.pipeline.health import Health, StageState
from yujing.pipeline.stage import Clock
from yujing.rules.transition import Transition

log = logging.getLogger(__name__)

ENTERPRISE = "_system"
KIND = "system"
# The text of an alert left raised by an earlier run, which is resolved under this name.
_ZH = {"stage_down": "处理阶段异常停止", "writes_refused": "拒绝写入", "consumer_lag": "消费积压"}


@dataclass(frozen=True, slots=True)
class Limits:
    refused_after_s: float = 10.0  # a refusal shorter than this is a blip, not an alert
    lag_records: int = 100_000
    healthy_after_s: float = 30.0  # a restarted stage counts as recovered after this


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    check: str
    level: Level
    name: str  # the Chinese text of the alert message
    value: float | None = None
    threshold: float | None = None
    unit: str = ""


def key(subject: str, check: str) -> str:
    return f"{ENTERPRISE}/{subject}/-/{check}"


def conditions(health: Health, now_s: float, limits: Limits, host: str) -> dict[str, Condition]:
    """What is wrong now, by alert key (pure: a timeline test drives it with a clock)."""
    out: dict[str, Condition] = {}
    for stage, report in health.stages.items():
        recovering = (
            report.state is StageState.RUNNING
            and report.restarts > 0
            and now_s - report.since < limits.healthy_after_s
        )
        if report.state is StageState.RESTARTING or recovering:
            k = key(f"stage.{stage}@{host}", "stage_down")
            name = f"处理阶段 {stage}（{host}）异常停止，已重启 {report.restarts} 次"
            out[k] = Condition(k, "stage_down", Level.ORANGE, name)
    for target, zh in (("database", "数据库"), ("bus", "消息总线")):
        trouble = health.refusing(target, now_s, limits.healthy_after_s)
        if trouble is not None and now_s - trouble.since >= limits.refused_after_s:
            k = key(f"{target}@{host}", "writes_refused")
            name = f"{zh}拒绝写入（{host}，处理阶段 {trouble.stage}）"
            out[k] = Condition(k, "writes_refused", Level.RED, name)
    for group, lag in health.lags.items():
        if lag > limits.lag_records:
            k = key(f"group.{group}@{host}", "consumer_lag")
            name = f"消费组 {group}（{host}）积压"
            out[k] = Condition(
                k, "consumer_lag", Level.YELLOW, name, float(lag), float(limits.lag_records), "条"
            )
    return out


def _transition(c: Condition, before: int, to: Level, ts: int) -> Transition:
    return Transition(
        key=c.key, enterprise=ENTERPRISE, site=None, device=None, point=None,
        rule_id=f"system.{c.check}", rule_version=1, kind=KIND, from_level=before,
        to_level=int(to), ts=ts, value=c.value, threshold=c.threshold, unit=c.unit,
        rule_name=c.name, health=True,
    )  # fmt: skip


class SystemWatch:
    """Raises and resolves this process's system alerts; `check` is one pass."""

    def __init__(
        self,
        health: Health,
        pool: asyncpg.Pool,
        store: AlertStore,
        clock: Clock,
        limits: Limits | None = None,
        host: str | None = None,
    ) -> None:
        self.health = health
        self.pool = pool
        self.store = store
        self.clock = clock
        self.limits = limits or Limits()
        self.host = host or socket.gethostname()
        self.raised: dict[str, tuple[Condition, Level]] | None = None  # None: not loaded
        self._pending: list[Transition] = []

    async def check(self) -> list[StoredChange]:
        if self.raised is None:
            self.raised = await self._left_raised()
        now = self.clock.ms()
        want = conditions(self.health, now / 1000, self.limits, self.host)
        for k, c in want.items():
            _, level = self.raised.get(k, (c, Level.NONE))
            if level != c.level:
                self._pending.append(_transition(c, int(level), c.level, now))
                self.raised[k] = (c, c.level)
        for k, (c, level) in list(self.raised.items()):
            if k not in want:
                self._pending.append(_transition(c, int(level), Level.NONE, now))
                del self.raised[k]
        if not self._pending:
            return []
        # Kept until stored: the database may be what is down (the loop retries).
        stored = await self.store.apply(self._pending)
        self._pending = []
        for s in stored:
            log.warning("system alert %s: %s", s.transition, s.alert.get("message"))
        return stored

    async def _left_raised(self) -> dict[str, tuple[Condition, Level]]:
        """The open system alerts of this host from before a restart, so that they resolve
        if their condition is gone."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT key, rule_id, level FROM alerts WHERE enterprise = $1"
                " AND state IN ('active', 'acknowledged') AND key LIKE $2",
                ENTERPRISE, f"{ENTERPRISE}/%@{_like(self.host)}/-/%",
            )  # fmt: skip
        out = {}
        for r in rows:
            check = r["rule_id"].removeprefix("system.")
            c = Condition(r["key"], check, Level(r["level"]), _ZH.get(check, check))
            out[r["key"]] = (c, Level(r["level"]))
        return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
