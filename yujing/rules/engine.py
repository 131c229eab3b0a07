"""The rule engine: pure, no I/O, the clock passed in. Batches in, transitions out.

Rules are bound to series as series appear (from the device records batches carry) and
when rules change. Each rule kind (`kind.Kind`) keeps its rules' state and its own snapshot
section; the engine owns the series and the order of outputs, and loops over the kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from yujing.ingest.batch import Q_OK, DeviceInfo, Event, ReadingBatch, Status
from yujing.registry.sectors import effective_state
from yujing.rules.calibration import Calibrations
from yujing.rules.emit import RuleEntry
from yujing.rules.health import Health
from yujing.rules.kind import Carried, Indexed, Kind, Owned, Part, Readings, Restored
from yujing.rules.model import Rule, site_states
from yujing.rules.rate import Rates
from yujing.rules.series import NONE_TS, Runs, Series
from yujing.rules.signals import Composites, EventCounts
from yujing.rules.snapshot import Snapshot, decode, encode
from yujing.rules.threshold import Thresholds
from yujing.rules.transition import Transition

log = logging.getLogger(__name__)
DEFAULT_SITE_STATE = "operating"


class Engine:
    def __init__(self, rules: Sequence[tuple[Rule, int]], *, route_groups: bool = False) -> None:
        """`route_groups`: group rules are judged by their group's owner (`groups.py`),
        this engine only leaves their member changes in `composites.outbox`."""
        self.series = Series()
        self.thresholds = Thresholds(self.series, self._gate)
        self.health = Health(self.series)
        self.rates = Rates(self.series)
        self.events = EventCounts()
        self.composites = Composites(self.series, routed=route_groups)
        self.calibrations = Calibrations(self.series)
        # In this order: series kinds evaluate readings in it, and the clock's transitions
        # of kinds that are not point alerts follow in it.
        self.kinds: list[Kind] = [
            self.thresholds, self.health, self.rates, self.events, self.composites,
            self.calibrations,
        ]  # fmt: skip
        self._kind_of = {cls: k for k in self.kinds for cls in k.rules}
        self._series_kinds = [k for k in self.kinds if k.per_series]
        self.entries: dict[str, RuleEntry] = {}
        self._next_index = 0
        # What rules see of a site: the stricter of its own state and its enterprise's.
        self.site_state: dict[tuple[str, str], str] = {}
        self._own_site_state: dict[tuple[str, str], str] = {}
        self.enterprise_state: dict[str, str] = {}
        self.by_kind_point: dict[tuple[str, str], set[int]] = {}
        self.late_readings = 0
        self.readings = 0
        # The engine's clock (last tick): rules with `off_hours` apply only when it is off
        # hours; their gate changes on the tick, like a site state change.
        self.clock_ms: int | None = None
        # A change that touched every partition's state (rules, site states): the next
        # checkpoint writes whole snapshots, not deltas.
        self.changed_all = True
        self.set_rules(rules)

    # ---- rules -------------------------------------------------------------------------

    def set_rules(self, rules: Sequence[tuple[Rule, int]]) -> None:
        """Swap in a rule set between batches. Rules whose (id, version) is unchanged keep
        their slots; a rule with a new version keeps each series' current level (so an
        open alert is neither orphaned nor raised again) and restarts its timers."""
        wanted = {r.id: (r, v) for r, v in rules if r.enabled}
        carried: dict[str, Carried] = {}
        for rid, entry in list(self.entries.items()):
            keep = wanted.get(rid)
            if keep is not None and keep[1] == entry.version and keep[0] == entry.rule:
                continue
            carried[rid] = self._kind(entry.rule).unbind(entry)
            del self.entries[rid]
            self.changed_all = True
        for rid, (rule, version) in wanted.items():
            if rid in self.entries:
                continue
            entry = RuleEntry(rule, version, self._next_index)
            self._next_index += 1
            self.entries[rid] = entry
            self._bind_rule(entry, carried.get(rid, {}))
            self.changed_all = True

    def _kind(self, rule: Rule) -> Kind:
        return self._kind_of[type(rule)]

    def _bind_rule(self, entry: RuleEntry, carried: Carried) -> None:
        kind = self._kind(entry.rule)
        if not kind.per_series:
            kind.bind(entry, [], carried)
            return
        sel = entry.rule.select
        candidates: set[int] = set()
        for (dkind, point), sids in self.by_kind_point.items():
            if (sel.device_kind in (None, dkind)) and (sel.point in (None, point)):
                candidates |= sids
        matched = sorted(s for s in candidates if self._matches(entry.rule, s))
        if matched:
            kind.bind(entry, matched, carried)

    def _matches(self, rule: Rule, sid: int) -> bool:
        info, point = self.series.info(sid)
        return rule.binds(info.enterprise, info.kind, point, info.tags)

    def _gate(self, rule: Rule, info: DeviceInfo) -> bool:
        if not self._calendar(rule):
            return False
        states = site_states(getattr(rule, "site_state", None))
        if states is None:
            return True
        return self.state_of(info.enterprise, info.site) in states

    def _calendar(self, rule: Rule) -> bool:
        hours = getattr(rule, "off_hours", None)
        return hours is None or (self.clock_ms is not None and hours.active(self.clock_ms))

    def _bind_series(self, sids: list[int]) -> None:
        """Bind every rule to new series (or to series of a device whose record changed).
        Series of the same kind, point and tags match the same rules: decided once."""
        by_rule: dict[str, list[int]] = {}
        decided: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], list[str]] = {}
        series_rules = [e for e in self.entries.values() if self._kind(e.rule).per_series]
        for sid in sids:
            info, point = self.series.info(sid)
            self.by_kind_point.setdefault((info.kind, point), set()).add(sid)
            shape = (info.enterprise, info.kind, point, tuple(sorted(info.tags.items())))
            rids = decided.get(shape)
            if rids is None:
                rids = decided[shape] = [
                    e.id
                    for e in series_rules
                    if e.rule.binds(info.enterprise, info.kind, point, info.tags)
                ]
            for rid in rids:
                by_rule.setdefault(rid, []).append(sid)
        for rid, rsids in by_rule.items():
            entry = self.entries[rid]
            self._kind(entry.rule).bind(entry, rsids, {})

    def _drop_series(self, sids: list[int]) -> dict[str, Carried]:
        arr = np.array(sids, np.intp)
        carried = {k.name: k.drop_series(arr) for k in self._series_kinds}
        for kp in self.by_kind_point.values():
            kp.difference_update(sids)
        return carried

    def _rebind_devices(self, devices: list[int]) -> None:
        """A device's record changed (kind, site or tags): its series are bound again,
        keeping the levels each kind keeps (`Kind.drop_series`)."""
        sids = [s for d in devices for s in self.series.of_device(d)]
        if not sids:
            return
        carried = self._drop_series(sids)
        self._bind_series(sids)
        arr = np.array(sids, np.intp)
        for k in self._series_kinds:
            k.carry_series(carried[k.name], arr)

    # ---- input -------------------------------------------------------------------------

    def on_batch(self, batch: ReadingBatch, partition: int = 0) -> list[Transition]:
        """Transitions caused by a batch of readings from one input partition."""
        return self.evaluate(batch, self.series_of(batch, partition))

    def series_of(self, batch: ReadingBatch, partition: int = 0) -> npt.NDArray[np.intp]:
        """Series id of each reading, binding rules to series seen for the first time.
        A loop over the batch's device table: the one per-device cost of a batch."""
        sid32, new, changed = self.series.lookup(batch, partition)
        if new or changed:
            self.calibrations.touch()
        if changed:
            self._rebind_devices(changed)
        if new:
            self._bind_series(new)
        return sid32.astype(np.intp)

    def evaluate(self, batch: ReadingBatch, sid: npt.NDArray[np.intp]) -> list[Transition]:
        """Every rule over the batch, given its series ids (`series_of`)."""
        if not len(batch):
            return []
        runs = Runs.of(sid)
        late = self.series.observe(sid, batch.ts, runs)
        self.readings += len(batch)
        self.late_readings += int(late.sum())
        fresh = ~late
        usable = fresh & (batch.quality == Q_OK) & ~np.isnan(batch.value)
        readings = Readings(sid, batch, fresh, usable, runs)
        out: Indexed = []
        for kind in self._series_kinds:
            out.extend(kind.evaluate(readings))
        return self._finish(out)

    def _finish(self, out: Indexed) -> list[Transition]:
        """Transitions in a canonical order (deciding reading, then key), then what they
        cause (composite rules), in that order, which is the same however the stream was
        split."""
        out.sort(key=lambda at: (at[0], at[1].key))
        result = [t for _, t in out]
        for kind in self.kinds:
            result = kind.react(result)
        return result

    def on_events(self, events: Sequence[Event], partition: int = 0) -> list[Transition]:
        """Transitions caused by events (from one input partition), in their order."""
        out: Indexed = []
        for kind in self.kinds:
            out.extend(kind.on_events(events, partition, self._site_of))
        return self._finish(out)

    def on_status(self, statuses: Sequence[Status]) -> list[Transition]:
        """Transitions caused by devices' own status messages (`yj.status`), in their order:
        see `Health.on_status`. A device the engine has no series of yet is not judged."""
        out: Indexed = []
        for i, st in enumerate(statuses):
            dev = self.series.device_index.get((st.device.enterprise, st.device.device))
            if dev is None:
                continue
            sids = list(self.series.of_device(dev))
            for kind in self.kinds:
                out.extend(kind.on_status(sids, st, i))
        return self._finish(out)

    def on_tick(self, now_ms: int, partitions: Collection[int] | None = None) -> list[Transition]:
        """The clock: silence and fault durations, window expiry, calendars. `partitions`:
        the input partitions this engine owns now (None: all), so that an engine does not
        declare silent the devices whose partition moved to another engine."""
        self.clock_ms = now_ms
        owned = Owned.of(partitions)
        # Point alerts first, through the composites; then the clock of the other kinds
        # (group windows, calendars), which sees the groups those alerts changed.
        points: Indexed = []
        for kind in self.kinds:
            if kind.point_alerts:
                points.extend(kind.on_tick(now_ms, owned))
        out = self._finish(points)
        for kind in self.kinds:
            if not kind.point_alerts:
                out.extend(t for _, t in kind.on_tick(now_ms, owned))
        return out

    def _site_of(self, info: DeviceInfo) -> str:
        return self.state_of(info.enterprise, info.site)

    def state_of(self, enterprise: str, site: str) -> str:
        known = self.site_state.get((enterprise, site))
        if known is not None:
            return known
        return effective_state(self.enterprise_state.get(enterprise), DEFAULT_SITE_STATE)

    def set_site_state(self, enterprise: str, site: str, state: str) -> None:
        """Gates rules with `site_state`; takes effect from the next reading or event."""
        self._own_site_state[(enterprise, site)] = state
        self._apply_site_state(
            enterprise, site, effective_state(self.enterprise_state.get(enterprise), state)
        )

    def set_enterprise_state(self, enterprise: str, state: str) -> None:
        """A halted or closed enterprise halts or closes every site of it (sectors.py)."""
        self.enterprise_state[enterprise] = state
        sites = {s for (e, s) in self._own_site_state if e == enterprise}
        sites |= {i.site for i in self.series.devices if i.enterprise == enterprise}
        for site in sorted(sites):
            own = self._own_site_state.get((enterprise, site), DEFAULT_SITE_STATE)
            self._apply_site_state(enterprise, site, effective_state(state, own))

    def _apply_site_state(self, enterprise: str, site: str, state: str) -> None:
        self.site_state[(enterprise, site)] = state
        sids = [
            s
            for d, info in enumerate(self.series.devices)
            if info.enterprise == enterprise and info.site == site
            for s in self.series.of_device(d)
        ]
        if sids:
            self.thresholds.regate(np.array(sids, np.intp))

    def device_removed(self, enterprise: str, device: str) -> None:
        """The registry deleted a device: no rule watches its series any more (a device
        that is gone raises no offline alert); a later batch of it binds them again."""
        dev = self.series.device_index.get((enterprise, device))
        if dev is None:
            return
        sids = list(self.series.of_device(dev))
        if sids:
            self._drop_series(sids)
        self.series.forget((enterprise, device))
        self.changed_all = True  # snapshots are written whole, without it

    def device_changed(self, enterprise: str, device: str) -> None:
        """The registry changed a device record; its next batch rebinds its series."""
        self.series.mark_changed((enterprise, device))

    def stats(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "late_readings": self.late_readings,
            "series": len(self.series),
            "rules": len(self.entries),
            "threshold_slots": int(self.thresholds.slots.alive[: self.thresholds.slots.n].sum()),
        }

    # ---- snapshots (format: snapshot.py; each kind's section: Kind.snapshot) -----------

    def snapshot(
        self, partition: int | None = None, *, series: bool = True, events: bool = True
    ) -> bytes:
        """The state of one input partition's devices (None: of all) as bytes: its series
        and their rules (`series`), and its event windows (`events`)."""
        return encode(self.capture(partition, series=series, events=events)[0])

    def capture(
        self, partition: int | None, *, series: bool = True, events: bool = True,
        full: bool = True,
    ) -> tuple[Snapshot, bool]:  # fmt: skip
        """A snapshot as copies, to encode elsewhere (`snapshot.encode`), and whether it is
        whole. Not `full`: a delta, only the devices changed since `saved()`
        (`Series.changed`), unless most of them changed."""
        s = self.series
        devs = s.of_partition(partition) if series else np.empty(0, np.intp)
        devs = devs[s.device_rev[devs] != -1]  # removed devices (and dropped partitions)
        if not full:
            changed = s.changed(devs)
            full = 2 * len(changed) > len(devs) > 0
            devs = devs if full else changed
        sids = s.series_of_devices(devs)
        pos = np.full(s.count, -1, np.int64)
        pos[sids] = np.arange(len(sids))
        dev_pos = np.full(len(s.devices), -1, np.int32)
        dev_pos[devs] = np.arange(len(devs), dtype=np.int32)
        part = Part(partition, sids, pos, devs, full)
        sections = {
            k.name: k.snapshot(part)
            for k in self.kinds
            if (events if k.on_events_topic else series)
        }
        snap = Snapshot(
            devices=[s.devices[d] for d in devs.tolist()],
            points=list(s.points),
            series_device=dev_pos[s.device[sids]].astype("<i4").tobytes(),
            series_point=s.point[sids].astype("<i4").tobytes(),
            last_ts=s.last_ts[sids].astype("<i8").tobytes(),
            kinds={name: sec for name, sec in sections.items() if sec is not None},
        )
        return snap, full

    def saved(self) -> None:
        """Every partition's snapshot was captured: deltas count changes from now."""
        self.series.saved()
        for k in self.kinds:
            k.saved()
        self.changed_all = False

    def load(self, parts: Sequence[bytes], partition: int) -> None:
        """Merge a partition's snapshot (and the deltas after it, in order) into a running
        engine (its rules already set). A device whose record differs from the one held is
        bound again."""
        s = self.series
        pieces: dict[str, list[tuple[bytes, Restored]]] = {}
        for data in parts:
            snap = decode(data)
            dev_idx: list[int] = []
            changed: list[int] = []
            for info in snap.devices:
                idx, is_changed = s.add_device(info, partition)
                s.device_partition[idx] = partition
                dev_idx.append(idx)
                if is_changed:
                    changed.append(idx)
            points = np.array([s.add_point(p) for p in snap.points], np.intp)
            devs = np.array(dev_idx, np.intp)[np.frombuffer(snap.series_device, "<i4")]
            pts = points[np.frombuffer(snap.series_point, "<i4")]
            new: list[int] = []
            sids = np.empty(len(devs), np.intp)
            for i, (d, p) in enumerate(zip(devs.tolist(), pts.tolist(), strict=True)):
                sids[i], is_new = s.ensure(d, p)
                if is_new:
                    new.append(int(sids[i]))
            if changed or new:
                self.calibrations.touch()
            if changed:
                self._rebind_devices(changed)
            rebound = set(changed)
            if new:
                self._bind_series([x for x in new if int(s.device[x]) not in rebound])
            if len(sids):
                s.last_ts[sids] = np.maximum(s.last_ts[sids], np.frombuffer(snap.last_ts, "<i8"))
                s.saved_ts[sids] = s.last_ts[sids]
            s.touched[devs] = False
            s.touched[np.array(dev_idx, np.intp)] = False
            for name, raw in snap.kinds.items():
                pieces.setdefault(name, []).append((bytes(raw), Restored(partition, sids)))
        for k in self.kinds:
            if k.name in pieces:
                k.restore(pieces[k.name])

    def drop_partition(self, partition: int, *, series: bool, events: bool) -> None:
        """Forget the state of an input partition (it moved to another engine, or is about
        to be loaded from its snapshot): its series' rules, newest `ts` and alerts (with
        `series`), its event windows (with `events`). A later batch binds again."""
        s = self.series
        devs = s.of_partition(partition) if series else np.empty(0, np.intp)
        sids = s.series_of_devices(devs)
        if len(sids):
            self._drop_series(sids.tolist())
            s.last_ts[sids] = NONE_TS
            s.saved_ts[sids] = NONE_TS
        keys = [s.devices[d].key for d in devs.tolist()]
        for k in self.kinds:
            if events if k.on_events_topic else series:
                k.drop(partition, keys)
        for d in devs.tolist():
            s.forget((s.devices[d].enterprise, s.devices[d].device))
        s.touched[devs] = False

    @classmethod
    def restore(cls, data: bytes, rules: Sequence[tuple[Rule, int]], partition: int = 0) -> Engine:
        engine = cls(rules)
        engine.load([data], partition)
        return engine
