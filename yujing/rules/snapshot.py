"""The snapshot format: the series of one input partition (devices, points, newest `ts`)
and one section per rule kind, each in that kind's own format (`Kind.snapshot`).

A section is keyed by rule id and version, device and point, never by array position,
so it survives rule changes and other layouts. A *delta* has the same shape and holds
only the devices that changed; loaded after the snapshot before it, it replaces their
state. This module knows no kind's layout and no engine: the engine builds and reads it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from yujing.ingest.batch import DeviceInfo


class Snapshot(msgspec.Struct, array_like=True, tag="s2"):
    devices: list[DeviceInfo]
    points: list[str]
    series_device: bytes  # int32 per series: position in `devices`
    series_point: bytes  # int32 per series: position in `points`
    last_ts: bytes  # int64 per series: its newest reading's ts
    kinds: dict[str, Any]  # Kind.name → that kind's section


class Read(msgspec.Struct, array_like=True, tag="s2"):
    """`Snapshot` as read back: each kind's section left encoded for the kind to decode."""

    devices: list[DeviceInfo]
    points: list[str]
    series_device: bytes
    series_point: bytes
    last_ts: bytes
    kinds: dict[str, msgspec.Raw]


_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(Read)


def encode(snap: Snapshot) -> bytes:
    """Bytes of a snapshot; safe in another thread (a snapshot holds copies only)."""
    return _ENC.encode(snap)


def decode(data: bytes) -> Read:
    return _DEC.decode(data)
