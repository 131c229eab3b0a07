"""Device-health rules on series: `absent` (silence, or a point stuck in `fault` quality;
graded by duration on the clock tick) and `stuck` (value unchanged within `epsilon`;
graded by duration on event time).

Per slot: `mode` (silence, fault, stuck), `level`, duration bounds per level, `since`
(start of the fault run, or of the unchanged run) and `anchor` (the value the unchanged
run started with). A series with one reading in the batch is handled with array
operations; a series with several goes through the per-reading step in arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from yujing.ingest.batch import Q_FAULT, ReadingBatch, Status
from yujing.levels import COLOURS
from yujing.rules import slots as slot_table
from yujing.rules.emit import RuleEntry, series_transition
from yujing.rules.kind import Carried, Indexed, Kind, Owned, Part, Readings, Restored
from yujing.rules.model import AbsentRule, StuckRule
from yujing.rules.series import NONE_TS, B, Series
from yujing.rules.slots import Slots, Table
from yujing.rules.transition import Transition

NONE = int(NONE_TS)
NEVER = np.iinfo(np.int64).max
SILENCE, FAULT, STUCK = 0, 1, 2
COLUMNS: dict[str, tuple[Any, tuple[int, ...], Any]] = {
    "mode": (np.int8, (), 0),
    "level": (np.int8, (), 0),
    "dur": (np.int64, (4,), NEVER),  # ms; a missing level takes the next present one's
    "present": (np.bool_, (4,), False),
    "since": (np.int64, (), NONE),
    "anchor": (np.float64, (), np.nan),
    "eps": (np.float64, (), 0.0),
}


def durations(levels: Mapping[Any, float]) -> tuple[list[int], list[bool]]:
    dur, present, nxt = [NEVER] * 4, [False] * 4, NEVER
    for i in range(3, -1, -1):
        word = COLOURS[i].word
        if word in levels:
            nxt = round(levels[word] * 1000)
            present[i] = True
        dur[i] = nxt
    return dur, present


def level_at(dur: npt.NDArray[np.int64], elapsed: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    """Level reached after `elapsed` ms: the count of bounds passed (bounds are filled)."""
    reached: npt.NDArray[np.int8] = (elapsed[:, None] >= dur).sum(axis=1).astype(np.int8)
    return reached


class Health(Kind):
    """The slots of every `absent` and `stuck` rule. Snapshot section: a `slots.Table`."""

    name = "health"
    rules = (AbsentRule, StuckRule)
    per_series = True

    def __init__(self, series: Series) -> None:
        self.series = series
        self.slots = Slots(COLUMNS)
        self.entries: dict[int, RuleEntry] = {}

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        self.entries[entry.index] = entry
        rows = []
        for sid in sids:
            info, point = self.series.info(sid)
            rule = entry.for_device(info.device)
            assert isinstance(rule, AbsentRule | StuckRule)
            mode = (
                STUCK
                if isinstance(rule, StuckRule)
                else (FAULT if rule.signal == "fault" else SILENCE)
            )
            levels = (
                rule.seconds(info.intervals.get(point))
                if isinstance(rule, AbsentRule)
                else rule.levels
            )
            dur, present = durations(levels)
            eps = rule.epsilon if isinstance(rule, StuckRule) else 0.0
            rows.append((sid, mode, dur, present, eps, carried.get(sid, 0)))
        k = self.slots.add(entry.index, np.array([r[0] for r in rows], np.intp))
        c = self.slots.col
        c["mode"][k] = [r[1] for r in rows]
        c["dur"][k] = [r[2] for r in rows]
        c["present"][k] = [r[3] for r in rows]
        c["eps"][k] = [r[4] for r in rows]
        c["level"][k] = [r[5] for r in rows]

    def unbind(self, entry: RuleEntry) -> Carried:
        k = self.slots.of_rule(entry.index)
        levels = dict(
            zip(self.slots.series[k].tolist(), self.slots.col["level"][k].tolist(), strict=True)
        )
        self.slots.remove(k)
        self.entries.pop(entry.index, None)
        self.slots.compact()
        return levels

    def drop_series(self, sids: npt.NDArray[np.intp]) -> Carried:
        """A device bound again starts its health rules afresh (its record, and so its
        reporting intervals, may have changed)."""
        self.slots.remove(self.slots.of_series(sids))
        return {}

    def snapshot(self, part: Part) -> Table | None:
        return slot_table.capture(self.slots, self.entries, part.sids, part.pos)

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        by_id = {e.id: e for e in self.entries.values()}
        for data, at in pieces:
            slot_table.restore(self.slots, by_id, msgspec.msgpack.decode(data, type=Table), at.sids)

    def evaluate(self, readings: Readings) -> Indexed:
        """Once per occurrence rank (first readings of every series, then second ones...),
        so several readings of one series are applied in arrival order."""
        sid, batch, fresh, usable, runs = (
            readings.sid, readings.batch, readings.fresh, readings.usable, readings.runs
        )  # fmt: skip
        series = self.series
        self.slots.fit_series(series.count)
        out: Indexed = []
        faulty = batch.quality == Q_FAULT
        for layer in self.slots.layers:
            k = layer[sid]
            idx = np.flatnonzero((k >= 0) & fresh)
            if not len(idx):
                continue
            kk = k[idx]
            if runs.rank is None:
                out.extend(self._busy(kk, idx, batch, usable, faulty, series))
                continue
            rank = runs.rank[idx]
            for r in range(runs.passes):
                at = rank == r
                if at.any():
                    out.extend(self._busy(kk[at], idx[at], batch, usable, faulty, series))
        return out

    def _busy(
        self, kk: Any, idx: Any, batch: ReadingBatch, usable: B, faulty: B, series: Series
    ) -> list[tuple[int, Transition]]:
        """`_single` on the readings that can change their slot, judged on the state as it
        is now (earlier occurrences of the batch may have changed it)."""
        c = self.slots.col
        mode = c["mode"][kk]
        idle = (c["level"][kk] == 0) & (
            (mode == SILENCE)
            | ((mode == FAULT) & ~faulty[idx] & (c["since"][kk] == NONE))
            | ((mode == STUCK) & ~usable[idx])
        )
        return self._single(kk[~idle], idx[~idle], batch, usable, series)

    def _single(
        self, ks: Any, rows: Any, batch: ReadingBatch, usable: B, series: Series
    ) -> list[tuple[int, Transition]]:
        """One reading per slot (`ks[i]` gets reading `rows[i]`), all slots at once."""
        c = self.slots.col
        mode = c["mode"][ks]
        level = c["level"][ks]
        t = batch.ts[rows]
        # fault: a fault reading starts (or continues) the run, any other ends it
        is_fault = mode == FAULT
        faulty = batch.quality[rows] == Q_FAULT
        since = c["since"][ks]
        started = np.where(since == NONE, t, since)
        c["since"][ks[is_fault]] = np.where(faulty, started, NONE)[is_fault]
        # stuck: usable readings only; a move restarts the unchanged run
        st = (mode == STUCK) & usable[rows]
        v = batch.value[rows]
        anchor = c["anchor"][ks]
        moved = st & (np.isnan(anchor) | (np.abs(v - anchor) > c["eps"][ks]))
        c["anchor"][ks[moved]] = v[moved]
        c["since"][ks[moved]] = t[moved]
        held = st & ~moved
        new = level.copy()
        # silence: any reading ends it
        new[(mode == SILENCE) | (is_fault & ~faulty) | moved] = 0
        if held.any():
            grown = level_at(c["dur"][ks[held]], t[held] - c["since"][ks[held]])
            new[held] = np.maximum(level[held], grown)
        change = np.flatnonzero(new != level)
        c["level"][ks[change]] = new[change]
        # what a snapshot must see again: a fault run's start, a stuck run's anchor, a level
        series.touch(self.slots.series[ks[is_fault | moved | (new != level)]])
        return [
            (int(rows[i]), self._transition(int(ks[i]), int(level[i]), int(new[i]), int(t[i]),
                                            float(v[i]), series))
            for i in change.tolist()
        ]  # fmt: skip

    def _transition(
        self, k: int, before: int, after: int, t: int, v: float, series: Series
    ) -> Transition:
        c = self.slots.col
        entry = self.entries[int(self.slots.rule[k])]
        info, point = series.info(int(self.slots.series[k]))
        mode = int(c["mode"][k])
        if mode == STUCK and after > before:
            bound: float | None = float(c["dur"][k][after - 1]) / 1000
            return series_transition(
                entry,
                info,
                point,
                from_level=before,
                to_level=after,
                ts=t,
                value=(t - int(c["since"][k])) / 1000,
                threshold=bound,
                unit="s",
            )
        return series_transition(
            entry,
            info,
            point,
            from_level=before,
            to_level=after,
            ts=t,
            value=None if math.isnan(v) else v,
            threshold=None,
        )

    def on_status(self, sids: list[int], status: Status, index: int) -> Indexed:
        return [(index, t) for t in self._status(sids, status.state, status.ts)]

    def _status(self, sids: list[int], state: str, ts: int) -> list[Transition]:
        """A device's own status message on its series, at once: `offline` raises the
        silence rules' lowest level, `fault` starts a fault run and raises the fault rules'
        lowest level; `online` clears both and restarts the silence count. A status older
        than the newest reading of a series is late there and does nothing."""
        if state not in ("online", "offline", "fault") or not sids:
            return []
        series = self.series
        c = self.slots.col
        k = self.slots.of_series(np.array(sids, np.intp))
        k = k[series.last_ts[self.slots.series[k]] <= ts]
        mode, level = c["mode"][k], c["level"][k]
        new = level.copy()
        lowest = (np.argmax(c["present"][k], axis=1) + 1).astype(np.int8)
        if state == "online":
            hit = mode != STUCK
            c["since"][k[hit]] = np.where(mode[hit] == SILENCE, ts, NONE)
            new[hit] = 0
        else:
            hit = mode == (SILENCE if state == "offline" else FAULT)
            if state == "fault":
                since = c["since"][k[hit]]
                c["since"][k[hit]] = np.where(since == NONE, ts, since)
            new[hit] = np.maximum(level[hit], lowest[hit])
        change = np.flatnonzero(new != level)
        c["level"][k[change]] = new[change]
        series.touch(self.slots.series[k])
        return [
            self._transition(int(k[i]), int(level[i]), int(new[i]), ts, math.nan, series)
            for i in change.tolist()
        ]

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        """Silence and fault durations against the clock (on series of `owned` input
        partitions only, when given)."""
        return [(0, t) for t in self._tick(now_ms, self.series, owned.array)]

    def _tick(
        self, now_ms: int, series: Series, owned: npt.NDArray[np.int32] | None
    ) -> list[Transition]:
        c = self.slots.col
        n = self.slots.n
        live = self.slots.alive[:n] & (c["mode"][:n] != STUCK)
        if owned is not None:
            dev = series.device[self.slots.series[:n]]
            live &= np.isin(series.device_partition[dev], owned)
        k = np.flatnonzero(live)
        if not len(k):
            return []
        mode = c["mode"][k]
        # Silence counts from the last reading, or from an `online` status if that is later.
        last = series.last_ts[self.slots.series[k]]
        start = np.where(mode == SILENCE, np.maximum(last, c["since"][k]), c["since"][k])
        running = start != NONE
        elapsed = np.where(running, now_ms - np.where(running, start, 0), -1)
        grown = np.where(running, level_at(c["dur"][k], elapsed), 0)
        level = c["level"][k]
        new = np.maximum(level, grown).astype(np.int8)
        change = np.flatnonzero(new != level)
        c["level"][k[change]] = new[change]
        series.touch(self.slots.series[k[change]])
        out = []
        for i in change.tolist():
            k1 = int(k[i])
            entry = self.entries[int(self.slots.rule[k1])]
            info, point = series.info(int(self.slots.series[k1]))
            out.append(
                series_transition(
                    entry,
                    info,
                    point,
                    from_level=int(level[i]),
                    to_level=int(new[i]),
                    ts=now_ms,
                    value=float(elapsed[i]) / 1000,
                    threshold=float(c["dur"][k1][new[i] - 1]) / 1000,
                    unit="s",
                )
            )
        return out
