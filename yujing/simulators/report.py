"""Comparing what yujing reported with a scenario's ground truth: hits, misses, false
alerts, dead letters by reason, and latencies. Pure: observations in, a `Report` out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from yujing.levels import Level
from yujing.simulators.scenario import AlertExpectation, GroundTruth

RAISING = ("raised", "escalated", "reopened")


@dataclass(frozen=True)
class Observed:
    """One alert transition seen on the SSE stream."""

    seq: int
    transition: str
    alert: dict[str, Any]
    offset_s: float  # when it was decided, seconds of simulated time from the scenario start
    latency_s: float | None  # from publishing the deciding reading to receiving this

    @property
    def level(self) -> Level:
        try:
            return Level.parse(str(self.alert.get("level")))
        except ValueError:
            return Level.NONE

    @property
    def key(self) -> str:
        return str(self.alert.get("key", ""))


@dataclass(frozen=True)
class Hit:
    expectation: AlertExpectation
    observed: Observed


@dataclass(frozen=True)
class Miss:
    expectation: AlertExpectation
    why: str


@dataclass(frozen=True)
class FalseAlert:
    key: str
    level: Level
    offset_s: float
    why: str


@dataclass
class Report:
    scenario: str
    hits: list[Hit] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    false_alerts: list[FalseAlert] = field(default_factory=list)
    deadletters: Counter[str] = field(default_factory=Counter)  # by reason
    wrong_deadletters: list[str] = field(default_factory=list)
    picture: list[str] = field(default_factory=list)  # overview vs ground truth (picture.py)
    published: int = 0
    transitions: int = 0
    wall_s: float = 0.0
    speed: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.misses or self.false_alerts or self.wrong_deadletters or self.picture)

    @property
    def latencies(self) -> list[float]:
        return sorted(h.observed.latency_s for h in self.hits if h.observed.latency_s is not None)

    def render(self) -> str:
        lines = [
            f"scenario {self.scenario}: {'PASS' if self.ok else 'FAIL'}",
            f"  published {self.published} messages in {self.wall_s:.1f} s at {self.speed:g}x; "
            f"{self.transitions} alert transitions seen",
        ]
        lines.append(
            f"  hits {len(self.hits)}, misses {len(self.misses)}, "
            f"false alerts {len(self.false_alerts)}, wrong dead letters "
            f"{len(self.wrong_deadletters)}"
        )
        for h in self.hits:
            lat = h.observed.latency_s
            lat_text = "" if lat is None else f", {lat * 1000:.0f} ms after publish"
            lines.append(
                f"  hit   {h.expectation.match.describe()} ≥ {h.expectation.level.word}: "
                f"{h.observed.key} {h.observed.level.word} at {h.observed.offset_s:.1f} s"
                f"{lat_text}"
            )
        lines += [
            f"  MISS  {m.expectation.match.describe()} ≥ {m.expectation.level.word} "
            f"within {m.expectation.window}: {m.why}"
            for m in self.misses
        ]
        lines += [
            f"  FALSE {f.key} {f.level.word} at {f.offset_s:.1f} s: {f.why}"
            for f in self.false_alerts
        ]
        dl = ", ".join(f"{r} {n}" for r, n in sorted(self.deadletters.items())) or "none"
        lines.append(f"  dead letters: {dl}")
        lines += [f"  WRONG dead letters: {w}" for w in self.wrong_deadletters]
        lines += [f"  PICTURE {p}" for p in self.picture]
        lats = self.latencies
        if lats:
            lines.append(
                f"  latency publish → SSE: p50 {percentile(lats, 50) * 1000:.0f} ms, "
                f"p99 {percentile(lats, 99) * 1000:.0f} ms (n={len(lats)})"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def judge_alerts(report: Report, truth: GroundTruth, observed: list[Observed]) -> None:
    """Fill hits, misses and false alerts from the transitions seen."""
    raising = sorted((o for o in observed if o.transition in RAISING), key=lambda o: o.seq)
    for exp in truth.alerts:
        mine = [o for o in raising if exp.match.matches(o.alert)]
        reached = [o for o in mine if o.level >= exp.level]
        a, b = exp.window
        first = reached[0] if reached else None
        if first is None:
            peak = max((o.level for o in mine), default=Level.NONE)
            report.misses.append(
                Miss(exp, "never reached" + (f" (peak {peak.word})" if peak else ""))
            )
        elif not a <= first.offset_s <= b:
            side = "early" if first.offset_s < a else "late"
            report.misses.append(
                Miss(exp, f"reached {first.level.word} {side}, at {first.offset_s:.1f} s")
            )
        else:
            report.hits.append(Hit(exp, first))
    for o in raising:
        why = _false_because(o, truth)
        if why:
            report.false_alerts.append(FalseAlert(o.key, o.level, o.offset_s, why))


def _false_because(o: Observed, truth: GroundTruth) -> str:
    for q in truth.quiet:
        if q.match.matches(o.alert):
            return f"must not fire ({q.note or 'quiet'})"
    limits = [e.max_level for e in truth.alerts if e.match.matches(o.alert)]
    limits += [a.max_level for a in truth.allow if a.match.matches(o.alert)]
    if not limits:
        return "not expected"
    if o.level > max(limits):
        return f"above the expected {max(limits).word}"
    return ""


def judge_deadletters(report: Report, truth: GroundTruth, letters: list[dict[str, Any]]) -> None:
    """Dead letters of the run by (reason, enterprise, device), against the expected counts."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for dl in letters:
        enterprise, device = _origin(dl)
        seen[(str(dl.get("reason")), enterprise, device)] += 1
        report.deadletters[str(dl.get("reason"))] += 1
    wanted: Counter[tuple[str, str, str]] = Counter()
    for e in truth.deadletters:
        wanted[(e.reason, e.enterprise, e.device)] += e.count
    for key in sorted(set(seen) | set(wanted)):
        if seen[key] != wanted[key]:
            reason, enterprise, device = key
            report.wrong_deadletters.append(
                f"{reason} from {enterprise}/{device}: expected {wanted[key]}, got {seen[key]}"
            )


def _origin(dl: dict[str, Any]) -> tuple[str, str]:
    """Enterprise and device of a dead letter; from its topic when ingest could not name them."""
    parts = str(dl.get("topic", "")).split("/")
    enterprise = dl.get("enterprise") or (parts[1] if len(parts) > 1 else "-")
    device = dl.get("device") or (parts[2] if len(parts) > 2 else "-")
    return str(enterprise), str(device)
