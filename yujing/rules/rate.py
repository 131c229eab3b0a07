"""Rate rules: change per minute over `window_s`, graded like a threshold.

rate = (v − v₀) / (t − t₀) × 60 000, where (t₀, v₀) is the oldest usable reading of the
series within `window_s` before the current one (inclusive); a reading with no older one
in the window (the first, or one after a gap) has no rate and changes nothing. The rate
then goes through the threshold level machine (`threshold.step`): `levels`, `for_s`,
`clear_for_s`, with each level clearing at its own threshold.

Rates need the window's history, so each rate slot keeps a small deque and runs per
reading in Python. Only readings of series bound to a rate rule take that path (in the
default packs: `power-jump`, on meters with a `jump_kw` tag); the bench states the cost
(`bench/engine.py --jump-share`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from yujing.levels import COLOURS
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.kind import Carried, Indexed, Kind, Part, Readings, Restored
from yujing.rules.model import RateRule, _ordered, resolve_bound
from yujing.rules.series import NONE_TS, Series
from yujing.rules.threshold import step
from yujing.rules.transition import Transition

NONE = int(NONE_TS)


@dataclass
class RateSlot:
    entry: RuleEntry
    sid: int
    window_ms: int
    sign: float
    state: list[Any]  # threshold.step's state list
    history: deque[tuple[int, float]] = field(default_factory=deque)


def _state(rule: RateRule, level: int, tags: dict[str, str]) -> list[Any] | None:
    """The threshold state of one slot; None when a tag threshold cannot be resolved or the
    resolved numbers do not rise with the level (the slot is then not bound)."""
    sign = 1.0 if rule.direction == "above" else -1.0
    levels = {w: resolve_bound(b, tags) for w, b in rule.levels.items()}
    numbers = {w: v for w, v in levels.items() if v is not None}
    if len(numbers) != len(levels):
        return None
    try:
        _ordered(numbers, increasing=sign > 0, what="levels")
    except ValueError:
        return None
    thr, present = [math.inf] * 4, [False] * 4
    nxt = math.inf
    for i in range(3, -1, -1):
        word = COLOURS[i].word
        if word in numbers:
            nxt = sign * numbers[word]
            present[i] = True
        thr[i] = nxt
    clr = [t if p else math.nan for t, p in zip(thr, present, strict=True)]
    for_ms = round(rule.for_s * 1000)
    return [
        level,
        [NONE] * 4,
        NONE,
        thr,
        clr,
        present,
        [for_ms] * 4,
        round(rule.clear_for_s * 1000),
    ]


class RateState(msgspec.Struct, array_like=True):
    """One rate slot in a snapshot: its rule, series (position in the snapshot), the
    threshold step's (level, up_since, down_since) and the window's readings."""

    rule: str
    version: int
    at: int
    level: int
    up_since: list[int]
    down_since: int
    history: list[tuple[int, float]]


class Rates(Kind):
    """Rate slots, per series. Snapshot section: a list of `RateState`."""

    name = "rate"
    rules = (RateRule,)
    per_series = True

    def __init__(self, series: Series) -> None:
        self.series = series
        self.by_series: dict[int, list[RateSlot]] = {}
        self.bound = np.zeros(0, np.bool_)

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        series = self.series
        for sid in sids:
            info, _ = series.info(sid)
            rule = entry.for_device(info.device)
            assert isinstance(rule, RateRule)
            sign = 1.0 if rule.direction == "above" else -1.0
            state = _state(rule, carried.get(sid, 0), info.tags)
            if state is None:
                continue
            slot = RateSlot(entry, sid, round(rule.window_s * 1000), sign, state)
            self.by_series.setdefault(sid, []).append(slot)
        self._mark(series.count)

    def _mark(self, n: int) -> None:
        self.bound = np.zeros(max(n, 1), np.bool_)
        self.bound[[s for s, slots in self.by_series.items() if slots]] = True

    def unbind(self, entry: RuleEntry) -> Carried:
        levels: dict[int, int] = {}
        for sid, slots in self.by_series.items():
            for s in [s for s in slots if s.entry is entry]:
                levels[sid] = s.state[0]
                slots.remove(s)
        self._mark(len(self.bound))
        return levels

    def drop_series(self, sids: npt.NDArray[np.intp]) -> Carried:
        for sid in sids.tolist():
            self.by_series.pop(sid, None)
        self._mark(len(self.bound))
        return {}

    def snapshot(self, part: Part) -> list[RateState] | None:
        if not self.by_series:
            return None
        out = []
        for sid in part.sids.tolist():
            for slot in self.by_series.get(sid, ()):
                st = slot.state
                out.append(
                    RateState(slot.entry.id, slot.entry.version, int(part.pos[sid]), st[0],
                              list(st[1]), st[2], list(slot.history))
                )  # fmt: skip
        return out or None

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        for data, at in pieces:
            for r in msgspec.msgpack.decode(data, type=list[RateState]):
                for slot in self.by_series.get(int(at.sids[r.at]), []):
                    if slot.entry.id != r.rule:
                        continue
                    slot.state[0] = r.level
                    if slot.entry.version == r.version:  # a changed rule keeps only the level
                        slot.state[1], slot.state[2] = list(r.up_since), r.down_since
                        slot.history = deque(r.history)

    def evaluate(self, readings: Readings) -> Indexed:
        if not self.by_series:
            return []
        series = self.series
        sid, ts, value = readings.sid, readings.batch.ts, readings.batch.value
        if len(self.bound) < series.count:
            self._mark(series.count)
        rows = np.flatnonzero(self.bound[sid] & readings.usable)
        series.touch(sid[rows])
        out: Indexed = []
        for a, s, t, v in zip(
            rows.tolist(), sid[rows].tolist(), ts[rows].tolist(), value[rows].tolist(), strict=True
        ):
            for slot in self.by_series[s]:
                got = self._reading(slot, t, v, series)
                if got is not None:
                    out.append((a, got))
        return out

    def _reading(self, slot: RateSlot, t: int, v: float, series: Series) -> Transition | None:
        h = slot.history
        h.append((t, v))
        while t - h[0][0] > slot.window_ms:
            h.popleft()
        t0, v0 = h[0]
        if t0 >= t:
            return None
        rate = (v - v0) / (t - t0) * 60_000
        before = slot.state[0]
        got = step(slot.state, t, rate * slot.sign, True)
        if got is None:
            return None
        info, point = series.info(slot.sid)
        unit = info.units.get(point, "")
        return series_transition(
            slot.entry, info, point, from_level=before, to_level=got[0], ts=t, value=rate,
            threshold=got[1] * slot.sign, unit=f"{unit}/min" if unit else "/min",
            direction="above" if slot.sign > 0 else "below",
        )  # fmt: skip
