"""The columnar batch types that cross every stage boundary, and their wire encoding.

A `ReadingBatch` holds readings of one or more devices as numpy columns; device and point
names live once in small tables and the columns hold indices into them. The wire form
is msgpack with the columns as raw little-endian bytes, so decoding is a few `frombuffer`
calls, never a loop over readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

# Quality codes; `ok` is 0 so a zeroed column means "all good".
QUALITIES: tuple[str, ...] = ("ok", "fault", "calibrating", "maintenance")
QUALITY_CODE: dict[str, int] = {q: i for i, q in enumerate(QUALITIES)}
Q_OK = 0
Q_FAULT = 1


class DeviceInfo(msgspec.Struct, frozen=True):
    """What the registry says about a device, carried with its readings so that every
    engine binds rules to the same metadata ingest validated against."""

    enterprise: str
    device: str
    kind: str
    site: str
    tags: dict[str, str] = {}
    units: dict[str, str] = {}

    @property
    def key(self) -> str:
        return f"{self.enterprise}/{self.device}"


@dataclass(slots=True)
class ReadingBatch:
    devices: list[DeviceInfo]
    points: list[str]
    device: npt.NDArray[np.int32]  # index into `devices`
    point: npt.NDArray[np.int32]  # index into `points`
    ts: npt.NDArray[np.int64]  # event time, epoch milliseconds
    value: npt.NDArray[np.float64]  # NaN = no value
    quality: npt.NDArray[np.uint8]
    received_ms: int = 0

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls([], [], *_empty_columns())

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(
            _WireBatch(
                devices=self.devices,
                points=self.points,
                device=self.device.astype("<i4").tobytes(),
                point=self.point.astype("<i4").tobytes(),
                ts=self.ts.astype("<i8").tobytes(),
                value=self.value.astype("<f8").tobytes(),
                quality=self.quality.tobytes(),
                received_ms=self.received_ms,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ReadingBatch:
        w = _DECODER.decode(data)
        return cls(
            devices=w.devices,
            points=w.points,
            device=np.frombuffer(w.device, dtype="<i4").astype(np.int32),
            point=np.frombuffer(w.point, dtype="<i4").astype(np.int32),
            ts=np.frombuffer(w.ts, dtype="<i8").astype(np.int64),
            value=np.frombuffer(w.value, dtype="<f8").astype(np.float64),
            quality=np.frombuffer(w.quality, dtype=np.uint8).copy(),
            received_ms=w.received_ms,
        )

    @classmethod
    def concat(cls, batches: Sequence[ReadingBatch]) -> ReadingBatch:
        """One batch from many, re-indexing the device and point tables (a loop over
        batches and table entries, not over readings)."""
        if len(batches) == 1:
            return batches[0]
        devices: list[DeviceInfo] = []
        dev_index: dict[str, int] = {}
        points: list[str] = []
        pt_index: dict[str, int] = {}
        dev_cols, pt_cols = [], []
        for b in batches:
            dmap = np.empty(len(b.devices), dtype=np.int32)
            for i, d in enumerate(b.devices):
                j = dev_index.get(d.key)
                if j is None:
                    j = dev_index[d.key] = len(devices)
                    devices.append(d)
                dmap[i] = j
            pmap = np.empty(len(b.points), dtype=np.int32)
            for i, p in enumerate(b.points):
                pmap[i] = pt_index.setdefault(p, len(pt_index))
                if pmap[i] == len(points):
                    points.append(p)
            dev_cols.append(dmap[b.device] if len(b) else b.device)
            pt_cols.append(pmap[b.point] if len(b) else b.point)
        if not batches:
            return cls.empty()
        return cls(
            devices=devices,
            points=points,
            device=np.concatenate(dev_cols),
            point=np.concatenate(pt_cols),
            ts=np.concatenate([b.ts for b in batches]),
            value=np.concatenate([b.value for b in batches]),
            quality=np.concatenate([b.quality for b in batches]),
            received_ms=max(b.received_ms for b in batches),
        )


def _empty_columns() -> tuple[Any, ...]:
    return (
        np.empty(0, np.int32),
        np.empty(0, np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.float64),
        np.empty(0, np.uint8),
    )


class _WireBatch(msgspec.Struct, array_like=True):
    devices: list[DeviceInfo]
    points: list[str]
    device: bytes
    point: bytes
    ts: bytes
    value: bytes
    quality: bytes
    received_ms: int = 0


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_WireBatch)


class Event(msgspec.Struct, frozen=True):
    """A validated discrete event (electronic seals, spark detectors, airlocks)."""

    device: DeviceInfo
    ts: int
    type: str
    count: int = 1
    seq: int | None = None
    attrs: dict[str, Any] = {}


class Status(msgspec.Struct, frozen=True):
    """A validated device status message (also the device's MQTT last will)."""

    device: DeviceInfo
    ts: int
    state: str
    detail: str = ""


class DeadLetter(msgspec.Struct, frozen=True):
    """A message that could not be accepted, kept whole with the reason why."""

    topic: str
    received_ms: int
    reason: str
    detail: str
    payload: bytes
    enterprise: str | None = None
    device: str | None = None


@dataclass(slots=True)
class Counters:
    """Ingest's accounting: every message lands in exactly one of these."""

    accepted: int = 0
    duplicate: int = 0
    dead: dict[str, int] = field(default_factory=dict)


def encode(obj: Any) -> bytes:
    return _ENCODER.encode(obj)


EVENT_DECODER = msgspec.msgpack.Decoder(Event)
STATUS_DECODER = msgspec.msgpack.Decoder(Status)
DEADLETTER_DECODER = msgspec.msgpack.Decoder(DeadLetter)
