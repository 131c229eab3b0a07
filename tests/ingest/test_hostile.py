"""Hostile input never stops the stream (issue 12): each message that once stalled ingest,
killed the sink or slipped past validation, then a property test over raw bytes and topics.

Everything ingest publishes goes through the real sink into PostgreSQL, so a value that a
column refuses would fail these tests, not just a validation mismatch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yujing.alerts.sink import Sink
from yujing.config import Settings
from yujing.ingest import batch as b
from yujing.ingest.bus import MemoryBus, Record, Topics
from yujing.ingest.payloads import Reason
from yujing.ingest.registry import Registry, upsert_device
from yujing.ingest.service import DEAD, MESSAGES, READINGS, Ingestor, Message

pytestmark = pytest.mark.integration
NOW = 1_763_856_000_000
ALL = [Topics.READINGS, Topics.EVENTS, Topics.STATUS, Topics.DEADLETTER]
OUTCOMES = ("accepted", "duplicate", "deadletter")


class Rig:
    """Ingest on a real registry and the in-process bus, its output through the real sink."""

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], int] = lambda: NOW) -> None:
        self.bus = MemoryBus()
        self.out = self.bus.consumer(ALL, "t")
        self.ingestor = Ingestor(Settings(), Registry(pool), self.bus, clock)
        self.sink = Sink(pool)
        self.good_seq = 0

    async def run(self, messages: list[Message]) -> list[Record]:
        await self.ingestor.handle(messages)
        records = await self.out.next_batch(timeout_s=0.05)
        await self.sink.write(records)  # raises if a row reaches PostgreSQL it refuses
        return records

    def good(self) -> Message:
        """A valid reading of the device no hostile message names."""
        self.good_seq += 1
        body = {"ts": NOW, "seq": self.good_seq, "values": {"ch4": 0.1 * self.good_seq}}
        return Message("yj/ent1/good-1/telemetry", json.dumps(body).encode(), NOW)


async def register(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for dev, kind in (("dev-1", "electronic_seal"), ("good-1", "gas_detector")):
            await upsert_device(conn, "ent1", dev, {"kind": kind, "site": "s1"}, "test")


def raw(topic: str, payload: bytes | str) -> Message:
    return Message(topic, payload if isinstance(payload, bytes) else payload.encode(), NOW)


def letters(records: list[Record]) -> list[tuple[str, str]]:
    out = []
    for r in records:
        if r.topic == Topics.DEADLETTER:
            letter = b.DEADLETTER_DECODER.decode(r.value)
            out.append((letter.reason, letter.detail))
    return out


def counts() -> dict[str, float]:
    return {o: MESSAGES.labels(o)._value.get() for o in OUTCOMES}


NESTED = '{"ts": NOW, "values": {"t": 1}, "x": ' + "[" * 1000 + "1" + "]" * 1000 + "}"
# Each of these once stalled ingest for good, killed the sink, or was stored though the
# contract refuses it; (topic kind, payload with NOW for the clock's time, reason).
HOSTILE = [
    ("telemetry", '{"ts": "0001-01-01T00:00:00+14:00", "values": {"t": 1}}', "bad_timestamp"),
    ("telemetry", '{"ts": "9999-12-31T23:59:59-14:00", "values": {"t": 1}}', "bad_timestamp"),
    ("telemetry", NESTED, "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1}, "seq": 18446744073709551616}', "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1}, "seq": 9223372036854775808}', "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1}, "seq": -1}', "schema"),
    ("telemetry", '{"ts": NOW, "ts": 1763855999999, "values": {"t": 1}}', "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1e999}}', "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": NaN}}', "bad_json"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1}, "x": "\\ud800"}', "schema"),
    ("telemetry", '{"ts": NOW, "values": {"t": 1}, "x": "' + "y" * 5000 + '"}', "schema"),
    ("event", '{"ts": NOW, "type": "vent_open", "attrs": {"n": ' + "9" * 5000 + "}}", "schema"),
    ("event", '{"ts": NOW, "type": "vent_open", "attrs": {"n": 1, "n": 2}}', "schema"),
    ("event", '{"ts": NOW, "type": "person_in", "count": 18446744073709551616}', "schema"),
    ("event", '{"ts": NOW, "type": "person_in", "count": 3000000000}', "schema"),
    ("event", '{"ts": NOW, "type": "person_in", "attrs": {"a": "x\\u0000"}}', "schema"),
    ("event", '{"ts": NOW, "type": "person_in", "attrs": {"a\\u0000": 1}}', "schema"),
    ("event", '{"ts": NOW, "type": "person_in", "attrs": {"n": 1' + "0" * 30 + "}}", "schema"),
    ("event", '{"ts": NOW, "type": "meteor_strike"}', "schema"),
    ("status", '{"ts": NOW, "state": "online", "detail": "a\\u0000b"}', "schema"),
    ("status", '{"ts": NOW, "state": "exploded"}', "schema"),
]


@pytest.mark.parametrize(("kind", "payload", "reason"), HOSTILE)
async def test_each_hostile_message_is_dead_lettered_and_the_stream_goes_on(
    pool: asyncpg.Pool, kind: str, payload: str, reason: str
) -> None:
    await register(pool)
    rig = Rig(pool)
    hostile = raw(f"yj/ent1/dev-1/{kind}", payload.replace("NOW", str(NOW)))
    records = await rig.run([hostile, rig.good()])
    assert [r for r, _ in letters(records)] == [reason]
    assert [r.topic for r in records] == [Topics.DEADLETTER, Topics.READINGS]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM readings") == 1
        assert await conn.fetchval("SELECT reason FROM deadletters") == reason


async def test_non_utf8_bytes_anywhere_are_refused(pool: asyncpg.Pool) -> None:
    await register(pool)
    rig = Rig(pool)
    payload = b'{"ts": %d, "values": {"t": 1}, "note": "\xff\xfe"}' % NOW
    records = await rig.run([raw("yj/ent1/dev-1/telemetry", payload), rig.good()])
    assert letters(records) == [("bad_json", f"not UTF-8 at byte {payload.index(0xFF)}")]


async def test_a_dead_letter_of_a_hostile_topic_is_stored(pool: asyncpg.Pool) -> None:
    await register(pool)
    rig = Rig(pool)
    records = await rig.run([raw("yj/\x00/\udcff/telemetry", b"{}"), rig.good()])
    assert [r for r, _ in letters(records)] == ["bad_topic"]
    async with pool.acquire() as conn:
        topic = await conn.fetchval("SELECT topic FROM deadletters")
    assert topic == "yj/\\x00/\\udcff/telemetry"


async def test_an_unexpected_error_dead_letters_that_message_as_internal(
    pool: asyncpg.Pool,
) -> None:
    """The total input policy: an error nobody foresaw (here the injected clock fails for
    one message) dead-letters that message with the error class, and the rest go on."""
    await register(pool)
    calls = 0

    def clock() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OverflowError("date value out of range")
        return NOW

    rig = Rig(pool, clock)
    before = DEAD.labels("internal")._value.get()
    records = await rig.run(
        [raw("yj/ent1/dev-1/status", '{"ts": 1, "state": "online"}'), rig.good()]
    )
    assert letters(records) == [("internal", "OverflowError: date value out of range")]
    assert DEAD.labels("internal")._value.get() == before + 1
    assert [r.topic for r in records] == [Topics.DEADLETTER, Topics.READINGS]


class RefusingBus(MemoryBus):
    """The in-process bus, refusing publishes while `down` (a Kafka outage)."""

    down = True

    async def publish(
        self, topic: str, records: Sequence[tuple[bytes, bytes]], decoded: Any = None
    ) -> None:
        if self.down:
            raise ConnectionError("bus unavailable")
        await super().publish(topic, records, decoded)


async def test_counters_and_seqs_move_only_once_the_bus_has_the_batch(
    pool: asyncpg.Pool,
) -> None:
    await register(pool)
    bus = RefusingBus()
    out = bus.consumer(ALL, "t")
    ingestor = Ingestor(Settings(), Registry(pool), bus, lambda: NOW)
    body = {"ts": NOW, "seq": 1, "values": {"ch4": 0.2}}
    batch = [
        raw("yj/ent1/good-1/telemetry", json.dumps(body)),
        raw("yj/ent1/dev-1/telemetry", "not json"),
    ]
    before, readings = counts(), READINGS._value.get()
    with pytest.raises(ConnectionError):
        await ingestor.handle(batch)
    assert counts() == before and READINGS._value.get() == readings
    # MQTT redelivers the unacknowledged batch: seq 1 is not a duplicate of itself.
    bus.down = False
    await ingestor.handle(batch)
    assert sorted(r.topic for r in await out.next_batch(timeout_s=0.05)) == [
        Topics.DEADLETTER, Topics.READINGS,
    ]  # fmt: skip
    after = counts()
    assert {o: after[o] - before[o] for o in OUTCOMES} == {
        "accepted": 1, "duplicate": 0, "deadletter": 1,
    }  # fmt: skip
    assert READINGS._value.get() == readings + 1


# --- property: whatever the bytes and topic, received = accepted + duplicates + dead -----

_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)  # fmt: skip
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_ts = st.one_of(
    st.just(NOW), st.integers(min_value=-(2**66), max_value=2**66),
    st.text(max_size=30), st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    st.datetimes().map(lambda d: d.isoformat() + "-14:00"),
)  # fmt: skip
_seq = st.one_of(st.none(), st.integers(min_value=-(2**65), max_value=2**65), st.integers(0, 50))
_reading = st.fixed_dictionaries(
    {"ts": _ts, "values": st.dictionaries(st.text(max_size=6), _json_leaf, max_size=3)},
    optional={"seq": _seq, "quality": _json, "extra": _json},
)
_event = st.fixed_dictionaries(
    {"ts": _ts, "type": st.sampled_from(["person_in", "vent_open", "boom", ""])},
    optional={"seq": _seq, "count": _json_leaf, "attrs": _json},
)
_status = st.fixed_dictionaries(
    {"ts": _ts, "state": st.sampled_from(["online", "offline", "fault", "lost", 1])},
    optional={"detail": _json},
)


def _encode(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


_payload = st.one_of(
    st.binary(max_size=64),
    _json.map(_encode),
    _reading.map(_encode),
    st.lists(_reading, max_size=3).map(lambda b: _encode({"batch": b})),
    _event.map(_encode),
    _status.map(_encode),
)
_topic = st.one_of(
    st.sampled_from(["yj/ent1/dev-1/telemetry", "yj/ent1/dev-1/event", "yj/ent1/dev-1/status"]),
    st.sampled_from(["yj/ent1/ghost/event", "yj/ent1/dev-1", "yj//dev-1/status"]),
    st.text(max_size=30),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_topic, _payload), min_size=1, max_size=6))
async def test_every_message_is_accounted_for_and_the_next_valid_reading_is_stored(
    pool: asyncpg.Pool, messages: list[tuple[str, bytes]]
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE readings, deadletters, events, device_status")
    await register(pool)
    rig = Rig(pool)
    before = counts()
    batch = [raw(t, p) for t, p in messages]
    records = await rig.run([*batch, rig.good()])
    moved = {o: counts()[o] - before[o] for o in OUTCOMES}
    assert sum(moved.values()) == len(batch) + 1
    assert moved["deadletter"] == sum(r.topic == Topics.DEADLETTER for r in records)
    assert moved["accepted"] == sum(r.topic != Topics.DEADLETTER for r in records)
    # Every hostile kind has its reason: `internal` here would be an error nobody foresaw.
    assert {r for r, _ in letters(records)} <= set(Reason.ALL) - {Reason.INTERNAL}
    assert any(r.topic == Topics.READINGS and r.key == b"ent1/good-1" for r in records)
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM readings r JOIN reading_series s ON s.id = r.series"
            " WHERE s.device = 'good-1'"
        )
        letters_stored = await conn.fetchval("SELECT count(*) FROM deadletters")
    assert stored == 1 and letters_stored == moved["deadletter"]
