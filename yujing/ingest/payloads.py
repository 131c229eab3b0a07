"""Decoding and validation of device messages (docs/contracts.md, "MQTT").

Pure functions: bytes and a clock in, an accepted message or a `Rejected` with a reason
code out. The service does the I/O around them. Every value that may reach a column is
bounded here (see `_checked` and the constrained types), so the sink never meets a row
PostgreSQL refuses.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Annotated, Any, Literal, get_args

import msgspec
import numpy as np

from yujing.ingest.batch import QUALITY_CODE
from yujing.names import is_identifier

TOPIC_KINDS = ("telemetry", "event", "status")
MAX_BATCH_ENTRIES = 10_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# Limits on the shape of any payload, unknown fields included: deeper or wider JSON is no
# device's telemetry, and deep nesting costs recursion in every later encoder.
MAX_DEPTH = 16
MAX_KEYS = 1000  # per object
MAX_TEXT = 4096  # characters of any one string (status detail, event attributes)

Quality = Literal["ok", "fault", "calibrating", "maintenance"]
DeviceState = Literal["online", "offline", "fault", "maintenance"]
# The event types of the contract and of the default packs (docs/vocabulary.md); anything
# else is a `schema` error. A pack that selects a new type adds it here: a test holds the
# packs to this list.
EventType = Literal[
    "person_in", "person_out", "vehicle_in", "vehicle_out", "belt_running", "camera_blocked",
    "camera_moved", "camera_offline", "dispatcher_absent", "spark_detected",
    "spark_extinguished", "airlock_fault", "vent_open",
    # aluminium deep-well casting (its pack)
    "emergency_drain", "interlock_bypassed", "interlock_trip", "quick_cutoff",
]  # fmt: skip
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
EpochMs = Annotated[int, msgspec.Meta(ge=-INT64_MAX, le=INT64_MAX)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class Reason:
    BAD_TOPIC = "bad_topic"
    BAD_JSON = "bad_json"
    SCHEMA = "schema"
    TOO_LARGE = "too_large"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_TIMESTAMP = "bad_timestamp"
    # Anything that went wrong inside ingest with one message; the detail names the error
    # class. The message is dead-lettered so that the stream goes on.
    INTERNAL = "internal"

    ALL = (BAD_TOPIC, BAD_JSON, SCHEMA, TOO_LARGE, UNKNOWN_DEVICE, BAD_TIMESTAMP, INTERNAL)


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Readings(msgspec.Struct):
    ts: EpochMs | str
    values: dict[str, float | None]
    seq: Seq | None = None
    quality: dict[str, Quality] = {}


class _Telemetry(msgspec.Struct):
    ts: EpochMs | str | None = None
    values: dict[str, float | None] | None = None
    seq: Seq | None = None
    quality: dict[str, Quality] = {}
    batch: list[_Readings] | None = None


class _Event(msgspec.Struct):
    ts: EpochMs | str
    type: EventType
    seq: Seq | None = None
    count: Count = 1
    attrs: dict[str, Any] = {}


class _Status(msgspec.Struct):
    ts: EpochMs | str
    state: DeviceState
    detail: Text = ""


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
    msg = _decode(_Telemetry, payload)
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
    """Columns of a message's readings. Entries of a batch mostly name the same points in
    the same order: their point indices are worked out once and the values taken a whole
    entry at a time. Non-finite values (which neither decoding path lets through) are
    looked for in one numpy pass; if there is one, `_columns_one_by_one` finds which
    check fails first, as it always did."""
    if len(entries) == 1:  # one readings object: the plain loop is cheaper than numpy's
        return _columns_one_by_one(entries, now_ms, max_skew_ms)
    index: dict[str, int] = {}
    pts: list[int] = []
    tss: list[int] = []
    vals: list[float | None] = []
    per_entry: list[int] = []
    flagged: list[tuple[int, int]] = []  # (row, quality code) of readings not `ok`
    names: tuple[str, ...] = ()
    idx: list[int] = []
    for entry in entries:
        tss.append(parse_ts(entry.ts, now_ms, max_skew_ms))
        values = entry.values
        if not values:
            raise Rejected(Reason.SCHEMA, "values is empty")
        these = tuple(values)
        if these != names:
            idx = []
            for name in these:
                i = index.get(name)
                if i is None:
                    if not is_identifier(name):
                        raise Rejected(Reason.SCHEMA, f"point name {name!r} is not an identifier")
                    i = index[name] = len(index)
                idx.append(i)
            names = these
        if entry.quality:
            row = len(vals)
            for k, name in enumerate(these):
                q = entry.quality.get(name, "ok")
                if q != "ok":
                    flagged.append((row + k, QUALITY_CODE[q]))
        pts.extend(idx)
        vals.extend(values.values())
        per_entry.append(len(these))
    value = np.array(vals, dtype=np.float64)  # None becomes NaN
    if np.isinf(value).any():
        return _columns_one_by_one(entries, now_ms, max_skew_ms)
    counts = np.array(per_entry, dtype=np.int64)
    quality = np.zeros(len(vals), dtype=np.uint8)
    for row, code in flagged:
        quality[row] = code
    return ReadingRows(
        points=list(index),
        point=np.array(pts, dtype=np.int32),
        ts=np.repeat(np.array(tss, dtype=np.int64), counts),
        value=value,
        quality=quality,
        seqs=[e.seq for e in entries],
        entry_of_row=np.repeat(np.arange(len(entries), dtype=np.int32), counts),
    )


def _columns_one_by_one(entries: list[_Readings], now_ms: int, max_skew_ms: int) -> ReadingRows:
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
    msg = _decode(_Event, payload)
    _checked(msg.attrs, 1)  # free-form: bounded like the payload, whichever path decoded it
    return parse_ts(msg.ts, now_ms, max_skew_ms), msg.type, msg.count, msg.seq, msg.attrs


def decode_status(payload: bytes, now_ms: int, max_skew_ms: int) -> tuple[int, str, str]:
    msg = _decode(_Status, payload)
    return parse_ts(msg.ts, now_ms, max_skew_ms), msg.state, msg.detail


def _decode(schema: type[Any], payload: bytes) -> Any:
    """Strict UTF-8 JSON without duplicate keys, of bounded shape, then the schema."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(Reason.BAD_JSON, f"not UTF-8 at byte {exc.start}") from None
    if schema is _Telemetry:
        accepted = _plain_telemetry(payload)
        if accepted is not None:
            return accepted
    if _plain(payload):
        # The common case, about 3x faster: msgspec alone decides it as the careful path
        # below would (see `_plain`).
        try:
            return _DECODERS[schema].decode(payload)
        except msgspec.ValidationError as exc:
            # msgspec stops at the first value the schema refuses; the careful path reads
            # the whole text first, so malformed JSON after that point is `bad_json` there.
            _well_formed(payload)
            raise Rejected(Reason.SCHEMA, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise Rejected(Reason.BAD_JSON, str(exc)) from None
    return _careful(schema, text)


def _well_formed(payload: bytes) -> None:
    """Raises `bad_json` unless the payload parses as JSON (no schema)."""
    try:
        msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        raise Rejected(Reason.BAD_JSON, str(exc)) from None


def _plain_telemetry(payload: bytes) -> _Telemetry | None:
    """Telemetry by msgspec alone, store-and-forward batches included (`_plain` leaves
    those to the careful path: their entries repeat the same keys, and their braces add up
    past `MAX_DEPTH`). The result stands only if it accounts for every colon of the text:
    without escapes a colon is a key's or sits inside a string, so equality means no key
    was there twice, no unknown field was dropped, and no other string holds one. The
    schema then bounds the depth (floats at level 4) and every string (point names,
    timestamps, qualities; lengths checked below); numbers are bounded as in `_plain`.
    None: the careful path decides (it also decides every payload msgspec refuses, so the
    reasons stay its)."""
    if b"\\" in payload:  # escapes: compared decoded, by the careful path
        return None
    digits = payload.translate(_DIGITS_AS_9)
    if any(run in digits for run in _BIG_NUMBERS):
        return None
    try:
        msg = _DECODERS[_Telemetry].decode(payload)
    except (msgspec.MsgspecError, RecursionError):  # msgspec walks unknown fields too
        return None
    long = len(payload) > MAX_TEXT  # only then can a string be longer than MAX_TEXT
    found = (msg.batch is not None) + _entry_keys(msg, long)
    for e in msg.batch or ():
        found += 2 + _entry_keys(e, long)
    return msg if found == payload.count(b":") else None


def _entry_keys(e: _Readings | _Telemetry, long: bool) -> int:
    """Colons a decoded readings object accounts for: its keys (`ts` and `values` of a
    batch entry are counted by the caller) and those inside a text `ts`. An object beyond
    `MAX_KEYS`, or a string beyond `MAX_TEXT`, makes the count fail on purpose (the
    careful path refuses them)."""
    values, quality = e.values or {}, e.quality
    if len(values) > MAX_KEYS or len(quality) > MAX_KEYS:
        return -(10**9)
    n = len(values) + len(quality) + (e.seq is not None) + bool(quality)
    if isinstance(e, _Telemetry):
        n += (e.ts is not None) + (e.values is not None)
    if isinstance(e.ts, str):
        if len(e.ts) > MAX_TEXT:
            return -(10**9)
        n += e.ts.count(":")
    if long and any(len(k) > MAX_TEXT for k in chain(values, quality)):
        return -(10**9)
    return n


def _careful(schema: type[Any], text: str) -> Any:
    """Every check, on the decoded tree: duplicate keys, shape, text, numbers, schema."""
    try:
        tree = _JSON.decode(text)
    except RecursionError:
        raise Rejected(Reason.SCHEMA, f"nested deeper than {MAX_DEPTH}") from None
    except json.JSONDecodeError as exc:
        raise Rejected(Reason.BAD_JSON, f"{exc.msg} at character {exc.pos}") from None
    except ValueError:  # an integer literal of more than 4300 digits: valid JSON, no number
        raise Rejected(Reason.SCHEMA, "a number is out of range") from None
    _checked(tree, 0)
    try:
        return msgspec.convert(tree, schema, strict=True)
    except msgspec.ValidationError as exc:
        raise Rejected(Reason.SCHEMA, str(exc)) from None


# A key: a string token followed by a colon (the unrolled form, much faster in `re` than
# an alternation per character). Scanning from the left meets every key whole: a match
# can only end at a string's real closing quote, and a value's is never followed by `:`.
_KEY = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"\s*:')
# Escapes that could spell NUL or a lone surrogate.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_DIGITS_AS_9 = bytes.maketrans(b"012345678", b"999999999")
_BIG_NUMBERS = (b"9" * 19, b"e999", b"E999", b"e+999", b"E+999")


def _plain(payload: bytes) -> bool:
    """True when the payload cannot hold what only the careful path refuses: an escape
    that may be NUL or a surrogate, nesting as deep as `MAX_DEPTH`, a string longer than
    `MAX_TEXT` (only a payload that long can), too many keys, or a key twice (keys with
    escapes are left to the careful path, which compares them decoded). Numbers need no
    look: msgspec bounds the known fields, event attributes are walked, and unknown
    fields are dropped."""
    if len(payload) > MAX_TEXT or payload.count(b"{") + payload.count(b"[") >= MAX_DEPTH:
        return False
    digits = payload.translate(_DIGITS_AS_9)
    if any(run in digits for run in _BIG_NUMBERS):
        return False
    if b"\\" in payload:
        if _SUSPECT.search(payload):
            return False
        keys = _KEY.findall(payload)
        if any(b"\\" in k for k in keys):
            return False
    else:
        keys = _KEY.findall(payload)
    return len(keys) <= MAX_KEYS and len(set(keys)) == len(keys)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: the same key twice is refused (RFC 8259 leaves it undefined, and a
    device's two `ts` could be read either way)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Rejected(Reason.SCHEMA, f"key {key[:64]!r} appears more than once")
            seen.add(key)
    if len(out) > MAX_KEYS:
        raise Rejected(Reason.SCHEMA, f"an object has {len(out)} keys, at most {MAX_KEYS}")
    return out


def _constant(name: str) -> Any:
    raise Rejected(Reason.BAD_JSON, f"{name} is not JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in (_Telemetry, _Event, _Status)
}


def _checked(node: Any, depth: int) -> None:
    """Refuses what no column takes: NUL and lone surrogates in any string (keys too),
    integers beyond int64, non-finite numbers, nesting deeper than `MAX_DEPTH`."""
    if isinstance(node, str):
        _text(node)
    elif isinstance(node, dict | list):
        if depth >= MAX_DEPTH:
            raise Rejected(Reason.SCHEMA, f"nested deeper than {MAX_DEPTH}")
        if isinstance(node, dict):
            for key in node:
                _text(key)
            node = node.values()
        for item in node:
            if isinstance(item, float):  # the common case, inline: readings are floats
                if not math.isfinite(item):
                    raise Rejected(Reason.SCHEMA, "numbers must be finite")
            elif item is not None and not isinstance(item, bool):
                _checked(item, depth + 1)
    elif isinstance(node, int) and not isinstance(node, bool):
        if not -INT64_MAX <= node <= INT64_MAX:
            raise Rejected(Reason.SCHEMA, f"integer {str(node)[:30]} is beyond int64")
    elif isinstance(node, float) and not math.isfinite(node):
        raise Rejected(Reason.SCHEMA, "numbers must be finite")


def _text(s: str) -> None:
    if "\x00" in s:
        raise Rejected(Reason.SCHEMA, "text must not contain NUL")
    if len(s) > MAX_TEXT:
        raise Rejected(Reason.SCHEMA, f"a text of {len(s)} characters, at most {MAX_TEXT}")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(Reason.SCHEMA, "text holds a lone UTF-16 surrogate") from None


def parse_ts(raw: int | str, now_ms: int, max_skew_ms: int) -> int:
    """Epoch milliseconds, or RFC 3339 with an offset; bounded to [2000, now + skew]."""
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise Rejected(Reason.BAD_TIMESTAMP, f"{raw[:64]!r} is not RFC 3339") from None
        if when.tzinfo is None:
            raise Rejected(Reason.BAD_TIMESTAMP, f"{raw[:64]!r} has no UTC offset")
        # Difference, not astimezone(): year 1 at +14:00 or 9999 at -14:00 lies outside
        # datetime's range once moved to UTC, and must be refused, not raise OverflowError.
        ms = (when - _EPOCH) // _MS
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
