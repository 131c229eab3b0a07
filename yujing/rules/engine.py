"""The rule engine: pure, no I/O, the clock passed in. Batches in, transitions out.

Rules are bound to series as series appear (from the device records batches carry) and
when rules change; each rule kind keeps its per-series state in numpy columns (`Slots`).
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
from yujing.rules.model import (
    CalibrationRule,
    CompositeRule,
    EventRule,
    RateRule,
    Rule,
    ThresholdRule,
    site_states,
)
from yujing.rules.rate import Rates
from yujing.rules.series import Runs, Series
from yujing.rules.signals import Composites, EventCounts
from yujing.rules.threshold import Thresholds
from yujing.rules.transition import Transition

log = logging.getLogger(__name__)
DEFAULT_SITE_STATE = "operating"


class Engine:
    def __init__(self, rules: Sequence[tuple[Rule, int]], *, route_groups: bool = False) -> None:
        """`route_groups`: group rules are judged by their group's owner (`groups.py`),
        this engine only leaves their member changes in `composites.outbox`."""
        self.series = Series()
        self.thresholds = Thresholds()
        self.health = Health()
        self.rates = Rates()
        self.events = EventCounts()
        self.composites = Composites(routed=route_groups)
        self.calibrations = Calibrations()
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
        self._off_hours: dict[str, bool] = {}
        self.set_rules(rules)

    # ---- rules -------------------------------------------------------------------------

    def set_rules(self, rules: Sequence[tuple[Rule, int]]) -> None:
        """Swap in a rule set between batches. Rules whose (id, version) is unchanged keep
        their slots; a rule with a new version keeps each series' current level (so an
        open alert is neither orphaned nor raised again) and restarts its timers."""
        wanted = {r.id: (r, v) for r, v in rules if r.enabled}
        carried: dict[str, dict[Any, int]] = {}
        for rid, entry in list(self.entries.items()):
            keep = wanted.get(rid)
            if keep is not None and keep[1] == entry.version and keep[0] == entry.rule:
                continue
            carried[rid] = self._unbind(entry)
            del self.entries[rid]
        for rid, (rule, version) in wanted.items():
            if rid in self.entries:
                continue
            entry = RuleEntry(rule, version, self._next_index)
            self._next_index += 1
            self.entries[rid] = entry
            self._bind_rule(entry, carried.get(rid, {}))
        self.thresholds.slots.compact()
        self.health.compact()

    def _unbind(self, entry: RuleEntry) -> dict[Any, int]:
        if isinstance(entry.rule, CalibrationRule):
            return self.calibrations.unbind(entry)
        if isinstance(entry.rule, EventRule):
            return self.events.unbind(entry)
        if isinstance(entry.rule, CompositeRule):
            return self.composites.unbind(entry)
        if isinstance(entry.rule, RateRule):
            return self.rates.unbind(entry)
        if isinstance(entry.rule, ThresholdRule):
            slots = self.thresholds.slots
            k = slots.of_rule(entry.index)
            levels = dict(
                zip(slots.series[k].tolist(), slots.col["level"][k].tolist(), strict=True)
            )
            slots.remove(k)
            return levels
        return self.health.unbind(entry)

    def _bind_rule(self, entry: RuleEntry, carried: dict[int, int]) -> None:
        rule = entry.rule
        if isinstance(rule, CalibrationRule):
            self.calibrations.bind(entry)
            self.calibrations.carry(carried)  # type: ignore[arg-type]
            return
        if isinstance(rule, EventRule):
            self.events.bind(entry, carried)
            return
        if isinstance(rule, CompositeRule):
            self.composites.bind(entry, carried)
            return
        sel = rule.select
        candidates: set[int] = set()
        for (kind, point), sids in self.by_kind_point.items():
            if (sel.device_kind in (None, kind)) and (sel.point in (None, point)):
                candidates |= sids
        self._bind_kind(entry, sorted(s for s in candidates if self._matches(rule, s)), carried)

    def _bind_kind(self, entry: RuleEntry, sids: list[int], carried: dict[int, int]) -> None:
        if not sids:
            return
        if isinstance(entry.rule, ThresholdRule):
            self.thresholds.bind(
                entry, sids, self.series, lambda info: self._gate(entry.rule, info)
            )
            if carried:
                self._carry_threshold(entry, carried)
        elif isinstance(entry.rule, RateRule):
            self.rates.bind(entry, sids, self.series, carried)
        else:
            self.health.bind(entry, sids, self.series, carried)

    def _carry_threshold(self, entry: RuleEntry, carried: dict[int, int]) -> None:
        slots = self.thresholds.slots
        k = slots.of_rule(entry.index)
        old = np.array([carried.get(s, 0) for s in slots.series[k].tolist()], np.int8)
        present = slots.col["present"][k]
        # The nearest level the new rule has at or below the old one, else its lowest.
        lv = np.zeros(len(k), np.int8)
        for i in range(4):
            lv = np.where(present[:, i] & (old >= i + 1), i + 1, lv)
        lowest = np.argmax(present, axis=1) + 1
        lv = np.where((old > 0) & (lv == 0), lowest, lv).astype(np.int8)
        slots.col["level"][k] = lv
        self.thresholds.refresh(k)

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

    def _tick_calendar(self, now_ms: int) -> None:
        """Open or close the gates of `off_hours` rules whose state changed at this tick."""
        self.clock_ms = now_ms
        slots = self.thresholds.slots
        for entry in self.thresholds.entries.values():
            rule = entry.rule
            if not isinstance(rule, ThresholdRule) or rule.off_hours is None:
                continue
            now = self._calendar(rule)
            if self._off_hours.get(rule.id) == now:
                continue
            self._off_hours[rule.id] = now
            k = slots.of_rule(entry.index)
            gates = [
                self._gate(rule, self.series.devices[int(self.series.device[slots.series[x]])])
                for x in k.tolist()
            ]
            self.thresholds.set_gate(k, np.array(gates, np.bool_))

    def _bind_series(self, sids: list[int]) -> None:
        """Bind every rule to new series (or to series of a device whose record changed).
        Series of the same kind, point and tags match the same rules: decided once."""
        by_rule: dict[str, list[int]] = {}
        decided: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], list[str]] = {}
        series_rules = [
            e
            for e in self.entries.values()
            if not isinstance(e.rule, EventRule | CompositeRule | CalibrationRule)
        ]
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
            self._bind_kind(self.entries[rid], rsids, {})

    def _rebind_devices(self, devices: list[int]) -> None:
        """A device's record changed (kind, site or tags): its series are bound again,
        keeping each rule's current level."""
        sids = [s for d in devices for s in self.series.of_device(d)]
        if not sids:
            return
        arr = np.array(sids, np.intp)
        slots = self.thresholds.slots
        k = slots.of_series(arr)
        levels: dict[tuple[int, int], int] = {}
        for slot, s, lvl in zip(
            k.tolist(), slots.series[k].tolist(), slots.col["level"][k].tolist(), strict=True
        ):
            levels[(int(slots.rule[slot]), s)] = lvl
        slots.remove(k)
        self.health.remove_series(arr)
        self.rates.remove_series(arr)
        for kp in self.by_kind_point.values():
            kp.difference_update(sids)
        self._bind_series(sids)
        k = slots.of_series(arr)
        for slot, s in zip(k.tolist(), slots.series[k].tolist(), strict=True):
            slots.col["level"][slot] = levels.get((int(slots.rule[slot]), s), 0)
        self.thresholds.refresh(k)

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
        out = self.thresholds.evaluate(sid, batch.ts, batch.value, usable, self.series)
        out.extend(self.health.evaluate(sid, batch, fresh, usable, runs, self.series))
        out.extend(self.rates.evaluate(sid, batch.ts, batch.value, usable, self.series))
        return self._finish(out)

    def _finish(self, out: list[tuple[int, Transition]]) -> list[Transition]:
        """Transitions in a canonical order (deciding reading, then key), fed to the
        composite rules in that order, which is the same however the stream was split."""
        out.sort(key=lambda at: (at[0], at[1].key))
        result = [t for _, t in out]
        if self.composites.active:
            result = self.composites.feed(result, self.series)
        return result

    def on_events(self, events: Sequence[Event], partition: int = 0) -> list[Transition]:
        """Transitions caused by events (from one input partition), in their order."""
        out: list[tuple[int, Transition]] = []
        for i, ev in enumerate(events):
            self.events.partition[ev.device.key] = partition
            gate = self._site_of(ev.device)
            out.extend((i, t) for t in self.events.on_event(ev, gate))
        return self._finish(out)

    def on_status(self, statuses: Sequence[Status]) -> list[Transition]:
        """Transitions caused by devices' own status messages (`yj.status`), in their order:
        see `Health.on_status`. A device the engine has no series of yet is not judged."""
        out: list[tuple[int, Transition]] = []
        for i, st in enumerate(statuses):
            dev = self.series.device_index.get((st.device.enterprise, st.device.device))
            if dev is None:
                continue
            sids = list(self.series.of_device(dev))
            out.extend((i, t) for t in self.health.on_status(sids, st.state, st.ts, self.series))
        return self._finish(out)

    def on_tick(self, now_ms: int, partitions: Collection[int] | None = None) -> list[Transition]:
        """The clock: silence and fault durations, window expiry. `partitions`: the input
        partitions this engine owns now (None: all), so that an engine does not declare
        silent the devices whose partition moved to another engine."""
        self._tick_calendar(now_ms)
        owned = None if partitions is None else np.fromiter(partitions, np.int32)
        out = [(0, t) for t in self.health.on_tick(now_ms, self.series, owned)]
        out.extend((0, t) for t in self.events.on_tick(now_ms, partitions))
        result = self._finish(out)
        result.extend(self.composites.on_tick(now_ms))
        result.extend(self.calibrations.on_tick(now_ms, self.series, partitions))
        return result

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
        if not sids:
            return
        slots = self.thresholds.slots
        k = slots.of_series(np.array(sids, np.intp))
        gates = [
            self._gate(
                self.thresholds.entries[int(slots.rule[x])].rule,
                self.series.devices[int(self.series.device[slots.series[x]])],
            )
            for x in k.tolist()
        ]
        self.thresholds.set_gate(k, np.array(gates, np.bool_))

    def device_removed(self, enterprise: str, device: str) -> None:
        """The registry deleted a device: no rule watches its series any more (a device
        that is gone raises no offline alert); a later batch of it binds them again."""
        dev = self.series.device_index.get((enterprise, device))
        if dev is None:
            return
        sids = list(self.series.of_device(dev))
        if sids:
            arr = np.array(sids, np.intp)
            self.thresholds.slots.remove(self.thresholds.slots.of_series(arr))
            self.health.remove_series(arr)
            self.rates.remove_series(arr)
            for kp in self.by_kind_point.values():
                kp.difference_update(sids)
        self.series.forget((enterprise, device))

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

    # ---- snapshots ---------------------------------------------------------------------

    def snapshot(self, partition: int | None = None) -> bytes:
        """The state of one input partition's devices (None: of all) as bytes."""
        from yujing.rules import snapshot

        return snapshot.dump(self, partition)

    @classmethod
    def restore(cls, data: bytes, rules: Sequence[tuple[Rule, int]], partition: int = 0) -> Engine:
        from yujing.rules import snapshot

        engine = cls(rules)
        snapshot.load(engine, data, partition)
        return engine
