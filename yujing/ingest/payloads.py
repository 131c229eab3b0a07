"""Decoding and validation of device messages (docs/contracts.md, "MQTT").

Pure functions: bytes and a clock in, an accepted message or a `Rejected` with a reason
code out. The service does the I/O around them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import numpy as np

from yujing.ingest.batch import QUALITY_CODE
from yujing.names import is_identifier

TOPIC_KINDS = ("telemetry", "event", "status")
MAX_BATCH_ENTRIES = 10_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z

Quality = Literal["ok", "fault", "calibrating", "maintenance"]
DeviceState = Literal["online", "offline", "fault", "maintenance"]


class Reason:
    BAD_TOPIC = "bad_topic"
    BAD_JSON = "bad_json"
    SCHEMA = "schema"
    TOO_LARGE = "too_large"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_TIMESTAMP = "bad_timestamp"

    ALL = (BAD_TOPIC, BAD_JSON, SCHEMA, TOO_LARGE, UNKNOWN_DEVICE, BAD_TIMESTAMP)


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Readings(msgspec.Struct):
    ts: int | str
    values: dict[str, float | None]
    seq: int | None = None
    quality: dict[str, Quality] = {}


class _Telemetry(msgspec.Struct):
    ts: int | str | None = None
    values: dict[str, float | None] | None = None
    seq: int | None = None
    quality: dict[str, Quality] = {}
    batch: list[_Readings] | None = None


class _Event(msgspec.Struct):
    ts: int | str
    type: str
    seq: int | None = None
    count: int = 1
    attrs: dict[str, Any] = {}


class _Status(msgspec.Struct):
    ts: int | str
    state: DeviceState
    detail: str = ""


_TELEMETRY = msgspec.json.Decoder(_Telemetry)
_EVENT = msgspec.json.Decoder(_Event)
_STATUS = msgspec.json.Decoder(_Status)


@dataclass(frozen=True, slots=True)
class Topic:
    enterprise: str
    device: str
    kind: str


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "yj" or parts[3] not in TOPIC_KINDS:
        raise Rejected(
            Reason.BAD_TOPIC, f"expected yj/{{enterprise}}/{{device}}/{'|'.join(TOPIC_KINDS)}"
        )
    if not (is_identifier(parts[1]) and is_identifier(parts[2])):
        raise Rejected(Reason.BAD_TOPIC, "enterprise and device must be identifiers")
    return Topic(parts[1], parts[2], parts[3])


@dataclass(slots=True)
class ReadingRows:
    """One device message's readings as columns (point names, not yet indices)."""

    points: list[str]
    point: np.ndarray[Any, np.dtype[np.int32]]
    ts: np.ndarray[Any, np.dtype[np.int64]]
    value: np.ndarray[Any, np.dtype[np.float64]]
    quality: np.ndarray[Any, np.dtype[np.uint8]]
    seqs: list[int | None]
    entry_of_row: np.ndarray[Any, np.dtype[np.int32]]


def decode_telemetry(payload: bytes, now_ms: int, max_skew_ms: int) -> ReadingRows:
    msg = _decode(_TELEMETRY, payload)
    if msg.batch is not None:
        if msg.values is not None or msg.ts is not None:
            raise Rejected(
                Reason.SCHEMA, "a message is either one readings object or {batch: [...]}"
            )
        if not msg.batch:
            raise Rejected(Reason.SCHEMA, "batch is empty")
        if len(msg.batch) > MAX_BATCH_ENTRIES:
            raise Rejected(
                Reason.SCHEMA, f"batch has {len(msg.batch)} entries, at most {MAX_BATCH_ENTRIES}"
            )
        entries = msg.batch
    else:
        if msg.ts is None or msg.values is None:
            raise Rejected(Reason.SCHEMA, "ts and values are required")
        entries = [_Readings(msg.ts, msg.values, msg.seq, msg.quality)]
    return _columns(entries, now_ms, max_skew_ms)


def _columns(entries: list[_Readings], now_ms: int, max_skew_ms: int) -> ReadingRows:
    index: dict[str, int] = {}
    pts: list[int] = []
    tss: list[int] = []
    vals: list[float] = []
    quals: list[int] = []
    entry_of_row: list[int] = []
    for n, entry in enumerate(entries):
        ts = parse_ts(entry.ts, now_ms, max_skew_ms)
        if not entry.values:
            raise Rejected(Reason.SCHEMA, "values is empty")
        for name, value in entry.values.items():
            i = index.get(name)
            if i is None:
                if not is_identifier(name):
                    raise Rejected(Reason.SCHEMA, f"point name {name!r} is not an identifier")
                i = index[name] = len(index)
            if value is None:
                value = math.nan
            elif not math.isfinite(value):
                raise Rejected(Reason.SCHEMA, f"value of {name} is not a finite number")
            pts.append(i)
            tss.append(ts)
            vals.append(value)
            quals.append(QUALITY_CODE[entry.quality.get(name, "ok")])
            entry_of_row.append(n)
    return ReadingRows(
        points=list(index),
        point=np.array(pts, dtype=np.int32),
        ts=np.array(tss, dtype=np.int64),
        value=np.array(vals, dtype=np.float64),
        quality=np.array(quals, dtype=np.uint8),
        seqs=[e.seq for e in entries],
        entry_of_row=np.array(entry_of_row, dtype=np.int32),
    )


def decode_event(
    payload: bytes, now_ms: int, max_skew_ms: int
) -> tuple[int, str, int, int | None, dict[str, Any]]:
    msg = _decode(_EVENT, payload)
    if not is_identifier(msg.type):
        raise Rejected(Reason.SCHEMA, f"event type {msg.type!r} is not an identifier")
    if msg.count < 0:
        raise Rejected(Reason.SCHEMA, "count must not be negative")
    return parse_ts(msg.ts, now_ms, max_skew_ms), msg.type, msg.count, msg.seq, msg.attrs


def decode_status(payload: bytes, now_ms: int, max_skew_ms: int) -> tuple[int, str, str]:
    msg = _decode(_STATUS, payload)
    return parse_ts(msg.ts, now_ms, max_skew_ms), msg.state, msg.detail


def _decode(decoder: msgspec.json.Decoder[Any], payload: bytes) -> Any:
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise Rejected(Reason.SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise Rejected(Reason.BAD_JSON, str(exc)) from None


def parse_ts(raw: int | str, now_ms: int, max_skew_ms: int) -> int:
    """Epoch milliseconds, or RFC 3339 with an offset; bounded to [2000, now + skew]."""
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise Rejected(Reason.BAD_TIMESTAMP, f"{raw!r} is not RFC 3339") from None
        if when.tzinfo is None:
            raise Rejected(Reason.BAD_TIMESTAMP, f"{raw!r} has no UTC offset")
        ms = int(when.astimezone(UTC).timestamp() * 1000)
    else:
        ms = raw
    if ms < MIN_TS_MS:
        raise Rejected(
            Reason.BAD_TIMESTAMP, f"ts {raw!r} is before 2000 (epoch milliseconds expected)"
        )
    if ms > now_ms + max_skew_ms:
        raise Rejected(
            Reason.BAD_TIMESTAMP, f"ts {raw!r} is {(ms - now_ms) / 1000:.0f} s in the future"
        )
    return ms
