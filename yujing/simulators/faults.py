"""Input faults: messages that yujing must dead-letter, each with the reason it must give.

Every form here is checked against `yujing.ingest.payloads` by tests/simulators, so the
reason a scenario promises is the reason ingest really gives.
"""

from __future__ import annotations

from yujing.simulators.fleet import UNITS, DeviceRegistration
from yujing.simulators.incidents import Fault
from yujing.simulators.wire import Message, encode, reading

MAX_BATCH_ENTRIES = 10_000
MAX_PAYLOAD_BYTES = 256 * 1024  # docs/contracts.md: a readings message is at most 256 KiB

REASONS = {
    "bad_json": "bad_json",
    "schema": "schema",
    "too_large": "too_large",
    "ts_seconds": "bad_timestamp",
    "unknown_device": "unknown_device",
    "bad_topic": "bad_topic",
}


def build(
    t: int,
    ts: int,
    fault: Fault,
    reg: DeviceRegistration | None,
    seq: int,
    last: dict[str, float],
) -> Message:
    values: dict[str, float | None] = dict(last) or _plausible(reg)
    topic = f"yj/{fault.enterprise}/{fault.device}/telemetry"
    good = reading(ts, seq, values)
    if fault.kind == "bad_json":
        payload = _bad_json(encode(good), fault.variant)
    elif fault.kind == "schema":
        payload = _schema_error(ts, seq, values, fault.variant)
    elif fault.kind == "too_large":
        payload = _too_large(ts, values, reg)
    elif fault.kind == "ts_seconds":
        # A device that sends epoch seconds where milliseconds are expected: "before 2000".
        payload = encode(reading(ts // 1000, seq, values))
    elif fault.kind == "bad_topic":
        payload = encode(good)
        topic = (
            f"yj/{fault.enterprise}/{fault.device}/{('metrics', 'Telemetry')[fault.variant % 2]}"
        )
    elif fault.kind == "unknown_device":
        payload = encode(good)
    else:
        raise ValueError(f"fault {fault.kind!r} is not a message of its own")
    return Message(
        t,
        topic,
        payload,
        fault.enterprise,
        fault.device,
        (ts,),
        reason=REASONS[fault.kind],
        note=fault.kind,
    )


def _plausible(reg: DeviceRegistration | None) -> dict[str, float | None]:
    if reg is None or not reg.points:
        return {"ch4": 0.31}
    return {p: 1.0 for p in reg.points if p in UNITS}


def _bad_json(good: bytes, variant: int) -> bytes:
    forms = (
        good[:-7],  # cut off mid-message, as a dropped TCP segment leaves it
        good.replace(b'"', b"'"),  # single quotes, a hand-written gateway's favourite
        good[:-2] + b",}}",  # trailing comma
        b"ch4=0.31;co=12",  # not JSON at all
        b"\xff\xfe" + good,  # a byte-order mark in the wrong encoding
    )
    return forms[variant % len(forms)]


def _schema_error(ts: int, seq: int, values: dict[str, float | None], variant: int) -> bytes:
    point = next(iter(values))
    forms = (
        {"ts": ts, "seq": seq, "values": {point: "high"}},  # value is text
        {"ts": ts, "seq": seq},  # no values
        {"ts": ts, "seq": seq, "values": {}},  # values empty
        {"ts": ts, "seq": seq, "values": values, "quality": {point: "broken"}},  # unknown quality
        {"ts": ts, "values": values, "batch": [{"ts": ts, "values": values}]},  # both forms
        {"ts": ts, "seq": seq, "values": {point: [1.0, 2.0]}},  # a list, not a number
    )
    return encode(forms[variant % len(forms)])


def _too_large(ts: int, values: dict[str, float | None], reg: DeviceRegistration | None) -> bytes:
    """A well-formed store-and-forward batch (fewer than 10,000 entries) that is simply too
    big, so the only reason to reject it is its size."""
    step = round((reg.interval_s if reg else 15.0) * 1000)
    entries = []
    size = 0
    n = 0
    while size <= MAX_PAYLOAD_BYTES + 4096:
        entry = reading(ts - (n + 1) * step, None, values)
        entries.append(entry)
        size += len(encode(entry)) + 1
        n += 1
    entries.reverse()
    if len(entries) >= MAX_BATCH_ENTRIES:
        raise ValueError("too_large: readings too small to exceed the size limit in one batch")
    return encode({"batch": entries})
