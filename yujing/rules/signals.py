"""Rules over discrete signals: `event` (counts of an event type in a window) and
`composite` (group alerts from the engine's own point alerts). Both see few inputs
(events and transitions, not readings), so their state is plain Python.

Windows slide on event time as inputs arrive, and on the clock tick for expiry (a window
that empties with no further input is only noticed by the clock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from yujing.ingest.batch import DeviceInfo, Event
from yujing.levels import COLOURS, Level
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.kind import Carried, Indexed, Kind, Owned, Part, Restored
from yujing.rules.model import CompositeRule, EventRule, site_states
from yujing.rules.series import Series
from yujing.rules.transition import Transition


@dataclass
class EventState:
    info: DeviceInfo
    window: deque[tuple[int, int]] = field(default_factory=deque)
    level: int = 0
    newest: int = -(2**63)
    pending: deque[tuple[int, int]] = field(default_factory=deque)  # waiting for an answer


def count_level(levels: Mapping[Any, int], n: int) -> tuple[int, int | None]:
    best, bound = 0, None
    for lv in COLOURS:
        need = levels.get(lv.word)
        if need is not None and n >= need:
            best, bound = int(lv), need
    return best, bound


class EventWindow(msgspec.Struct, array_like=True):
    """One (event rule, device) in a snapshot: counted events, level, newest ts, and the
    events still waiting for their answer (`unanswered_by`)."""

    rule: str
    device: int  # position in the section's devices
    window: list[tuple[int, int]]
    level: int
    newest: int
    pending: list[tuple[int, int]]


class EventSection(msgspec.Struct, array_like=True):
    devices: list[DeviceInfo]
    windows: list[EventWindow]


class EventCounts(Kind):
    """Event windows per (rule, device), checkpointed with the events partitions.
    Snapshot section: an `EventSection`."""

    name = "event"
    rules = (EventRule,)
    on_events_topic = True

    def __init__(self) -> None:
        self.entries: dict[str, RuleEntry] = {}
        self.state: dict[tuple[str, str], EventState] = {}  # (rule id, device key)
        self.partition: dict[str, int] = {}  # device key → input partition of its events
        self.late_events = 0
        self.changed: set[str] = set()  # device keys whose windows changed since `saved`

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        self.entries[entry.id] = entry
        for key, st in carried.items():
            self.state[(entry.id, key[0])] = st

    def unbind(self, entry: RuleEntry) -> Carried:
        self.entries.pop(entry.id, None)
        kept = {(dev,): st for (rid, dev), st in list(self.state.items()) if rid == entry.id}
        for (dev,) in kept:
            del self.state[(entry.id, dev)]
        return kept

    def on_events(
        self, events: Sequence[Event], partition: int, site_state: Callable[[DeviceInfo], str]
    ) -> Indexed:
        out: Indexed = []
        for i, ev in enumerate(events):
            self.partition[ev.device.key] = partition
            self.changed.add(ev.device.key)
            out.extend((i, t) for t in self.on_event(ev, site_state(ev.device)))
        return out

    def drop(self, partition: int, keys: Collection[str]) -> None:
        gone = {dk for dk, p in self.partition.items() if p == partition}
        for key in [k for k in self.state if k[1] in gone]:
            del self.state[key]
        for dk in gone:
            del self.partition[dk]
        self.changed -= gone

    def saved(self) -> None:
        self.changed.clear()

    def snapshot(self, part: Part) -> EventSection | None:
        p, mine = part.partition, self.partition
        states = [
            (k, st)
            for k, st in self.state.items()
            if (p is None or mine.get(k[1]) == p) and (part.full or k[1] in self.changed)
        ]
        if not states:
            return None
        infos = list({st.info.key: st.info for _, st in states}.values())
        at = {info.key: i for i, info in enumerate(infos)}
        return EventSection(
            infos,
            [
                EventWindow(rid, at[dk], list(st.window), st.level, st.newest, list(st.pending))
                for (rid, dk), st in states
            ],
        )

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        for data, where in pieces:
            sec = msgspec.msgpack.decode(data, type=EventSection)
            for w in sec.windows:
                info = sec.devices[w.device]
                self.state[(w.rule, info.key)] = EventState(
                    info, deque(w.window), w.level, w.newest, deque(w.pending)
                )
                self.partition[info.key] = where.partition

    def on_event(self, ev: Event, site_state: str) -> list[Transition]:
        out = []
        for entry in self.entries.values():
            rule = entry.rule
            assert isinstance(rule, EventRule)
            info = ev.device
            answer = rule.unanswered_by is not None and rule.unanswered_by == ev.type
            if (rule.event_type != ev.type and not answer) or not rule.binds(
                info.enterprise, info.kind, None, info.tags
            ):
                continue
            rule = entry.for_device(info.device)
            states = site_states(rule.site_state)
            st = self.state.setdefault((rule.id, info.key), EventState(info))
            if ev.ts < st.newest:
                self.late_events += 1
                continue
            st.newest, st.info = ev.ts, info
            if states is not None and site_state not in states:
                continue
            n = max(ev.count, 1)
            if rule.unanswered_by is None:
                st.window.append((ev.ts, n))
            else:
                self._expire(rule, st, ev.ts)
                if answer:
                    for _ in range(min(n, len(st.pending))):
                        st.pending.popleft()  # answers the oldest events still waiting
                else:
                    st.pending.append((ev.ts, n))
            t = self._settle(entry, rule, st, ev.ts)
            if t is not None:
                out.append(t)
        return out

    @staticmethod
    def _expire(rule: EventRule, st: EventState, now: int) -> None:
        """Events whose answer did not come within `answer_within_s` count, from their
        deadline on (an answer exactly at the deadline is in time)."""
        within = round(rule.answer_within_s * 1000)
        while st.pending and st.pending[0][0] + within < now:
            ts, n = st.pending.popleft()
            st.window.append((ts + within, n))

    def _settle(
        self, entry: RuleEntry, rule: EventRule, st: EventState, now: int
    ) -> Transition | None:
        horizon = now - round(rule.window_s * 1000)
        while st.window and st.window[0][0] <= horizon:
            st.window.popleft()
        n = sum(c for _, c in st.window)
        new, bound = count_level(rule.levels, n)
        if new == st.level:
            return None
        before, st.level = st.level, new
        return series_transition(
            entry,
            st.info,
            rule.event_type,
            from_level=before,
            to_level=new,
            ts=now,
            value=float(n),
            threshold=None if bound is None else float(bound),
            unit="",
        )

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        return [(0, t) for t in self._tick(now_ms, owned.partitions)]

    def _tick(self, now_ms: int, partitions: Collection[int] | None) -> list[Transition]:
        out = []
        for (rid, dk), st in self.state.items():
            entry = self.entries.get(rid)
            if entry is None or (st.level == 0 and not st.pending):
                continue
            if partitions is not None and self.partition.get(dk, 0) not in partitions:
                continue
            self.changed.add(dk)
            rule = entry.for_device(st.info.device)
            self._expire(rule, st, now_ms)
            t = self._settle(entry, rule, st, now_ms)
            if t is not None:
                out.append(t)
        return out


@dataclass
class GroupState:
    enterprise: str
    site: str | None
    points: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=dict
    )  # point → rule → level
    hot_at: dict[tuple[str, str], int] = field(default_factory=dict)  # point → last time ≥ of_level
    level: int = 0
    # the group's owner (groups.py): recent member changes, each member's newest change
    seen: dict[str, None] = field(default_factory=dict)
    newest: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (*point, rule)


class MemberChange(msgspec.Struct, frozen=True, array_like=True):
    """One member's level for one group rule: all a group's owner needs of a point
    transition (`yj.groups`, keyed by the group's alert key). `source` is the member's
    own rule, `id` the point transition's id (a replayed change has the same one)."""

    rule_id: str  # the composite rule
    rule_version: int
    group: str  # enterprise/group
    site: str | None
    member: tuple[str, str]  # (device, point); (sub-group, device/point) with `distinct`
    source: str
    was: int  # the member's level before
    level: int
    ts: int
    id: str

    @property
    def key(self) -> str:
        """The group's alert key, which is also its key on the bus."""
        enterprise, _, grp = self.group.partition("/")
        return f"{enterprise}/{grp}/-/{self.rule_id}"


class GroupRecord(msgspec.Struct, array_like=True):
    """One composite group in a snapshot: per point (device, point) its level per input
    rule, when it last was hot, and the group's level."""

    rule: str
    group: str
    enterprise: str
    site: str | None
    points: list[tuple[str, str, dict[str, int]]]
    hot_at: list[tuple[str, str, int]]
    level: int


class Composites(Kind):
    """Group rules. `routed=False`: group state here, fed the engine's own point
    transitions (`react`; one engine sees every point: tests, backtest, reference).
    `routed=True`: this engine only routes, each transition becomes one `MemberChange`
    per group rule it feeds, left in `outbox` for the service to send to the group's
    owner (`yujing/rules/groups.py`), which keeps the group state and its snapshots.

    Snapshot section (unrouted only): a list of `GroupRecord` (empty in a delta when no
    group changed).
    """

    name = "composite"
    rules = (CompositeRule,)
    point_alerts = False

    def __init__(self, series: Series | None = None, *, routed: bool = False) -> None:
        self.series = series if series is not None else Series()
        self.entries: dict[str, RuleEntry] = {}
        self.groups: dict[tuple[str, str], GroupState] = {}  # (rule id, enterprise/group)
        self.changed = True  # since `saved`
        self.routed = routed
        self.outbox: list[MemberChange] = []

    @property
    def active(self) -> bool:
        return bool(self.entries)

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        self.entries[entry.id] = entry
        for key, st in carried.items():
            self.groups[(entry.id, key[0])] = st

    def unbind(self, entry: RuleEntry) -> Carried:
        self.entries.pop(entry.id, None)
        kept = {(g,): st for (rid, g), st in list(self.groups.items()) if rid == entry.id}
        for (g,) in kept:
            del self.groups[(entry.id, g)]
        return kept

    def react(self, transitions: list[Transition]) -> list[Transition]:
        if not self.entries:
            return transitions
        return self.feed(transitions, self.series)

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        return [(0, t) for t in self._tick(now_ms)]

    def saved(self) -> None:
        self.changed = False

    def snapshot(self, part: Part) -> list[GroupRecord] | None:
        if not self.groups or (not part.full and not self.changed):
            return None
        return [
            GroupRecord(
                rid, g, st.enterprise, st.site,
                [(d, p, dict(lv)) for (d, p), lv in st.points.items()],
                [(d, p, t) for (d, p), t in st.hot_at.items()],
                st.level,
            )
            for (rid, g), st in self.groups.items()
        ]  # fmt: skip

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        latest: dict[tuple[str, str], GroupRecord] = {}
        for data, _ in pieces:
            for g in msgspec.msgpack.decode(data, type=list[GroupRecord]):
                latest[(g.rule, g.group)] = g
        for key, g in latest.items():
            if key not in self.groups:
                self.groups[key] = GroupState(
                    g.enterprise,
                    g.site,
                    {(d, p): dict(lv) for d, p, lv in g.points},
                    {(d, p): t for d, p, t in g.hot_at},
                    g.level,
                )

    def feed(self, transitions: list[Transition], series: Series) -> list[Transition]:
        """The transitions, each followed by the group transitions it caused (routed:
        the transitions alone, their member changes in `outbox`)."""
        out: list[Transition] = []
        for t in transitions:
            out.append(t)
            if t.device is None or t.point is None:
                continue
            idx = series.device_index.get((t.enterprise, t.device))
            if idx is None:
                continue
            info = series.devices[idx]
            for entry in self.entries.values():
                change = self.route(entry, t, info)
                if change is None:
                    continue
                if self.routed:
                    self.outbox.append(change)
                    continue
                got = self.apply(entry, change)
                if got is not None:
                    out.append(got)
        return out

    def drain(self) -> list[MemberChange]:
        out, self.outbox = self.outbox, []
        return out

    @staticmethod
    def route(entry: RuleEntry, t: Transition, info: DeviceInfo) -> MemberChange | None:
        """The member change a point transition makes in the rule's group, if any."""
        rule = entry.rule
        assert isinstance(rule, CompositeRule)
        if rule.rules and t.rule_id not in rule.rules:
            return None
        if not rule.binds(info.enterprise, info.kind, t.point, info.tags):
            return None
        parts = [info.site if g == "site" else info.tags.get(g) for g in rule.group_by]
        if any(p is None for p in parts):
            return None
        group = ":".join(p for p in parts if p is not None)
        pk = (info.device, t.point or "-")
        if rule.distinct:
            # A group of groups: the point is filed under its sub-group, which is counted.
            sub = [info.tags.get(g) for g in rule.distinct]
            if any(p is None for p in sub):
                return None
            pk = (":".join(p for p in sub if p is not None), f"{info.device}/{t.point}")
        return MemberChange(
            rule.id,
            entry.version,
            f"{info.enterprise}/{group}",
            info.site,
            pk,
            t.rule_id,
            t.from_level,
            t.to_level,
            t.ts,
            t.id,
        )

    def apply(self, entry: RuleEntry, change: MemberChange) -> Transition | None:
        """A member's new level; the group's transition if its level changed."""
        rule = entry.rule
        assert isinstance(rule, CompositeRule)
        st = self.groups.get((rule.id, change.group))
        if st is None:
            enterprise = change.group.partition("/")[0]
            st = self.groups[(rule.id, change.group)] = GroupState(enterprise, change.site)
        of = int(Level.parse(rule.of_level))
        pk = change.member
        levels = st.points.setdefault(pk, {})
        self.changed = True
        was = max(levels.values(), default=0)
        levels[change.source] = change.level
        if was >= of > max(levels.values()):
            st.hot_at[pk] = change.ts
        return self._settle(entry, rule, st, change.group, change.ts)

    def _settle(
        self, entry: RuleEntry, rule: CompositeRule, st: GroupState, group: str, now: int
    ) -> Transition | None:
        of = int(Level.parse(rule.of_level))
        window = round(rule.window_s * 1000)
        hot = [
            pk
            for pk, levels in st.points.items()
            if max(levels.values(), default=0) >= of or now - st.hot_at.get(pk, -(2**62)) < window
        ]
        n = len({pk[0] for pk in hot}) if rule.distinct else len(hot)
        new = int(Level.parse(rule.level)) if n >= rule.count else 0
        if new == st.level:
            return None
        before, st.level = st.level, new
        self.changed = True
        enterprise, _, grp = group.partition("/")
        return Transition(
            key=f"{enterprise}/{grp}/-/{rule.id}",
            enterprise=enterprise,
            site=st.site,
            device=None,
            point=None,
            rule_id=rule.id,
            rule_version=entry.version,
            kind=rule.kind,
            from_level=before,
            to_level=new,
            ts=now,
            value=float(n),
            threshold=float(rule.count),
            unit="groups" if rule.distinct else "points",
            rule_name=rule.name,
            health=rule.health,
        )

    def _tick(self, now_ms: int) -> list[Transition]:
        out = []
        for (rid, group), st in self.groups.items():
            entry = self.entries.get(rid)
            if entry is None or st.level == 0:
                continue
            assert isinstance(entry.rule, CompositeRule)
            t = self._settle(entry, entry.rule, st, group, now_ms)
            if t is not None:
                out.append(t)
        return out
