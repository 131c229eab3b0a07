"""The in-process bus as a log: a position per consumer group, bounded memory with
back-pressure, compacted topics, and (with its write-ahead log) replay after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import MemoryBus, Record, Topics
from yujing.ingest.wal import Wal

R, REG = Topics.READINGS, Topics.REGISTRY


def pairs(n: int, start: int = 0, prefix: bytes = b"v") -> list[tuple[bytes, bytes]]:
    return [(b"k", prefix + str(i).encode()) for i in range(start, start + n)]


def values(records: list[Record]) -> list[bytes]:
    return [r.value for r in records]


async def test_a_group_that_subscribes_late_reads_from_the_start() -> None:
    bus = MemoryBus()
    await bus.publish(R, pairs(3))
    late = bus.consumer([R], "sink")
    assert values(await late.next_batch(timeout_s=0.01)) == [b"v0", b"v1", b"v2"]


async def test_a_group_resumes_from_its_commit_and_gets_the_rest_again() -> None:
    bus = MemoryBus()
    first = bus.consumer([R], "engine")
    await bus.publish(R, pairs(4))
    got = await first.next_batch(timeout_s=0.01, max_records=2)
    assert values(got) == [b"v0", b"v1"]
    await first.commit()
    assert values(await first.next_batch(timeout_s=0.01, max_records=1)) == [b"v2"]
    with pytest.raises(RuntimeError, match="one consumer per group"):
        bus.consumer([R], "engine")
    await first.close()  # v2 returned but not committed: it comes back
    again = bus.consumer([R], "engine")
    assert values(await again.next_batch(timeout_s=0.01)) == [b"v2", b"v3"]
    # A new group starts at the oldest record kept: v0 and v1 were committed by every
    # group there was, so they are gone.
    other = bus.consumer([R], "sink")
    assert values(await other.next_batch(timeout_s=0.01)) == [b"v2", b"v3"]


async def test_records_of_several_topics_come_in_publish_order() -> None:
    bus = MemoryBus()
    out = bus.consumer([R, Topics.STATUS, Topics.EVENTS], "engine")
    await bus.publish(Topics.STATUS, pairs(1, 0))
    await bus.publish(R, pairs(2, 1))
    await bus.publish(Topics.EVENTS, pairs(1, 3))
    await bus.publish(Topics.STATUS, pairs(1, 4))
    got = await out.next_batch(timeout_s=0.01)
    assert [(r.topic, r.value) for r in got] == [
        (Topics.STATUS, b"v0"), (R, b"v1"), (R, b"v2"), (Topics.EVENTS, b"v3"),
        (Topics.STATUS, b"v4"),
    ]  # fmt: skip


async def test_a_lagging_group_holds_publishers_back_and_commits_free_memory() -> None:
    bus = MemoryBus(max_lag=10)
    slow, fast = bus.consumer([R], "slow"), bus.consumer([R], "fast")
    await bus.publish(R, pairs(10))
    publishing = asyncio.create_task(bus.publish(R, pairs(5, 10)))
    await asyncio.sleep(0.05)
    assert not publishing.done()  # slow has 10 uncommitted: the publisher waits
    await fast.next_batch(timeout_s=0.01)
    await fast.commit()
    await asyncio.sleep(0.01)
    assert not publishing.done()  # the slowest group decides
    assert values(await slow.next_batch(timeout_s=0.01, max_records=6)) == pairs_values(6)
    await slow.commit()
    await asyncio.wait_for(publishing, 1)
    assert bus.retained(R) == 9  # v0–v5 committed by both groups: dropped
    got = await slow.next_batch(timeout_s=0.01)
    assert values(got) == pairs_values(15)[6:]


async def test_the_bound_counts_bytes_too() -> None:
    bus = MemoryBus(max_lag=1000, max_lag_bytes=100)
    group = bus.consumer([R], "sink")
    await bus.publish(R, [(b"k", b"x" * 60)])
    await bus.publish(R, [(b"k", b"x" * 60)])  # 60 bytes behind: still under the bound
    publishing = asyncio.create_task(bus.publish(R, [(b"k", b"y")]))
    await asyncio.sleep(0.02)
    assert not publishing.done()  # 120 bytes behind
    await group.next_batch(timeout_s=0.01, max_records=1)
    await group.commit()
    await asyncio.wait_for(publishing, 1)


def pairs_values(n: int) -> list[bytes]:
    return [v for _, v in pairs(n)]


async def test_a_topic_no_group_reads_keeps_its_last_records() -> None:
    bus = MemoryBus(max_lag=5)
    await bus.publish(Topics.ALERTS, pairs(8))  # nobody reads the feed: no waiting
    assert bus.retained(Topics.ALERTS) == 5
    late = bus.consumer([Topics.ALERTS], "reader")
    assert values(await late.next_batch(timeout_s=0.01)) == pairs_values(8)[3:]


async def test_compacted_topics_keep_the_latest_per_key_and_never_wait() -> None:
    bus = MemoryBus(max_lag=2)
    for i in range(3000):
        await bus.publish(REG, [(f"device:e1/d{i % 3}".encode(), str(i).encode())])
    late = bus.consumer([REG], None)
    got = await late.next_batch(timeout_s=0.01)
    latest = {r.key: r.value for r in got}
    assert latest == {b"device:e1/d0": b"2997", b"device:e1/d1": b"2998", b"device:e1/d2": b"2999"}
    assert bus.retained(REG) < 1100  # compacted as it goes


def batch() -> ReadingBatch:
    info = DeviceInfo("e1", "gd-1", "gas_detector", "mine-1")
    return ReadingBatch(
        [info], ["ch4"], np.zeros(2, np.int32), np.zeros(2, np.int32),
        np.array([1, 2], np.int64), np.array([0.3, 0.4]), np.zeros(2, np.uint8),
    )  # fmt: skip


async def test_consumers_in_the_process_get_the_publishers_object() -> None:
    bus = MemoryBus()
    out = bus.consumer([R], "engine")
    b = batch()
    await bus.publish(R, [(b"e1/gd-1", b.to_bytes())], [b])
    (rec,) = await out.next_batch(timeout_s=0.01)
    assert rec.decoded is b and ReadingBatch.from_bytes(rec.value).value.tolist() == [0.3, 0.4]


async def open_log(path: Path, *, max_lag: int = 1000, segment_bytes: int = 64 << 20) -> MemoryBus:
    bus = MemoryBus(max_lag=max_lag, wal=Wal(path, segment_bytes=segment_bytes))
    await bus.start()
    return bus


async def test_the_log_on_disk_replays_from_each_groups_commit(tmp_path: Path) -> None:
    bus = await open_log(tmp_path)
    engine, sink = bus.consumer([R], "engine"), bus.consumer([R], "sink")
    b = batch()
    await bus.publish(R, [(b"e1/gd-1", b.to_bytes())], [b])
    await bus.publish(R, pairs(3))
    await bus.publish(REG, [(b"device:e1/gd-1", b"{}")])
    first = await engine.next_batch(timeout_s=0.01)
    offsets = [r.offset for r in first]
    assert first[0].decoded is b and offsets == list(range(offsets[0], offsets[0] + 4))
    await engine.commit()
    await sink.next_batch(timeout_s=0.01, max_records=1)
    await sink.commit()
    await bus.close()

    bus = await open_log(tmp_path)  # a restart: what each group has not committed is back
    engine, sink = bus.consumer([R], "engine"), bus.consumer([R], "sink")
    assert await engine.next_batch(timeout_s=0.01) == []
    rest = await sink.next_batch(timeout_s=0.01)
    assert values(rest) == pairs_values(3) and rest[0].offset == offsets[1]
    assert rest[0].decoded is None  # bytes only, after a restart
    await bus.publish(R, pairs(1, 3))  # offsets go on where they were
    assert [r.offset for r in await engine.next_batch(timeout_s=0.01)] == [offsets[-1] + 1]
    (reg,) = await bus.consumer([REG], None).next_batch(timeout_s=0.01)
    assert (reg.key, reg.value) == (b"device:e1/gd-1", b"{}")
    await bus.close()


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.wal"))


def tear(segment: Path, n: int) -> None:
    segment.write_bytes(segment.read_bytes()[:-n])


async def test_a_group_waiting_on_an_empty_topic_reads_it_after_a_restart(
    tmp_path: Path,
) -> None:
    bus = await open_log(tmp_path)
    await bus.publish(R, pairs(1))  # the segment's head is written before the group comes
    bus.consumer([Topics.STATUS], "engine")
    await bus.publish(R, pairs(1, 1))
    await bus.close()
    bus = await open_log(tmp_path)
    engine = bus.consumer([Topics.STATUS], "engine")
    await bus.publish(Topics.STATUS, pairs(1, 7))
    assert values(await engine.next_batch(timeout_s=0.01)) == [b"v7"]
    await bus.close()


async def test_a_torn_last_entry_is_cut_off(tmp_path: Path) -> None:
    bus = await open_log(tmp_path)
    await bus.publish(R, pairs(2))
    await bus.close()
    (segment,) = segments(tmp_path)
    tear(segment, 3)  # the crash came in the middle of the last write
    bus = await open_log(tmp_path)
    assert values(await bus.consumer([R], "g").next_batch(timeout_s=0.01)) == [b"v0"]
    await bus.publish(R, pairs(1, 5))
    await bus.close()
    bus = await open_log(tmp_path)
    assert values(await bus.consumer([R], "g").next_batch(timeout_s=0.01)) == [b"v0", b"v5"]
    await bus.close()


async def test_segments_go_once_every_group_passed_them(tmp_path: Path) -> None:
    bus = await open_log(tmp_path, segment_bytes=2000)
    group = bus.consumer([R], "sink")
    await bus.publish(REG, [(b"device:e1/keep", b"registered early")])
    for i in range(40):
        await bus.publish(R, pairs(5, i * 5, b"x" * 50))
    assert len(segments(tmp_path)) > 5
    while await group.next_batch(timeout_s=0.01, max_records=7):
        await group.commit()
    await asyncio.sleep(0.05)  # the segments are deleted beside the commits
    assert len(segments(tmp_path)) <= 2
    await bus.close()
    bus = await open_log(tmp_path)  # the registry record outlived its segment
    (reg,) = await bus.consumer([REG], None).next_batch(timeout_s=0.01)
    assert reg.value == b"registered early"
    assert await bus.consumer([R], "sink").next_batch(timeout_s=0.01) == []
    await bus.publish(R, pairs(1))
    assert bus.retained(R) == 1
    await bus.close()
