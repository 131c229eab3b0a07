"""A plain per-reading implementation of the series rules (threshold, stuck, absent), the
yardstick the vectorised engine is tested against. Written from the rule text, not from
the engine's arrays: no orientation trick, no filled thresholds, no quiet intervals.
Event and composite rules see no readings; both engines use the same code for them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from yujing.ingest.batch import Q_FAULT, Q_OK, DeviceInfo, ReadingBatch, Status
from yujing.levels import Level
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.kind import Owned
from yujing.rules.model import (
    AbsentRule,
    RateRule,
    Rule,
    StuckRule,
    ThresholdRule,
    resolve_bound,
    site_states,
)
from yujing.rules.series import Series
from yujing.rules.signals import Composites
from yujing.rules.transition import Transition


@dataclass
class _State:
    level: int = 0
    up_since: dict[int, int] = field(default_factory=dict)
    down_since: int | None = None
    since: int | None = None  # stuck: start of the unchanged run; fault: start of the fault run
    anchor: float | None = None
    window: list[tuple[int, float]] = field(default_factory=list)  # rate: usable readings
    online: int | None = None  # silence: time of the last `online` status


def absent_seconds(rule: AbsentRule, info: DeviceInfo, point: str) -> dict[int, float]:
    """Level → seconds for this point: intervals times its registered interval; a level
    is never reached before a lower one."""
    every = info.intervals.get(point) or rule.default_interval_s
    secs = {int(Level.parse(w)): s for w, s in rule.levels.items()}
    secs.update({int(Level.parse(w)): n * every for w, n in rule.intervals.items()})
    out: dict[int, float] = {}
    for lv in sorted(secs):
        out[lv] = max([secs[lv], *out.values()])
    return out


class Reference:
    def __init__(self, rules: Sequence[tuple[Rule, int]]) -> None:
        self.entries = [
            RuleEntry(r, v, i)
            for i, (r, v) in enumerate(sorted(rules, key=lambda rv: rv[0].id))
            if r.enabled
        ]
        self.state: dict[tuple[str, str, str], _State] = {}
        self.newest: dict[tuple[str, str], int] = {}
        self.infos: dict[tuple[str, str], DeviceInfo] = {}
        self.site_state: dict[tuple[str, str], str] = {}
        self.late_readings = 0
        self.clock: int | None = None  # the last tick: off_hours rules follow it
        self._series = Series()  # only the device table, for the composites' tag lookups
        self.composites = Composites(self._series)
        for e in self.entries:
            if e.rule.kind == "composite":
                self.composites.bind(e, [], {})

    def on_batch(self, batch: ReadingBatch) -> list[Transition]:
        out: list[Transition] = []
        for i in range(len(batch)):
            info = batch.devices[int(batch.device[i])]
            self._series.add_device(info, 0)
            point = batch.points[int(batch.point[i])]
            ts, v, q = int(batch.ts[i]), float(batch.value[i]), int(batch.quality[i])
            key = (info.key, point)
            if key in self.newest and ts < self.newest[key]:
                self.late_readings += 1
                continue
            self.newest[key] = ts
            self.infos[key] = info
            got = [
                t
                for e in self.entries
                if (t := self._reading(e, info, point, ts, v, q)) is not None
            ]
            out.extend(sorted(got, key=lambda t: t.key))
        return self.composites.feed(out, self._series) if self.composites.active else out

    def _reading(
        self, e: RuleEntry, info: DeviceInfo, point: str, ts: int, v: float, q: int
    ) -> Transition | None:
        if e.rule.kind not in ("threshold", "rate", "absent", "stuck") or not e.rule.binds(
            info.enterprise, info.kind, point, info.tags
        ):
            return None
        rule = e.for_device(info.device)
        st = self.state.setdefault((e.id, info.key, point), _State())
        ok = q == Q_OK and not math.isnan(v)
        if isinstance(rule, ThresholdRule):
            return (
                self._threshold(e, rule, st, info, point, ts, v)
                if ok and self._levels(rule, info)
                else None
            )
        if isinstance(rule, RateRule):
            return self._rate(e, rule, st, info, point, ts, v) if ok else None
        before = st.level
        if isinstance(rule, AbsentRule):
            if rule.signal == "fault" and q == Q_FAULT:
                st.since = ts if st.since is None else st.since
                return None
            st.since, st.level = None, 0
        elif isinstance(rule, StuckRule) and ok:
            if st.anchor is None or abs(v - st.anchor) > rule.epsilon:
                st.anchor, st.since, st.level = v, ts, 0
            else:
                assert st.since is not None
                reached = [
                    int(Level.parse(w))
                    for w, s in rule.levels.items()
                    if ts - st.since >= round(s * 1000)
                ]
                st.level = max([st.level, *reached])
                if st.level > before:
                    bound = rule.levels[Level(st.level).word]  # type: ignore[index]
                    return series_transition(
                        e,
                        info,
                        point,
                        from_level=before,
                        to_level=st.level,
                        ts=ts,
                        value=(ts - st.since) / 1000,
                        threshold=bound,
                        unit="s",
                    )
        if st.level == before:
            return None
        return series_transition(
            e,
            info,
            point,
            from_level=before,
            to_level=st.level,
            ts=ts,
            value=None if math.isnan(v) else v,
            threshold=None,
        )

    def _levels(
        self, rule: ThresholdRule, info: DeviceInfo
    ) -> dict[int, tuple[float, float]] | None:
        """Level → (threshold, clear) for this device, or None when it cannot be bound."""
        out: dict[int, tuple[float, float]] = {}
        for word, bound in rule.levels.items():
            t = resolve_bound(bound, info.tags)
            if t is None:
                return None
            if rule.deadband is not None:
                c: float | None = (
                    t - rule.deadband if rule.direction == "above" else t + rule.deadband
                )
            else:
                c = resolve_bound(rule.clear[word], info.tags) if word in rule.clear else t
            if c is None:
                return None
            out[int(Level.parse(word))] = (t, c)
        above = rule.direction == "above"
        ordered = [out[k] for k in sorted(out)]
        for (t1, _), (t2, _) in itertools.pairwise(ordered):
            if (t2 < t1) if above else (t2 > t1):
                return None
        if any((c > t) if above else (c < t) for t, c in ordered):
            return None
        return out

    def _rate(
        self,
        e: RuleEntry,
        rule: RateRule,
        st: _State,
        info: DeviceInfo,
        point: str,
        ts: int,
        v: float,
    ) -> Transition | None:
        st.window.append((ts, v))
        st.window = [(t, x) for t, x in st.window if ts - t <= round(rule.window_s * 1000)]
        t0, v0 = st.window[0]
        if t0 >= ts:
            return None
        rate = (v - v0) / (ts - t0) * 60_000
        # the rate is graded exactly like a threshold rule with the same levels
        graded = ThresholdRule(id=rule.id, levels=dict(rule.levels), direction=rule.direction,
                               for_s=rule.for_s, clear_for_s=rule.clear_for_s)  # fmt: skip
        if self._levels(graded, info) is None:
            return None  # a tag threshold this device lacks: the rule is not bound to it
        t = self._threshold(e, graded, st, info, point, ts, rate)
        if t is None:
            return None
        unit = info.units.get(point, "")
        return msgspec.structs.replace(t, unit=f"{unit}/min" if unit else "/min")

    def _threshold(
        self,
        e: RuleEntry,
        rule: ThresholdRule,
        st: _State,
        info: DeviceInfo,
        point: str,
        ts: int,
        v: float,
    ) -> Transition | None:
        levels = self._levels(rule, info)
        assert levels is not None
        above = rule.direction == "above"

        def reaches(x: float) -> bool:
            return v >= x if above else v <= x

        states = site_states(rule.site_state)
        gate = (
            states is None
            or self.site_state.get((info.enterprise, info.site), "operating") in states
        ) and (
            rule.off_hours is None or (self.clock is not None and rule.off_hours.active(self.clock))
        )
        target = 0
        if gate:
            up = max((lv for lv, (t, _) in levels.items() if reaches(t)), default=0)
            hold = max(
                (lv for lv, (_, c) in levels.items() if lv <= st.level and reaches(c)), default=0
            )
            target = max(up, hold)
        L = st.level
        for lv in levels:
            if lv > L and target >= lv:
                st.up_since.setdefault(lv, ts)
            else:
                st.up_since.pop(lv, None)
        confirmed = [
            lv
            for lv, since in st.up_since.items()
            if ts - since >= round(rule.level_for_s(Level(lv).word) * 1000)
        ]
        new = max(confirmed, default=L)
        if new == L:
            if target >= L:
                st.down_since = None
                return None
            st.down_since = ts if st.down_since is None else st.down_since
            if ts - st.down_since < round(rule.clear_for_s * 1000):
                return None
            new = target
        bound = levels[new][0] if new > L else levels[min(lv for lv in levels if new < lv <= L)][1]
        st.level, st.down_since = new, None
        st.up_since = {lv: s for lv, s in st.up_since.items() if lv > new}
        return series_transition(
            e,
            info,
            point,
            from_level=L,
            to_level=new,
            ts=ts,
            value=v,
            threshold=bound,
            direction=rule.direction,
        )

    def on_status(self, statuses: list[Status]) -> list[Transition]:
        out: list[Transition] = []
        for status in statuses:
            got = []
            for e in self.entries:
                if isinstance(e.rule, AbsentRule):
                    got.extend(self._status(e, status))
            out.extend(sorted(got, key=lambda t: t.key))
        return self.composites.feed(out, self._series) if self.composites.active else out

    def _status(self, e: RuleEntry, status: Status) -> list[Transition]:
        out = []
        key = status.device.key
        for (rid, dkey, point), st in sorted(self.state.items()):
            if rid != e.id or dkey != key or self.newest[(dkey, point)] > status.ts:
                continue
            info = self.infos[(dkey, point)]
            rule = e.for_device(info.device)
            before = st.level
            if status.state == "online":
                st.level = 0
                if rule.signal == "silence":
                    st.online = status.ts
                else:
                    st.since = None
            elif status.state == ("offline" if rule.signal == "silence" else "fault"):
                if rule.signal == "fault" and st.since is None:
                    st.since = status.ts
                st.level = max(st.level, min(absent_seconds(rule, info, point)))
            if st.level != before:
                out.append(
                    series_transition(e, info, point, from_level=before, to_level=st.level,
                                      ts=status.ts, value=None, threshold=None)
                )  # fmt: skip
        return out

    def on_tick(self, now_ms: int) -> list[Transition]:
        self.clock = now_ms
        out = []
        for e in self.entries:
            if not isinstance(e.rule, AbsentRule):
                continue
            for (rid, dkey, point), st in sorted(self.state.items()):
                if rid != e.id:
                    continue
                info = self.infos[(dkey, point)]
                rule = e.for_device(info.device)
                start = self.newest[(dkey, point)] if rule.signal == "silence" else st.since
                if rule.signal == "silence" and st.online is not None:
                    start = max(self.newest[(dkey, point)], st.online)
                if start is None:
                    continue
                reached = [
                    (lv, s)
                    for lv, s in absent_seconds(rule, info, point).items()
                    if now_ms - start >= round(s * 1000)
                ]
                if not reached or max(reached)[0] <= st.level:
                    continue
                before, (st.level, bound) = st.level, max(reached)
                out.append(
                    series_transition(
                        e,
                        info,
                        point,
                        from_level=before,
                        to_level=st.level,
                        ts=now_ms,
                        value=(now_ms - start) / 1000,
                        threshold=bound,
                        unit="s",
                    )
                )
        out.sort(key=lambda t: t.key)
        if self.composites.active:
            out = self.composites.feed(out, self._series)
        return out + [t for _, t in self.composites.on_tick(now_ms, Owned.of(None))]
