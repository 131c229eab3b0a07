"""Engine state as bytes, per input partition, and back.

A snapshot of partition p holds the series of the devices whose readings came from p, the
state of every slot on them (keyed by rule id and version, device and point, never by
array position, so it survives rule changes and other layouts), and the event windows of
those devices. Composite group state spans partitions: every partition's snapshot carries
all groups the engine holds, and a restore keeps the groups it does not have yet.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from yujing.ingest.batch import DeviceInfo
from yujing.rules.signals import EventState, GroupState
from yujing.rules.slots import Slots

if TYPE_CHECKING:
    from yujing.rules.engine import Engine


class _Table(msgspec.Struct, array_like=True):
    rules: list[str]
    versions: list[int]
    series: bytes  # int32 positions in the snapshot's series list
    columns: dict[str, tuple[str, list[int], bytes]]


class _Snapshot(msgspec.Struct, array_like=True):
    devices: list[DeviceInfo]
    series: list[tuple[int, str]]  # (position in devices, point)
    last_ts: bytes
    tables: dict[str, _Table]
    events: list[tuple[str, str, list[tuple[int, int]], int, int]]
    # rate slots: rule id, version, series position, (level, up_since, down_since), history
    rates: list[tuple[str, int, int, tuple[int, list[int], int], list[tuple[int, float]]]]
    groups: list[
        tuple[
            str,
            str,
            str,
            str | None,
            list[tuple[str, str, dict[str, int]]],
            list[tuple[str, str, int]],
            int,
        ]
    ]
    # event rules with `unanswered_by`: events still waiting for their answer
    pending: list[tuple[str, str, list[tuple[int, int]]]] = []
    # calibration rules: the level each device's alert is at (rule id, device key, level)
    calibrations: list[tuple[str, str, int]] = []


_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(_Snapshot)


def _dump_table(
    engine: Engine, slots: Slots, entries: dict[int, Any], pos: dict[int, int]
) -> _Table:
    n = slots.n
    alive = np.flatnonzero(slots.alive[:n])
    k = np.array([x for x in alive.tolist() if int(slots.series[x]) in pos], np.intp)
    rule_idx = slots.rule[k].tolist()
    cols = {}
    for name, arr in slots.col.items():
        part = np.ascontiguousarray(arr[k])
        cols[name] = (part.dtype.str, list(part.shape), part.tobytes())
    return _Table(
        rules=[entries[r].id for r in rule_idx],
        versions=[entries[r].version for r in rule_idx],
        series=np.array([pos[int(s)] for s in slots.series[k].tolist()], np.int32).tobytes(),
        columns=cols,
    )


def dump(
    engine: Engine, partition: int | None, *, series: bool = True, events: bool = True
) -> bytes:
    """One partition's state (None: every partition). A partition's readings checkpoint
    holds its series, its events checkpoint its event windows, each restored with the
    offsets of its own topic."""
    snap = _series_part(engine, partition) if series else _empty()
    if series:
        s = engine.series
        snap.calibrations = [
            (rid, dk, lv)
            for (rid, dk), lv in engine.calibrations.level.items()
            if partition is None
            or s.device_partition[s.device_index[tuple(dk.split("/", 1))]] == partition  # type: ignore[index]
        ]
    if events:
        snap.devices.extend(_event_part(engine, partition, snap))
    return _ENC.encode(snap)


def _empty() -> _Snapshot:
    return _Snapshot(devices=[], series=[], last_ts=b"", tables={}, rates=[], events=[], groups=[])


def _event_part(engine: Engine, partition: int | None, snap: _Snapshot) -> list[DeviceInfo]:
    """Adds the event windows to `snap`; returns the devices it needs that it lacks."""
    ev = engine.events
    states = [
        (k, st)
        for k, st in ev.state.items()
        if partition is None or ev.partition.get(k[1]) == partition
    ]
    snap.events = [(rid, dk, list(st.window), st.level, st.newest) for (rid, dk), st in states]
    snap.pending = [(rid, dk, list(st.pending)) for (rid, dk), st in states if st.pending]
    have = {d.key for d in snap.devices}
    return list({st.info.key: st.info for _, st in states if st.info.key not in have}.values())


def _series_part(engine: Engine, partition: int | None) -> _Snapshot:
    s = engine.series
    devs = [
        d for d in range(len(s.devices)) if partition is None or s.device_partition[d] == partition
    ]
    dev_pos = {d: i for i, d in enumerate(devs)}
    sids = [sid for d in devs for sid in s.of_device(d)]
    pos = {sid: i for i, sid in enumerate(sids)}
    snap = _Snapshot(
        devices=[s.devices[d] for d in devs],
        series=[(dev_pos[int(s.device[x])], s.points[int(s.point[x])]) for x in sids],
        last_ts=s.last_ts[np.array(sids, np.intp)].astype("<i8").tobytes(),
        tables={
            "threshold": _dump_table(
                engine, engine.thresholds.slots, engine.thresholds.entries, pos
            ),
            "health": _dump_table(engine, engine.health.slots, engine.health.entries, pos),
        },
        rates=[
            (
                slot.entry.id,
                slot.entry.version,
                pos[sid],
                (slot.state[0], slot.state[1], slot.state[2]),
                list(slot.history),
            )
            for sid, slots in engine.rates.by_series.items()
            if sid in pos
            for slot in slots
        ],
        events=[],
        groups=[
            (
                rid,
                g,
                st.enterprise,
                st.site,
                [(d, p, lv) for (d, p), lv in st.points.items()],
                [(d, p, t) for (d, p), t in st.hot_at.items()],
                st.level,
            )
            for (rid, g), st in engine.composites.groups.items()
        ],
    )
    return snap


def load(engine: Engine, data: bytes, partition: int) -> None:
    """Merge a partition's snapshot into a running engine (its rules already set)."""
    snap = _DEC.decode(data)
    s = engine.series
    dev_idx = [s.add_device(info, partition)[0] for info in snap.devices]
    sids = []
    new = []
    for d, point in snap.series:
        sid, is_new = s.ensure(dev_idx[d], s.add_point(point))
        sids.append(sid)
        if is_new:
            new.append(sid)
    if new:
        engine._bind_series(new)
    arr = np.array(sids, np.intp)
    if len(arr):
        s.last_ts[arr] = np.maximum(s.last_ts[arr], np.frombuffer(snap.last_ts, "<i8"))
    if snap.tables:
        _load_table(engine, engine.thresholds.slots, snap.tables["threshold"], arr)
        engine.thresholds.refresh(engine.thresholds.slots.of_series(arr))
        _load_table(engine, engine.health.slots, snap.tables["health"], arr)
    _load_rates(engine, snap, sids)
    infos = {i.key: i for i in snap.devices}
    for rid, dk, window, level, newest in snap.events:
        if dk in infos:
            engine.events.state[(rid, dk)] = EventState(infos[dk], deque(window), level, newest)
            engine.events.partition[dk] = partition
    engine.calibrations.carry({(rid, dk): lv for rid, dk, lv in snap.calibrations})
    for rid, dk, waiting in snap.pending:
        if (rid, dk) in engine.events.state:
            engine.events.state[(rid, dk)].pending = deque(waiting)
    for rid, g, ent, site, points, hot, level in snap.groups:
        if (rid, g) not in engine.composites.groups:
            engine.composites.groups[(rid, g)] = GroupState(
                ent,
                site,
                {(d, p): dict(lv) for d, p, lv in points},
                {(d, p): t for d, p, t in hot},
                level,
            )


