"""Series: one (device, point) stream. Maps a batch's device and point tables to stable
series ids, and applies the late-reading policy on event time.

Late policy: a reading is *late* when its `ts` is older than the newest `ts` the series has
already seen (in arrival order, across batches). Late readings are skipped by every rule
and counted; a reading with the same `ts` as the newest is not late. Because the decision
depends only on the series' arrival order, splitting a stream into batches differently
never changes which readings are late, and so never changes a transition.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from yujing.ingest.batch import DeviceInfo, ReadingBatch

NONE_TS = np.iinfo(np.int64).min  # "never": the sentinel of every timestamp column
_NAME = operator.attrgetter("device")
_ENTERPRISE = operator.attrgetter("enterprise")
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


def grow(a: npt.NDArray[np.generic], n: int, fill: object) -> npt.NDArray[np.generic]:
    """`a` with room for at least `n` entries (doubling), new entries set to `fill`."""
    if n <= a.shape[0]:
        return a
    size = max(n, 2 * a.shape[0], 16)
    out = np.empty((size, *a.shape[1:]), dtype=a.dtype)
    out[: a.shape[0]] = a
    out[a.shape[0] :] = fill
    return out


@dataclass
class Series:
    """Every series the engine has seen, with the columns shared by all rule kinds."""

    devices: list[DeviceInfo] = field(default_factory=list)
    device_index: dict[tuple[str, str], int] = field(default_factory=dict)
    by_enterprise: dict[str, dict[str, int]] = field(default_factory=dict)
    device_partition: I32 = field(default_factory=lambda: np.empty(0, np.int32))
    # registry uid → engine device index (-1: not seen), and the record revision last bound
    uid_index: I32 = field(default_factory=lambda: np.empty(0, np.int32))
    device_rev: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    dirty: set[int] = field(default_factory=set)
    points: list[str] = field(default_factory=list)
    point_index: dict[str, int] = field(default_factory=dict)
    keys: dict[tuple[int, int], int] = field(default_factory=dict)
    table: I32 = field(default_factory=lambda: np.full((0, 0), -1, np.int32))
    device: I32 = field(default_factory=lambda: np.empty(0, np.int32))
    point: I32 = field(default_factory=lambda: np.empty(0, np.int32))
    last_ts: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    count: int = 0
    # Since the last snapshot: devices whose rule state a kind changed (`touch`), and each
    # series' newest `ts` as that snapshot held it; together they say what a delta holds.
    touched: B = field(default_factory=lambda: np.zeros(0, np.bool_))
    saved_ts: I64 = field(default_factory=lambda: np.empty(0, np.int64))

    def __len__(self) -> int:
        return self.count

    def info(self, sid: int) -> tuple[DeviceInfo, str]:
        return self.devices[int(self.device[sid])], self.points[int(self.point[sid])]

    def of_device(self, dev: int) -> Iterator[int]:
        row = self.table[dev] if dev < self.table.shape[0] else np.empty(0, np.int32)
        yield from (int(s) for s in row[row >= 0])

    def add_device(self, info: DeviceInfo, partition: int) -> tuple[int, bool]:
        """Engine index of a device; `True` when its registry record changed since it was
        last seen (its series must then be bound to rules again)."""
        key = (info.enterprise, info.device)
        idx = self.device_index.get(key)
        if idx is None:
            idx = self.device_index[key] = len(self.devices)
            self.by_enterprise.setdefault(info.enterprise, {})[info.device] = idx
            self.devices.append(info)
            self.device_partition = grow(self.device_partition, idx + 1, partition)  # type: ignore[assignment]
            self.device_partition[idx] = partition  # (grow fills only when it grows)
            self.touched = grow(self.touched, idx + 1, False)  # type: ignore[assignment]
            self.touched[idx] = True
            self._note_uid(info, idx)
            return idx, False
        if self.devices[idx] != info:
            self.devices[idx] = info
            self.touched[idx] = True
            self._note_uid(info, idx)
            return idx, True
        return idx, False

    def _note_uid(self, info: DeviceInfo, idx: int) -> None:
        self.device_rev = grow(self.device_rev, idx + 1, 0)  # type: ignore[assignment]
        self.device_rev[idx] = info.rev
        if info.uid > 0:
            self.uid_index = grow(self.uid_index, info.uid + 1, -1)  # type: ignore[assignment]
            self.uid_index[info.uid] = idx

    def add_point(self, name: str) -> int:
        idx = self.point_index.get(name)
        if idx is None:
            idx = self.point_index[name] = len(self.points)
            self.points.append(name)
        return idx

    def ensure(self, dev: int, pt: int) -> tuple[int, bool]:
        sid = self.keys.get((dev, pt))
        if sid is not None:
            return sid, False
        sid = self.keys[(dev, pt)] = self.count
        self.count += 1
        self.device = grow(self.device, self.count, -1)  # type: ignore[assignment]
        self.point = grow(self.point, self.count, -1)  # type: ignore[assignment]
        self.last_ts = grow(self.last_ts, self.count, NONE_TS)  # type: ignore[assignment]
        self.saved_ts = grow(self.saved_ts, self.count, NONE_TS)  # type: ignore[assignment]
        self.device[sid], self.point[sid] = dev, pt
        self._fit_table(dev + 1, pt + 1)
        self.table[dev, pt] = sid
        return sid, True

    def touch(self, sids: npt.NDArray[np.integer] | list[int]) -> None:
        """A kind changed the state of these series: their devices go in the next delta."""
        if len(sids):
            self.touched[self.device[sids]] = True

    def of_partition(self, partition: int | None) -> npt.NDArray[np.intp]:
        """Engine indices of the devices whose readings come from `partition` (None: all)."""
        n = len(self.devices)
        if partition is None:
            return np.arange(n, dtype=np.intp)
        return np.flatnonzero(self.device_partition[:n] == partition)

    def changed(self, devices: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """Those of `devices` whose state changed since the last snapshot: touched by a
        kind, or a series with a newer reading (compared as one array, not per reading)."""
        n = self.count
        moved = np.flatnonzero(self.last_ts[:n] != self.saved_ts[:n])
        mark = self.touched[: len(self.devices)].copy()
        mark[self.device[moved]] = True
        return devices[mark[devices]]

    def saved(self) -> None:
        """A snapshot of every partition was taken: changes count from now."""
        self.saved_ts[: self.count] = self.last_ts[: self.count]
        self.touched[:] = False

    def series_of_devices(self, devices: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """Every series of these devices, device by device, points in table order."""
        rows = self.table[devices[devices < self.table.shape[0]]]
        out: npt.NDArray[np.intp] = rows[rows >= 0].astype(np.intp)
        return out

    def forget(self, key: tuple[str, str]) -> None:
        """The registry deleted this device: keep a tombstone record that no batch equals,
        so a batch of it later (registered again) binds its series anew."""
        idx = self.device_index.get(key)
        if idx is None:
            return
        self.devices[idx] = msgspec.structs.replace(self.devices[idx], kind="", rev=-1)
        self.device_rev[idx] = -1
        self.dirty.add(idx)
        self.touched[idx] = True

    def mark_changed(self, key: tuple[str, str]) -> None:
        """The registry says this device's record changed: compare it on its next batch."""
        if key in self.device_index:
            self.dirty.add(self.device_index[key])

    def _map_by_uid(
        self, batch: ReadingBatch, partition: int
    ) -> tuple[npt.NDArray[np.intp], list[int]]:
        """Devices of a batch from the registry: one gather through `uid_index`, and a
        revision compare; only new or changed devices take the per-device path."""
        uids, revs = batch.uids, batch.revs
        top = int(uids.max())
        if top >= len(self.uid_index):
            self.uid_index = grow(self.uid_index, top + 1, -1)  # type: ignore[assignment]
        dmap = self.uid_index[uids].astype(np.intp)
        known = dmap >= 0
        stale = ~known
        stale[known] = self.device_rev[dmap[known]] != revs[known]
        changed: list[int] = []
        for i in np.flatnonzero(stale).tolist():
            dmap[i], is_changed = self.add_device(batch.devices[i], partition)
            if is_changed:
                changed.append(int(dmap[i]))
        self.dirty.clear()  # revisions carry record changes on this path
        self.device_partition[dmap] = partition
        return dmap, changed

    def _map_devices(
        self, devices: list[DeviceInfo], partition: int
    ) -> tuple[npt.NDArray[np.intp], list[int]]:
        # Per device only a name and a dict lookup, in C: records are compared only for
        # devices the registry marked as changed, so the common batch compares no structs.
        found = self._find(devices)
        changed: list[int] = []
        if None in found or self.dirty:
            for i, info in enumerate(devices):
                j = found[i]
                if j is None or j in self.dirty:
                    found[i], is_changed = self.add_device(info, partition)
                    if is_changed:
                        changed.append(found[i])  # type: ignore[arg-type]
            self.dirty.clear()
        dmap = np.fromiter(found, np.intp, len(found))
        self.device_partition[dmap] = partition
        return dmap, changed

    def _find(self, devices: list[DeviceInfo]) -> list[int | None]:
        if not devices:
            return []
        names = list(map(_NAME, devices))
        enterprises = list(map(_ENTERPRISE, devices))
        first = enterprises[0]
        if enterprises.count(first) == len(enterprises):
            return list(map(self.by_enterprise.get(first, {}).get, names))
        return [
            self.by_enterprise.get(e, {}).get(n) for e, n in zip(enterprises, names, strict=True)
        ]

    def lookup(self, batch: ReadingBatch, partition: int) -> tuple[I32, list[int], list[int]]:
        """Series id of every reading; plus the series that are new and the devices whose
        record changed (both need binding). Loops over the batch's tables, not readings."""
        if len(batch.devices) and int(batch.uids.min()) > 0:
            dmap, changed = self._map_by_uid(batch, partition)
        else:  # devices without registry ids (built by hand): by name
            dmap, changed = self._map_devices(batch.devices, partition)
        pmap = np.fromiter((self.add_point(p) for p in batch.points), np.intp, len(batch.points))
        if len(batch) == 0:
            return np.empty(0, np.int32), [], changed
        self._fit_table(len(self.devices), len(self.points))
        # one flat gather: (device, point) of each reading → a cell of the series table
        cell = dmap[batch.device] * self.table.shape[1] + pmap[batch.point]
        sid = self.table.ravel()[cell]
        new: list[int] = []
        missing = sid < 0
        if missing.any():
            cols = self.table.shape[1]
            for c in np.unique(cell[missing]).tolist():
                new.append(self.ensure(c // cols, c % cols)[0])
            cell = dmap[batch.device] * self.table.shape[1] + pmap[batch.point]
            sid = self.table.ravel()[cell]
        return sid, new, changed

    def _fit_table(self, rows: int, cols: int) -> None:
        if rows > self.table.shape[0] or cols > self.table.shape[1]:
            t = np.full(
                (max(rows, 2 * self.table.shape[0]), max(cols, self.table.shape[1], 8)),
                -1,
                np.int32,
            )
            t[: self.table.shape[0], : self.table.shape[1]] = self.table
            self.table = t

    def observe(self, sid: npt.NDArray[np.intp], ts: I64, runs: Runs) -> B:
        """Advance each series' newest `ts` and return which readings are late."""
        if sid.size == 0:
            return np.zeros(0, np.bool_)
        old = self.last_ts[sid]
        if runs.order is None:
            late: B = ts < old
            self.last_ts[sid] = np.maximum(old, ts)
            return late
        assert runs.grouped is not None
        late = _late_in_runs(runs.grouped, ts, old, runs.order)
        np.maximum.at(self.last_ts, sid, ts)
        return late


@dataclass(frozen=True)
class Runs:
    """How a batch's readings group into series: `rank` is each reading's occurrence
    number within its series (0 for the first); None when every series appears once."""

    order: npt.NDArray[np.intp] | None
    rank: npt.NDArray[np.intp] | None
    passes: int
    grouped: npt.NDArray[np.int64] | None = None  # sid[order]

    @classmethod
    def of(cls, sid: npt.NDArray[np.intp]) -> Runs:
        if sid.size == 0 or int(np.bincount(sid).max()) <= 1:
            return cls(None, None, 1)
        packed = (sid.astype(np.int64) << 32) | np.arange(sid.size, dtype=np.int64)
        packed.sort()
        order = (packed & 0xFFFF_FFFF).astype(np.intp)
        grouped = packed >> 32
        rank = np.empty(sid.size, np.intp)
        rank[order] = ranks(grouped)
        return cls(order, rank, int(rank.max()) + 1, grouped)


def group_order(keys: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """Positions ordered by key, arrival order kept within a key: one SIMD sort of
    (key << 32 | position), much faster than numpy's stable argsort."""
    n = keys.shape[0]
    packed = (keys.astype(np.int64) << 32) | np.arange(n, dtype=np.int64)
    packed.sort()
    return (packed & 0xFFFF_FFFF).astype(np.intp)


def ranks(sorted_keys: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """0, 1, 2, ... within each run of equal keys of an already grouped array."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, np.intp)
    start = np.ones(n, np.bool_)
    start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return np.arange(n) - first


def _late_in_runs(s: npt.NDArray[np.int64], ts: I64, old: I64, order: npt.NDArray[np.intp]) -> B:
    """Late flags when series appear several times: in series order (arrival kept within
    a series; `s` is the series id in that order), a running maximum that restarts at
    every series."""
    t, o = ts[order], old[order]
    base = int(t.min()) - 1
    rel_t = t - base
    rel_o = np.maximum(o, base) - base  # "never" and anything older than the batch → 0
    # Series id in the high bits makes one running maximum restart at every series.
    hi = s.astype(np.int64) << 42
    cm = np.maximum.accumulate(hi | np.minimum(rel_t, (1 << 42) - 1))
    prev = np.empty_like(cm)
    prev[0] = hi[0]
    prev[1:] = cm[:-1]
    prev = np.where(prev >> 42 == s, prev & ((1 << 42) - 1), 0)
    newest_before = np.maximum(prev, rel_o)
    out = np.empty(s.size, np.bool_)
    out[order] = rel_t < newest_before
    return out
