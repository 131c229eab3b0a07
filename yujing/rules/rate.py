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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from yujing.levels import COLOURS
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.model import RateRule, _ordered, resolve_bound
from yujing.rules.series import F64, I64, NONE_TS, B, Series
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


class Rates:
    def __init__(self) -> None:
        self.by_series: dict[int, list[RateSlot]] = {}
        self.bound = np.zeros(0, np.bool_)

    def bind(
        self, entry: RuleEntry, sids: list[int], series: Series, carried: dict[int, int]
    ) -> None:
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

    def unbind(self, entry: RuleEntry) -> dict[int, int]:
        levels: dict[int, int] = {}
        for sid, slots in self.by_series.items():
            for s in [s for s in slots if s.entry is entry]:
                levels[sid] = s.state[0]
                slots.remove(s)
        self._mark(len(self.bound))
        return levels

    def remove_series(self, sids: npt.NDArray[np.intp]) -> None:
        for sid in sids.tolist():
            self.by_series.pop(sid, None)
        self._mark(len(self.bound))

    def evaluate(
        self, sid: npt.NDArray[np.intp], ts: I64, value: F64, usable: B, series: Series
    ) -> list[tuple[int, Transition]]:
        if not self.by_series:
            return []
        if len(self.bound) < series.count:
            self._mark(series.count)
        rows = np.flatnonzero(self.bound[sid] & usable)
        out: list[tuple[int, Transition]] = []
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
