"""What this process knows about its own stages, read by `/readyz` and turned into system
alerts by `system.SystemWatch`: each stage's state and restarts, the servers that refuse
work right now, and how far each consumer group lags behind its topics."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

RESTARTS = Counter("yj_stage_restarts_total", "Stages restarted after a failure", ["stage"])
UP = Gauge("yj_stage_up", "1 while the stage runs, 0 while it waits to be restarted", ["stage"])
RETRIES = Counter(
    "yj_stage_retries_total", "Work retried after a passing outage", ["stage", "target"]
)
LAG = Gauge("yj_consumer_lag_records", "Records the consumer group has not read yet", ["group"])


class StageState(enum.StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # failed; the supervisor starts it again after a backoff
    STOPPED = "stopped"  # ended with the process


@dataclass(slots=True)
class StageReport:
    state: StageState
    restarts: int = 0
    since: float = 0.0  # when it entered this state (clock seconds)
    error: str | None = None  # the last failure, kept once it runs again


@dataclass(slots=True)
class Trouble:
    """A server refusing work since `since` (clock seconds), with the last error."""

    since: float
    error: str
    stage: str
    # Reported by the supervisor (the stage failed on it): over once the stage has run
    # long enough, since a stage without retries of its own never says it went through.
    restart: bool = False


@dataclass
class Health:
    clock: Callable[[], float]
    stages: dict[str, StageReport] = field(default_factory=dict)
    # By (target, stage): the database or the bus refusing one stage's work.
    troubles: dict[tuple[str, str], Trouble] = field(default_factory=dict)
    lags: dict[str, int] = field(default_factory=dict)  # by consumer group

    def running(self, stage: str) -> None:
        report = self.stages.get(stage)
        restarts, error = (report.restarts, report.error) if report else (0, None)
        self.stages[stage] = StageReport(StageState.RUNNING, restarts, self.clock(), error)
        UP.labels(stage).set(1)

    def failed(self, stage: str, error: BaseException) -> None:
        report = self.stages.get(stage)
        restarts = (report.restarts if report else 0) + 1
        self.stages[stage] = StageReport(
            StageState.RESTARTING, restarts, self.clock(), describe(error)
        )
        RESTARTS.labels(stage).inc()
        UP.labels(stage).set(0)

    def stopped(self, stage: str) -> None:
        report = self.stages.get(stage)
        restarts, error = (report.restarts, report.error) if report else (0, None)
        self.stages[stage] = StageReport(StageState.STOPPED, restarts, self.clock(), error)
        UP.labels(stage).set(0)

    def refused(
        self, stage: str, target: str, error: BaseException, *, restart: bool = False
    ) -> None:
        """`target` refused work just now (it is retried, or the stage restarted)."""
        RETRIES.labels(stage, target).inc()
        seen = self.troubles.get((target, stage))
        since = seen.since if seen else self.clock()
        self.troubles[target, stage] = Trouble(since, describe(error), stage, restart)

    def accepted(self, stage: str, target: str | None = None) -> None:
        """Work of `stage` that needs `target` (None: every server it uses) went through:
        the troubles it reported there are over."""
        for name, of in list(self.troubles):
            if of == stage and (target is None or name == target):
                del self.troubles[name, of]

    def refusing(self, target: str, now: float, healthy_after_s: float) -> Trouble | None:
        """The longest-standing trouble with `target`, if any stage has one; one that made
        a stage fail is over once the stage has run for `healthy_after_s`."""
        found = []
        for (name, stage), t in self.troubles.items():
            report = self.stages.get(stage)
            recovered = (
                t.restart
                and report is not None
                and report.state is StageState.RUNNING
                and now - report.since >= healthy_after_s
            )
            if name == target and not recovered:
                found.append(t)
        return min(found, key=lambda t: t.since) if found else None

    def lag(self, group: str, records: int) -> None:
        self.lags[group] = records
        LAG.labels(group).set(records)

    def ready(self) -> bool:
        return all(r.state is StageState.RUNNING for r in self.stages.values())

    def public(self) -> dict[str, dict[str, object]]:
        return {
            name: {"state": r.state.value, "restarts": r.restarts, "error": r.error}
            for name, r in sorted(self.stages.items())
        }


def describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return describe(error.exceptions[0])
    return f"{type(error).__name__}: {error}"[:500]
