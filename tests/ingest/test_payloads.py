"""Every malformed message gets its reason code; good ones become columns."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.ingest import payloads as p

NOW = 1_763_856_000_000
SKEW = 300_000


def reason(fn: object, *args: object) -> str:
    with pytest.raises(p.Rejected) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.reason


def test_single_readings_object_becomes_columns() -> None:
    body = {"ts": NOW, "seq": 41, "values": {"ch4": 0.42, "co": 12, "o2": None},
            "quality": {"co": "calibrating"}}  # fmt: skip
    rows = p.decode_telemetry(json.dumps(body).encode(), NOW, SKEW)
    assert rows.points == ["ch4", "co", "o2"]
    assert rows.ts.tolist() == [NOW] * 3
    assert rows.value[:2].tolist() == [0.42, 12.0] and math.isnan(rows.value[2])
    assert rows.quality.tolist() == [0, 2, 0]
    assert rows.seqs == [41]


def test_store_and_forward_batch() -> None:
    first = {"ts": NOW - 2000, "seq": 1, "values": {"ch4": 0.3}}
    second = {"ts": "2025-11-23T00:00:00+08:00", "seq": 2, "values": {"ch4": 0.4}}
    body = {"batch": [first, second]}
    rows = p.decode_telemetry(json.dumps(body).encode(), NOW, SKEW)
    assert rows.ts.tolist() == [NOW - 2000, 1_763_827_200_000]
    assert rows.entry_of_row.tolist() == [0, 1] and rows.seqs == [1, 2]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"ts": 1, "values": {', p.Reason.BAD_JSON),
        (b"\xff\xfe", p.Reason.BAD_JSON),
        (b'{"values": {"ch4": 1}}', p.Reason.SCHEMA),
        (b'{"ts": 1763856000000, "values": {"ch4": "high"}}', p.Reason.SCHEMA),
        (b'{"ts": 1763856000000, "values": {"ch4": true}}', p.Reason.SCHEMA),
        (b'{"ts": 1763856000000, "values": {}}', p.Reason.SCHEMA),
        (b'{"ts": 1763856000000, "values": {"c h4": 1}}', p.Reason.SCHEMA),
        (b'{"ts": 1763856000000, "values": {"ch4": 1e999}}', p.Reason.SCHEMA),
        (
            b'{"ts": 1763856000000, "values": {"ch4": 1}, "quality": {"ch4": "bad"}}',
            p.Reason.SCHEMA,
        ),
        (b'{"batch": []}', p.Reason.SCHEMA),
        (b"[1, 2]", p.Reason.SCHEMA),
        (b'{"ts": 1763856000, "values": {"ch4": 1}}', p.Reason.BAD_TIMESTAMP),
        (b'{"ts": 1763856600000, "values": {"ch4": 1}}', p.Reason.BAD_TIMESTAMP),
        (b'{"ts": "2025-11-23T00:00:00", "values": {"ch4": 1}}', p.Reason.BAD_TIMESTAMP),
        (b'{"ts": "yesterday", "values": {"ch4": 1}}', p.Reason.BAD_TIMESTAMP),
    ],
)
def test_bad_telemetry_is_rejected_with_its_reason(payload: bytes, expected: str) -> None:
    assert reason(p.decode_telemetry, payload, NOW, SKEW) == expected


def test_batch_over_the_limit_is_a_schema_error() -> None:
    entry = {"ts": NOW, "values": {"ch4": 0.1}}
    body = json.dumps({"batch": [entry] * (p.MAX_BATCH_ENTRIES + 1)}).encode()
    assert reason(p.decode_telemetry, body, NOW, SKEW) == p.Reason.SCHEMA


@pytest.mark.parametrize(
    "topic",
    ["yj/ent1/dev1", "yj/ent1/dev1/telemetry/x", "xx/ent1/dev1/telemetry",
     "yj/ent 1/dev1/telemetry", "yj/ent1/dev1/readings", "yj//dev1/event"],
)  # fmt: skip
def test_bad_topics(topic: str) -> None:
    assert reason(p.parse_topic, topic) == p.Reason.BAD_TOPIC


def test_events_and_status() -> None:
    ts, type_, count, seq, attrs = p.decode_event(
        b'{"ts": 1763856000000, "seq": 3, "type": "person_in", "count": 2, "attrs": {"gate": 1}}',
        NOW, SKEW,
    )  # fmt: skip
    assert (ts, type_, count, seq, attrs) == (NOW, "person_in", 2, 3, {"gate": 1})
    assert p.decode_status(b'{"ts": 1763856000000, "state": "offline"}', NOW, SKEW)[1] == "offline"
    assert (
        reason(p.decode_status, b'{"ts": 1763856000000, "state": "asleep"}', NOW, SKEW) == "schema"
    )
    assert reason(p.decode_event, b'{"ts": 1763856000000, "type": "a b"}', NOW, SKEW) == "schema"


# --- the fast path (msgspec alone) decides every payload as the careful path does -------

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), st.text(max_size=8), st.sampled_from(["\x00", "\ud800", "é"]),
    st.sampled_from([1e300 * 10, 2**63, -(2**63) - 1, 10**400]),
)  # fmt: skip
_any = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
_body = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.one_of(st.just(NOW), st.integers(), st.text(max_size=5)),
        "seq": st.integers(min_value=-2, max_value=2**64), "values": _any, "quality": _any,
        "type": st.sampled_from(["person_in", "boom", 3]), "count": _leaf, "attrs": _any,
        "state": st.sampled_from(["online", "gone"]), "detail": _leaf, "extra": _any,
    },
)  # fmt: skip


def _outcome(decode: Any, schema: type[Any], raw: bytes) -> object:
    try:
        return msgspec.to_builtins(decode(schema, raw))
    except p.Rejected as r:
        return r.reason


_accepted = st.one_of(  # valid but for what `extra` holds, so unknown fields decide
    st.fixed_dictionaries({"ts": st.just(NOW), "values": st.just({"a": 1.0}), "extra": _any}),
    st.fixed_dictionaries({"ts": st.just(NOW), "type": st.just("vent_open"), "attrs": _any}),
    st.fixed_dictionaries({"ts": st.just(NOW), "state": st.just("online"), "x": _any}),
)


@settings(max_examples=400, deadline=None)
@given(_body | _accepted, st.sampled_from([p._Telemetry, p._Event, p._Status]), st.booleans())
def test_the_fast_path_agrees_with_the_careful_path(
    body: dict[str, Any], schema: type[Any], duplicate: bool
) -> None:
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    if duplicate and body:  # the first key once more, at the end
        key = json.dumps(next(iter(body))).encode("utf-8", "surrogatepass")
        raw = raw[:-1] + b", " + key + b": 1}"
    careful = _outcome(lambda s, b: p._careful(s, b.decode("utf-8", "surrogatepass")), schema, raw)
    assert _outcome(p._decode, schema, raw) == careful


_entry = st.fixed_dictionaries(
    {
        "ts": st.one_of(st.just(NOW), st.text(max_size=5), st.integers(max_value=2**64)),
        "values": st.dictionaries(
            st.sampled_from(["ch4", "co", "a b", "\x00"]),
            st.one_of(st.floats(allow_nan=False), st.none(), st.booleans(), st.just([1.0])),
            max_size=3,
        ),
    },
    optional={
        "seq": st.one_of(st.none(), st.integers(min_value=-2, max_value=2**64)),
        "quality": st.dictionaries(st.sampled_from(["ch4", "co"]), st.sampled_from(["ok", "x"])),
        "extra": _any,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry, min_size=1, max_size=12), st.integers(min_value=-1, max_value=11))
def test_the_batch_fast_path_agrees_with_the_careful_path(
    entries: list[dict[str, Any]], twice: int
) -> None:
    """Store-and-forward batches repeat their keys from entry to entry; a key twice inside
    one entry (`twice`) must still be refused as the careful path refuses it."""
    parts = [json.dumps(e) for e in entries]
    if 0 <= twice < len(parts):
        parts[twice] = parts[twice][:-1] + ', "ts": 1}'
    raw = ('{"batch": [' + ", ".join(parts) + "]}").encode("utf-8", "surrogatepass")
    careful = _outcome(
        lambda s, b: p._careful(s, b.decode("utf-8", "surrogatepass")), p._Telemetry, raw
    )
    assert _outcome(p._decode, p._Telemetry, raw) == careful


def test_a_clean_batch_takes_the_fast_path() -> None:
    entry = {"ts": NOW, "seq": 1, "values": {"ch4": 0.3, "co": 4.0}, "quality": {"co": "fault"}}
    raw = json.dumps({"batch": [entry] * 30}).encode()
    assert not p._plain(raw)  # the keys repeat, the braces add up
    assert p._plain_telemetry(raw) is not None
    twice = raw.replace(b'"seq": 1,', b'"seq": 1, "seq": 2,', 1)
    assert p._plain_telemetry(twice) is None


def test_every_event_type_a_pack_selects_is_accepted() -> None:
    """Ingest refuses unknown event types: a pack's event rule must not be starved."""
    selected = set()
    for path in resources.files("yujing.rules").joinpath("packs").iterdir():
        if path.name.endswith(".yaml"):
            for rule in yaml.safe_load(path.read_text("utf-8")).get("rules", []):
                if rule.get("event_type"):
                    selected.add(rule["event_type"])
    assert selected and selected <= p.EVENT_TYPES, selected - p.EVENT_TYPES
