"""The input-fault scenario's messages are rejected by ingest's own validation with the
reason the scenario promises, and every other message of every scenario is accepted."""

from __future__ import annotations

from functools import cache

import pytest

from yujing.config import Settings
from yujing.ingest.payloads import (
    Rejected,
    decode_event,
    decode_status,
    decode_telemetry,
    parse_topic,
)
from yujing.simulators.consistency import FIXED_START_MS
from yujing.simulators.scenario import Scenario, builtin_scenarios, load_scenario
from yujing.simulators.wire import Message

SETTINGS = Settings()
SKEW_MS = round(SETTINGS.max_future_skew_s * 1000)


def _verdict(sc: Scenario, msg: Message) -> str | None:
    """What ingest does with a message: None (accepted) or the dead-letter reason.
    Mirrors the order of ingest's checks: topic, registry, size, then the payload."""
    now_ms = FIXED_START_MS + msg.at_ms
    try:
        topic = parse_topic(msg.topic)
        if f"{topic.enterprise}/{topic.device}" not in sc.fleet.by_key:
            return "unknown_device"
        if len(msg.payload) > SETTINGS.max_payload_bytes:
            return "too_large"
        decode = {"telemetry": decode_telemetry, "event": decode_event, "status": decode_status}
        decode[topic.kind](msg.payload, now_ms, SKEW_MS)
    except Rejected as exc:
        return exc.reason
    return None


@cache
def _messages(name: str) -> tuple[Scenario, list[Message]]:
    sc = load_scenario(name)
    return sc, list(sc.timeline(FIXED_START_MS))


def test_every_fault_gets_its_promised_reason() -> None:
    sc, messages = _messages("input-faults")
    faulty = [m for m in messages if m.reason is not None]
    assert {m.reason for m in faulty} == {
        "bad_json",
        "schema",
        "too_large",
        "bad_timestamp",
        "unknown_device",
        "bad_topic",
    }
    for msg in faulty:
        assert _verdict(sc, msg) == msg.reason, (msg.note, msg.payload[:120])


def test_oversized_batch_is_well_formed_apart_from_its_size() -> None:
    _, messages = _messages("input-faults")
    (big,) = [m for m in messages if m.reason == "too_large"]
    assert len(big.payload) > SETTINGS.max_payload_bytes
    rows = decode_telemetry(big.payload, FIXED_START_MS + big.at_ms, SKEW_MS)
    assert len(rows.seqs) < 10_000


def test_redeliveries_repeat_the_same_bytes_and_seq() -> None:
    _, messages = _messages("input-faults")
    dups = [m for m in messages if m.note == "duplicate"]
    assert len(dups) == 3
    for d in dups:
        originals = [m for m in messages if m.payload == d.payload and m.note != "duplicate"]
        assert len(originals) == 1 and originals[0].at_ms < d.at_ms


def test_out_of_order_messages_arrive_after_newer_ones() -> None:
    _, messages = _messages("input-faults")
    late = [m for m in messages if m.note == "out_of_order"]
    assert len(late) == 2
    for msg in late:
        before = [
            m
            for m in messages
            if m.topic == msg.topic and m.at_ms <= msg.at_ms and m.note == "" and m is not msg
        ]
        assert max(m.ts[0] for m in before) > msg.ts[0]


@pytest.mark.parametrize("name", [p.stem for p in builtin_scenarios() if p.stem != "province-day"])
def test_everything_else_is_accepted(name: str) -> None:
    sc, messages = _messages(name)
    for msg in messages:
        if msg.reason is None:
            assert _verdict(sc, msg) is None, (msg.topic, msg.payload[:200])