def _load_table(engine: Engine, slots: Slots, table: _Table, sids: np.ndarray[Any, Any]) -> None:
    if not table.rules:
        return
    rows = np.frombuffer(table.series, np.int32)
    where: dict[tuple[int, int], int] = {}
    k = slots.of_series(sids) if len(sids) else np.empty(0, np.intp)
    for slot in k.tolist():
        where[(int(slots.rule[slot]), int(slots.series[slot]))] = slot
    full: list[tuple[int, int]] = []
    carry: list[tuple[int, int]] = []
    for i, (rid, version) in enumerate(zip(table.rules, table.versions, strict=True)):
        entry = engine.entries.get(rid)
        slot = None if entry is None else where.get((entry.index, int(sids[rows[i]])))
        if entry is not None and slot is not None:
            (full if entry.version == version else carry).append((slot, i))
    cols = {
        name: np.frombuffer(b, np.dtype(dt)).reshape(shape)
        for name, (dt, shape, b) in table.columns.items()
    }
    if full:
        t, src = (np.array(x, np.intp) for x in zip(*full, strict=True))
        for name, arr in cols.items():
            slots.col[name][t] = arr[src]
    if carry:
        # A rule changed since the snapshot: keep the level (the open alert), not timers.
        t, src = (np.array(x, np.intp) for x in zip(*carry, strict=True))
        slots.col["level"][t] = cols["level"][src]


def _load_rates(engine: Engine, snap: _Snapshot, sids: list[int]) -> None:
    for rid, version, at, (level, up, down), history in snap.rates:
        for slot in engine.rates.by_series.get(sids[at], []):
            if slot.entry.id != rid:
                continue
            slot.state[0] = level
            if slot.entry.version == version:  # a changed rule keeps only the level
                slot.state[1], slot.state[2] = list(up), down
                slot.history = deque(history)
