"""Threshold rules over whole batches (semantics in yujing/rules/README.md, "threshold").

Values are *oriented* (multiplied by -1 for `below` rules) so one comparison direction
serves both. Each slot keeps a quiet interval [lo, hi): a reading inside it, on a slot
with no timer running, leaves the state exactly as it was. The vectorised pass finds the
few readings outside their interval; only the slots they belong to go through the
per-reading step, in arrival order, with all their readings of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from yujing.ingest.batch import DeviceInfo
from yujing.levels import COLOURS
from yujing.rules import slots as slot_table
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.kind import Carried, Indexed, Kind, Owned, Part, Readings, Restored
from yujing.rules.model import (
    Rule,
    ThresholdRule,
    check_threshold_numbers,
    resolve_bound,
    site_states,
)
from yujing.rules.series import F64, I64, NONE_TS, B, Series, group_order
from yujing.rules.slots import Slots, Table
from yujing.rules.transition import Transition

INF = math.inf
NONE = int(NONE_TS)
COLUMNS: dict[str, tuple[Any, tuple[int, ...], Any]] = {
    "sign": (np.float64, (), 1.0),
    "thr": (np.float64, (4,), INF),  # oriented; a missing level takes the next present one's
    "clr": (np.float64, (4,), np.nan),  # oriented clear value of each present level
    "present": (np.bool_, (4,), False),
    "for_ms": (np.int64, (4,), 0),
    "clear_for_ms": (np.int64, (), 0),
    "level": (np.int8, (), 0),
    "up_since": (np.int64, (4,), NONE),  # start of the run with target ≥ level, per level
    "down_since": (np.int64, (), NONE),  # start of the run with target < level
    # quiet interval in raw values, both ends inclusive: qa <= value <= qb
    "qa": (np.float64, (), INF),
    "qb": (np.float64, (), -INF),
    "gate": (np.bool_, (), True),  # the site is in a state the rule applies to
}


@dataclass(frozen=True)
class Params:
    sign: float
    thr: tuple[float, float, float, float]
    clr: tuple[float, float, float, float]
    present: tuple[bool, bool, bool, bool]
    for_ms: tuple[int, int, int, int]
    clear_for_ms: int


def params_for(rule: ThresholdRule, tags: dict[str, str]) -> Params | None:
    """The rule's numbers for one device; None if a tag threshold cannot be resolved or
    the resolved numbers are not a valid rule (the slot is then not bound)."""
    levels: dict[str, float] = {}
    for lw, bound in rule.levels.items():
        got = resolve_bound(bound, tags)
        if got is None:
            return None
        levels[lw] = got
    sign = 1.0 if rule.direction == "above" else -1.0
    clear: dict[str, float] = {}
    for key, t in levels.items():
        word = key
        if rule.deadband is not None:
            clear[word] = t - sign * rule.deadband
        elif word in rule.clear:
            got = resolve_bound(rule.clear[word], tags)
            if got is None:
                return None
            clear[word] = got
        else:
            clear[word] = t
    try:
        check_threshold_numbers(rule, levels, clear)
    except ValueError:
        return None
    thr, clr, present, for_ms = [INF] * 4, [math.nan] * 4, [False] * 4, [0] * 4
    nxt = INF
    for i in range(3, -1, -1):
        word = COLOURS[i].word
        if word in levels:
            nxt = sign * levels[word]
            clr[i], present[i] = sign * clear[word], True
            for_ms[i] = round(rule.level_for_s(word) * 1000)
        thr[i] = nxt
    return Params(
        sign,
        (thr[0], thr[1], thr[2], thr[3]),
        (clr[0], clr[1], clr[2], clr[3]),
        (present[0], present[1], present[2], present[3]),
        (for_ms[0], for_ms[1], for_ms[2], for_ms[3]),
        round(rule.clear_for_s * 1000),
    )


def step(p: list[Any], t: int, v: float, gate: bool) -> tuple[int, float] | None:
    """One reading through one slot. `p` = [level, up_since(4), down_since, thr(4), clr(4),
    present(4), for_ms(4), clear_for_ms] as Python values, updated in place. Returns the
    new level and the (oriented) bound crossed when the level changes."""
    level, up, thr, clr, present, for_ms = p[0], p[1], p[3], p[4], p[5], p[6]
    target = 0
    if gate:
        for i in range(4):
            if v >= thr[i]:
                target = i + 1
        for i in range(level - 1, target - 1, -1):
            if present[i] and v >= clr[i]:
                target = i + 1
                break
    new = level
    for i in range(level, 4):
        if not present[i] or target <= i:
            up[i] = NONE
        elif up[i] == NONE:
            up[i] = t
    for i in range(3, level - 1, -1):
        if up[i] != NONE and t - up[i] >= for_ms[i]:
            new = i + 1
            break
    if new == level:
        if target >= level:
            p[2] = NONE
            return None
        if p[2] == NONE:
            p[2] = t
        if t - p[2] < p[7]:
            return None
        new = target
    bound = thr[new - 1] if new > level else next(clr[i] for i in range(new, level) if present[i])
    p[0] = new
    for i in range(new):
        up[i] = NONE
    p[2] = NONE
    return new, bound


class Thresholds(Kind):
    """The slots of every threshold rule. Snapshot section: a `slots.Table`."""

    name = "threshold"
    rules = (ThresholdRule,)
    per_series = True

    def __init__(self, series: Series, gate: Callable[[Rule, DeviceInfo], bool]) -> None:
        self.series = series
        self.gate = gate  # the rule applies to the device's site now (site state, calendar)
        self.slots = Slots(COLUMNS)
        self.entries: dict[int, RuleEntry] = {}
        self._off_hours: dict[str, bool] = {}  # rule id → its calendar gate at the last tick

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        rule = entry.rule
        assert isinstance(rule, ThresholdRule)
        self.entries[entry.index] = entry
        rows: list[tuple[int, Params, bool]] = []
        shared = (
            None if any(isinstance(b, str) for b in rule.levels.values()) else params_for(rule, {})
        )
        for sid in sids:
            info, _ = self.series.info(sid)
            p = shared if shared is not None and info.device not in rule.overrides else None
            if p is None:
                p = params_for(entry.for_device(info.device), info.tags)
            if p is not None:
                rows.append((sid, p, self.gate(rule, info)))
        if not rows:
            return
        k = self.slots.add(entry.index, np.array([r[0] for r in rows], np.intp))
        c = self.slots.col
        c["sign"][k] = [r[1].sign for r in rows]
        c["thr"][k] = [r[1].thr for r in rows]
        c["clr"][k] = [r[1].clr for r in rows]
        c["present"][k] = [r[1].present for r in rows]
        c["for_ms"][k] = [r[1].for_ms for r in rows]
        c["clear_for_ms"][k] = [r[1].clear_for_ms for r in rows]
        c["gate"][k] = [r[2] for r in rows]
        if carried:
            self._carry(k, carried)
        self.refresh(k)

    def _carry(self, k: npt.NDArray[np.intp], carried: Carried) -> None:
        """A new version of a rule: each series keeps the nearest level the new rule has at
        or below its old one, else the new rule's lowest."""
        c = self.slots.col
        old = np.array([carried.get(s, 0) for s in self.slots.series[k].tolist()], np.int8)
        present = c["present"][k]
        lv = np.zeros(len(k), np.int8)
        for i in range(4):
            lv = np.where(present[:, i] & (old >= i + 1), i + 1, lv)
        lowest = np.argmax(present, axis=1) + 1
        c["level"][k] = np.where((old > 0) & (lv == 0), lowest, lv).astype(np.int8)

    def unbind(self, entry: RuleEntry) -> Carried:
        k = self.slots.of_rule(entry.index)
        levels = dict(
            zip(self.slots.series[k].tolist(), self.slots.col["level"][k].tolist(), strict=True)
        )
        self.slots.remove(k)
        self.entries.pop(entry.index, None)
        self._off_hours.pop(entry.id, None)
        self.slots.compact()
        return levels

    def drop_series(self, sids: npt.NDArray[np.intp]) -> Carried:
        k = self.slots.of_series(sids)
        levels = {
            (r, s): lv
            for r, s, lv in zip(
                self.slots.rule[k].tolist(),
                self.slots.series[k].tolist(),
                self.slots.col["level"][k].tolist(),
                strict=True,
            )
        }
        self.slots.remove(k)
        return levels

    def carry_series(self, levels: Carried, sids: npt.NDArray[np.intp]) -> None:
        """A device bound again keeps each threshold rule's level (no repeated alert)."""
        k = self.slots.of_series(sids)
        for slot, r, s in zip(
            k.tolist(), self.slots.rule[k].tolist(), self.slots.series[k].tolist(), strict=True
        ):
            self.slots.col["level"][slot] = levels.get((r, s), 0)
        self.refresh(k)

    def regate(self, sids: npt.NDArray[np.intp]) -> None:
        """The site state of these series changed: their slots' gates are judged again."""
        k = self.slots.of_series(sids)
        self._set_gates(k)

    def _set_gates(self, k: npt.NDArray[np.intp]) -> None:
        series = self.series
        gates = [
            self.gate(
                self.entries[int(self.slots.rule[x])].rule,
                series.devices[int(series.device[self.slots.series[x]])],
            )
            for x in k.tolist()
        ]
        self.set_gate(k, np.array(gates, np.bool_))

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        """Open or close the gates of `off_hours` rules whose calendar changed at this tick
        (the engine's clock is already at `now_ms`); a gate acts at the next reading."""
        for entry in self.entries.values():
            rule = entry.rule
            if not isinstance(rule, ThresholdRule) or rule.off_hours is None:
                continue
            now = rule.off_hours.active(now_ms)
            if self._off_hours.get(rule.id) == now:
                continue
            self._off_hours[rule.id] = now
            self._set_gates(self.slots.of_rule(entry.index))
        return []

    def snapshot(self, part: Part) -> Table | None:
        return slot_table.capture(self.slots, self.entries, part.sids, part.pos)

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        by_id = {e.id: e for e in self.entries.values()}
        for data, at in pieces:
            table = msgspec.msgpack.decode(data, type=Table)
            self.refresh(slot_table.restore(self.slots, by_id, table, at.sids))

    def refresh(self, k: npt.NDArray[np.intp]) -> None:
        """Recompute the quiet interval of slots whose state changed."""
        c = self.slots.col
        level = c["level"][k].astype(np.intp)
        steady = (c["up_since"][k] == NONE).all(axis=1) & (c["down_since"][k] == NONE)
        lo = np.where(level == 0, -INF, c["clr"][k, np.maximum(level - 1, 0)])
        hi = np.where(level == 4, INF, c["thr"][k, np.minimum(level, 3)])
        gate = c["gate"][k]
        idle = steady & ~gate & (level == 0)
        lo = np.where(idle, -INF, lo)
        hi = np.where(idle, INF, hi)
        loud = ~steady | (~gate & (level > 0))
        lo = np.where(loud, INF, lo)
        hi = np.where(loud, -INF, hi)
        # oriented lo <= v' < hi, with v' = sign * v, as inclusive raw bounds
        above = c["sign"][k] > 0
        c["qa"][k] = np.where(above, lo, np.nextafter(-hi, INF))
        c["qb"][k] = np.where(above, np.nextafter(hi, -INF), -lo)

    def evaluate(self, readings: Readings) -> Indexed:
        """Transitions of one batch, each with the arrival index of its deciding reading."""
        r = readings
        sid, ts, value, usable, series = r.sid, r.batch.ts, r.batch.value, r.usable, self.series
        out: Indexed = []
        self.slots.fit_series(series.count)
        c = self.slots.col
        for layer in self.slots.layers:
            k = layer[sid]
            bound = k >= 0
            if bound.all():
                idx, kk, v = None, k, value
            else:
                idx = np.flatnonzero(bound)
                if not len(idx):
                    continue
                kk, v = k[idx], value[idx]
            # NaN compares false, so a missing value is "loud" and dropped just below
            loud_at = np.flatnonzero(~((v >= c["qa"][kk]) & (v <= c["qb"][kk])))
            loud = loud_at if idx is None else idx[loud_at]
            if len(loud) and usable[loud].any():
                out.extend(self._slow(kk, idx, loud[usable[loud]], ts, value, usable, series))
        return out

    def _slow(
        self, kk: Any, idx: Any, loud: Any, ts: I64, value: F64, usable: B, series: Series
    ) -> list[tuple[int, Transition]]:
        """Every usable reading of the slots that had a loud one, slot by slot in arrival
        order, through `step`. `kk[i]` is the slot of reading `idx[i]` (idx None: i)."""
        rows = np.arange(len(kk)) if idx is None else idx
        slot_of = np.full(len(value), -1, np.int64)
        slot_of[rows] = kk
        slots = np.unique(slot_of[loud])
        hot = np.zeros(self.slots.n, np.bool_)
        hot[slots] = True
        pick = rows[hot[kk] & usable[rows]]
        pick = pick[group_order(slot_of[pick])]
        ks = slot_of[pick].tolist()
        out: list[tuple[int, Transition]] = []
        i = 0
        while i < len(ks):
            k = ks[i]
            j = i
            while j < len(ks) and ks[j] == k:
                j += 1
            out.extend(self._run(k, pick[i:j], ts, value, series))
            i = j
        self.refresh(slots.astype(np.intp))
        self.series.touch(self.slots.series[slots])
        return out

    def _run(
        self, k: int, rows: Any, ts: I64, value: F64, series: Series
    ) -> list[tuple[int, Transition]]:
        c = self.slots.col
        sign = float(c["sign"][k])
        p = [
            int(c["level"][k]),
            c["up_since"][k].tolist(),
            int(c["down_since"][k]),
            c["thr"][k].tolist(),
            c["clr"][k].tolist(),
            c["present"][k].tolist(),
            c["for_ms"][k].tolist(),
            int(c["clear_for_ms"][k]),
        ]
        gate = bool(c["gate"][k])
        entry = self.entries[int(self.slots.rule[k])]
        direction = "above" if sign > 0 else "below"
        out: list[tuple[int, Transition]] = []
        for a, t, raw in zip(rows.tolist(), ts[rows].tolist(), value[rows].tolist(), strict=True):
            before = p[0]
            got = step(p, t, raw * sign, gate)
            if got is not None:
                info, point = series.info(int(self.slots.series[k]))
                tr = series_transition(
                    entry,
                    info,
                    point,
                    from_level=before,
                    to_level=got[0],
                    ts=t,
                    value=raw,
                    threshold=got[1] * sign,
                    direction=direction,
                )
                out.append((a, tr))
        c["level"][k], c["up_since"][k], c["down_since"][k] = p[0], p[1], p[2]
        return out

    def set_gate(self, k: npt.NDArray[np.intp], gate: B) -> None:
        changed = k[self.slots.col["gate"][k] != gate]
        self.slots.col["gate"][k] = gate
        self.refresh(k)
        self.series.touch(self.slots.series[changed])


def gated(rule: ThresholdRule) -> frozenset[str] | None:
    return site_states(rule.site_state)
