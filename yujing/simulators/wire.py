"""Messages as they go on the wire (docs/contracts.md, "MQTT"), encoded so that the same inputs
always give the same bytes: keys in a fixed order, floats already rounded, compact JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish, with what the simulator knows about it (never sent)."""

    at_ms: int  # when to publish, in simulated ms since the scenario start
    topic: str
    payload: bytes
    enterprise: str
    device: str
    ts: tuple[int, ...] = ()  # event times (epoch ms) of the readings or event it carries
    retain: bool = False
    reason: str | None = None  # the dead-letter reason yujing must give it; None: accepted
    note: str = ""  # e.g. "duplicate", "batch", "out_of_order", "clock_skew"
    # (point, value) of single-reading messages, so ground truth can be checked offline
    values: tuple[tuple[str, float], ...] = ()


def encode(obj: dict[str, Any]) -> bytes:
    return _ENCODER.encode(obj)


def reading(ts: int, seq: int | None, values: dict[str, float | None]) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": ts}
    if seq is not None:
        out["seq"] = seq
    out["values"] = values
    return out


def event(ts: int, seq: int, etype: str, count: int, attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": ts, "seq": seq, "type": etype, "count": count}
    if attrs:
        out["attrs"] = attrs
    return out


def status(ts: int, state: str, detail: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"ts": ts, "state": state}
    if detail:
        out["detail"] = detail
    return out
