"""The columnar batch types that cross every stage boundary, and their wire encoding.

A `ReadingBatch` holds readings of one or more devices as numpy columns; device and point
names live once in small tables and the columns hold indices into them. The wire form
is msgpack with the columns as raw little-endian bytes, so decoding is a few `frombuffer`
calls, never a loop over readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
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
    # The registry's numeric id and record revision: an engine maps devices and notices a
    # changed record with numpy on these, instead of comparing names and records one by one.
    uid: int = 0
    rev: int = 0
    # Each point's registered reporting interval (s); device-health rules count missed
    # intervals against it. A point without one is judged against the rules' default.
    intervals: dict[str, float] = {}

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
    # Per entry of `devices`: registry uid and revision (0 when built without a registry).
    device_uid: npt.NDArray[np.int64] | None = None
    device_rev: npt.NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        if self.device_uid is None or self.device_rev is None:
            n = len(self.devices)
            self.device_uid = np.fromiter((d.uid for d in self.devices), np.int64, n)
            self.device_rev = np.fromiter((d.rev for d in self.devices), np.int64, n)

    @property
    def uids(self) -> npt.NDArray[np.int64]:
        assert self.device_uid is not None
        return self.device_uid

    @property
    def revs(self) -> npt.NDArray[np.int64]:
        assert self.device_rev is not None
        return self.device_rev

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
                uid=self.uids.astype("<i8").tobytes(),
                rev=self.revs.astype("<i8").tobytes(),
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
            device_uid=np.frombuffer(w.uid, dtype="<i8").astype(np.int64) if w.uid else None,
            device_rev=np.frombuffer(w.rev, dtype="<i8").astype(np.int64) if w.rev else None,
        )

    @classmethod
    def concat(cls, batches: Sequence[ReadingBatch]) -> ReadingBatch:
        """One batch from many. Device tables are appended, not merged (a device may then
        stand in the table more than once, which every consumer allows): numpy offsets per
        batch instead of a dictionary lookup per device. Point tables are merged."""
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        points: list[str] = []
        pt_index: dict[str, int] = {}
        dev_cols, pt_cols = [], []
        offset = 0
        for b in batches:
            pmap = np.fromiter(
                (pt_index.setdefault(p, len(pt_index)) for p in b.points), np.int32, len(b.points)
            )
            points.extend(p for p in b.points if pt_index[p] >= len(points))
            dev_cols.append(b.device + offset)
            pt_cols.append(pmap[b.point])
            offset += len(b.devices)
        return cls(
            devices=list(chain.from_iterable(b.devices for b in batches)),
            points=points,
            device=np.concatenate(dev_cols).astype(np.int32),
            point=np.concatenate(pt_cols).astype(np.int32),
            ts=np.concatenate([b.ts for b in batches]),
            value=np.concatenate([b.value for b in batches]),
            quality=np.concatenate([b.quality for b in batches]),
            received_ms=max(b.received_ms for b in batches),
            device_uid=np.concatenate([b.uids for b in batches]),
            device_rev=np.concatenate([b.revs for b in batches]),
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
    uid: bytes = b""
    rev: bytes = b""


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


def encode(obj: Any) -> bytes:
    return _ENCODER.encode(obj)


EVENT_DECODER = msgspec.msgpack.Decoder(Event)
STATUS_DECODER = msgspec.msgpack.Decoder(Status)
DEADLETTER_DECODER = msgspec.msgpack.Decoder(DeadLetter)
