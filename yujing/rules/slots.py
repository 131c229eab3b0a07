"""A slot is the state of one rule on one series. `Slots` keeps them as numpy columns,
plus "layers": per series, the slot of its first, second, ... rule of this kind, so a
batch finds its slots with one gather per layer instead of a search. `Table` is the
snapshot format of a `Slots` (threshold and health rules share it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from yujing.rules.emit import RuleEntry
from yujing.rules.series import I32, grow


class Slots:
    def __init__(self, columns: dict[str, tuple[Any, tuple[int, ...], Any]]) -> None:
        self.spec = columns
        self.n = 0
        self.rule = np.empty(0, np.int32)
        self.series = np.empty(0, np.int32)
        self.alive = np.empty(0, np.bool_)
        self.col: dict[str, npt.NDArray[Any]] = {
            name: np.empty((0, *tail), dtype) for name, (dtype, tail, _) in columns.items()
        }
        self.layers: list[I32] = []
        self._series_len = 0

    def __len__(self) -> int:
        return self.n

    def add(self, rule: int, sids: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """New slots of `rule` on `sids` (each series at most once), columns at their fill."""
        first, self.n = self.n, self.n + len(sids)
        self.rule = grow(self.rule, self.n, -1)  # type: ignore[assignment]
        self.series = grow(self.series, self.n, -1)  # type: ignore[assignment]
        self.alive = grow(self.alive, self.n, False)  # type: ignore[assignment]
        for name, (_, _, fill) in self.spec.items():
            self.col[name] = grow(self.col[name], self.n, fill)
        slots = np.arange(first, self.n, dtype=np.intp)
        self.rule[slots], self.series[slots], self.alive[slots] = rule, sids, True
        for name, (_, _, fill) in self.spec.items():
            self.col[name][slots] = fill
        self._place(slots, sids)
        return slots

    def _place(self, slots: npt.NDArray[np.intp], sids: npt.NDArray[np.intp]) -> None:
        self.fit_series(int(sids.max()) + 1 if len(sids) else 0)
        todo_slots, todo_sids = slots, sids
        for layer in self.layers:
            if not len(todo_sids):
                return
            free = layer[todo_sids] < 0
            layer[todo_sids[free]] = todo_slots[free]
            todo_slots, todo_sids = todo_slots[~free], todo_sids[~free]
        while len(todo_sids):
            layer = np.full(self._series_len, -1, np.int32)
            layer[todo_sids] = todo_slots
            self.layers.append(layer)
            todo_sids = todo_sids[:0]

    def fit_series(self, n: int) -> None:
        if n > self._series_len:
            size = max(n, 2 * self._series_len, 16)
            self.layers = [grow(layer, size, -1) for layer in self.layers]  # type: ignore[misc]
            self._series_len = size

    def remove(self, slots: npt.NDArray[np.intp]) -> None:
        if not len(slots):
            return
        self.alive[slots] = False
        for layer in self.layers:
            sids = self.series[slots].astype(np.intp)
            hit = layer[sids] == slots
            layer[sids[hit]] = -1

    def of_rule(self, rule: int) -> npt.NDArray[np.intp]:
        return np.flatnonzero(self.alive[: self.n] & (self.rule[: self.n] == rule))

    def of_series(self, sids: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        self.fit_series(int(sids.max()) + 1 if len(sids) else 0)
        found = [layer[sids] for layer in self.layers]
        out = np.concatenate(found) if found else np.empty(0, np.int32)
        return out[out >= 0].astype(np.intp)

    def compact(self) -> None:
        """Drop dead slots once they outnumber live ones (after many rule changes)."""
        dead = self.n - int(self.alive[: self.n].sum())
        if dead <= max(1024, self.n // 2):
            return
        keep = np.flatnonzero(self.alive[: self.n])
        remap = np.full(self.n + 1, -1, np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        self.rule, self.series = self.rule[keep], self.series[keep]
        self.alive = self.alive[keep]
        for name in self.col:
            self.col[name] = self.col[name][keep]
        self.layers = [remap[layer] for layer in self.layers]  # -1 maps to remap[-1] = -1
        self.n = len(keep)


class Table(msgspec.Struct, array_like=True):
    """The slots of some series as a snapshot holds them: per slot its rule (an index into
    `rules`/`versions`), its series (a position in the snapshot's series list) and every
    column, as raw little-endian arrays."""

    rules: list[str]
    versions: list[int]
    rule_of: bytes  # int32 per slot: index into rules
    series: bytes  # int32 per slot: position in the snapshot's series list
    columns: dict[str, tuple[str, list[int], bytes]]


def capture(
    slots: Slots, entries: Mapping[int, RuleEntry], sids: npt.NDArray[np.intp], pos: Any
) -> Table | None:
    """The slots on `sids` (`pos[sid]`: the series' position in the snapshot); None if
    none. Found through the layers: the cost follows the series asked for, not the table."""
    k = np.sort(slots.of_series(sids)) if len(sids) else np.empty(0, np.intp)
    if not len(k):
        return None
    rule_idx, rule_of = np.unique(slots.rule[k], return_inverse=True)
    cols = {}
    for name, arr in slots.col.items():
        part = arr[k]  # a copy: the snapshot is encoded while the engine goes on
        cols[name] = (part.dtype.str, list(part.shape), part.tobytes())
    return Table(
        rules=[entries[int(r)].id for r in rule_idx],
        versions=[entries[int(r)].version for r in rule_idx],
        rule_of=rule_of.astype("<i4").tobytes(),
        series=pos[slots.series[k]].astype("<i4").tobytes(),
        columns=cols,
    )


def restore(
    slots: Slots, entries: Mapping[str, RuleEntry], table: Table, sids: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Write a table's columns into the slots bound to the same (rule, series); a rule
    whose version changed since keeps only the level (the open alert), not its timers.
    Returns the slots written."""
    if not table.rules or not len(sids):
        return np.empty(0, np.intp)
    rows = np.frombuffer(table.series, "<i4")
    index = [entries.get(rid) for rid in table.rules]
    rule_index = np.array([-1 if e is None else e.index for e in index], np.int64)
    same = np.array(
        [e is not None and e.version == v for e, v in zip(index, table.versions, strict=True)]
    )
    of = np.frombuffer(table.rule_of, "<i4")
    want_rule, want_sid = rule_index[of], sids[rows]
    # Where each (rule, series) sits now: the slots on these series, by (rule, series).
    k = slots.of_series(np.unique(want_sid))
    have = (slots.rule[k].astype(np.int64) << 32) | slots.series[k].astype(np.int64)
    want = (want_rule << 32) | want_sid.astype(np.int64)
    order = np.argsort(have)
    at = np.searchsorted(have[order], want)
    at = np.minimum(at, max(len(k) - 1, 0))
    found = (want_rule >= 0) & (len(k) > 0)
    if len(k):
        found &= have[order][at] == want
    target = k[order][at] if len(k) else np.empty(0, np.intp)
    cols = {
        name: np.frombuffer(b, np.dtype(dt)).reshape(shape)
        for name, (dt, shape, b) in table.columns.items()
    }
    full = found & same[of]
    carry = found & ~same[of]
    if full.any():
        for name, arr in cols.items():
            if name in slots.col:
                slots.col[name][target[full]] = arr[full]
    if carry.any():
        slots.col["level"][target[carry]] = cols["level"][carry]
    return target[found] if len(k) else np.empty(0, np.intp)
