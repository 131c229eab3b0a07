"""Test kit for rule tests: readings as batches, written the way a timeline reads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from yujing.ingest.batch import DeviceInfo, ReadingBatch


def gas(
    device: str, *, location: str = "coal_face", critical: bool = False, site: str = "s1"
) -> DeviceInfo:
    tags = {"sector": "coal", "location": location}
    if critical:
        tags["critical"] = "true"
    return DeviceInfo("e1", device, "gas_detector", site, tags, {"ch4": "%CH4", "o2": "%vol"})


def batch(
    rows: Sequence[tuple[DeviceInfo, str, int, float] | tuple[DeviceInfo, str, int, float, int]],
) -> ReadingBatch:
    """Readings as (device, point, ts_ms, value[, quality])."""
    devices: list[DeviceInfo] = []
    points: list[str] = []
    dev, pt, ts, val, q = [], [], [], [], []
    for row in rows:
        info, point, t, v = row[0], row[1], row[2], row[3]
        if info not in devices:
            devices.append(info)
        if point not in points:
            points.append(point)
        dev.append(devices.index(info))
        pt.append(points.index(point))
        ts.append(t)
        val.append(v)
        q.append(row[4] if len(row) > 4 else 0)
    return ReadingBatch(
        devices,
        points,
        np.array(dev, np.int32),
        np.array(pt, np.int32),
        np.array(ts, np.int64),
        np.array(val, np.float64),
        np.array(q, np.uint8),
    )


def series(
    info: DeviceInfo, point: str, values: Sequence[float], *, t0: int = 0, step_ms: int = 1000
) -> ReadingBatch:
    return batch([(info, point, t0 + i * step_ms, v) for i, v in enumerate(values)])
