"""A slot is the state of one rule on one series. `Slots` keeps them as numpy columns,
plus "layers": per series, the slot of its first, second, ... rule of this kind, so a
batch finds its slots with one gather per layer instead of a search."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

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
