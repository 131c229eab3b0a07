"""What the in-process bus's write-ahead log costs: publish throughput of reading batches
(one record per MQTT message of ~100 readings, as gateways send) into `MemoryBus`, with the
log fsynced (what `yujing up` does), written without fsync, and with no log at all.

    .venv/bin/python bench/bus_log.py [--records 20000] [--readings 100] [--publishers 4]
                                      [--batch 1]

`--publishers` concurrent publishers, as ingest batches and the engine's transitions
share the log: their records share each fsync (group commit). `--batch` records go in one
`publish`, as ingest hands over all the messages it gathered in its linger at once. A
consumer group reads and commits beside them, so the log is trimmed and segments deleted
as in a running system.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.ingest.bus import MemoryBus, Topics
from yujing.ingest.wal import Wal


def batch(n: int, i: int) -> ReadingBatch:
    info = DeviceInfo("ent1", f"gw-{i % 1000}", "gateway", "site-1", uid=i, rev=1)
    return ReadingBatch(
        [info], [f"p{k}" for k in range(n)], np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
        np.full(n, 1_763_856_000_000 + i, np.int64), np.random.default_rng(i).random(n),
        np.zeros(n, np.uint8),
    )  # fmt: skip


async def run(mode: str, args: argparse.Namespace, values: list[bytes]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="yj-bench-bus-", dir=args.dir) as tmp:
        wal = None if mode == "memory" else Wal(Path(tmp), fsync=mode == "fsync")
        bus = MemoryBus(wal=wal)
        await bus.start()
        sink = bus.consumer([Topics.READINGS], "sink")
        done = asyncio.Event()

        async def consume() -> None:
            seen = 0
            while seen < len(values):
                seen += len(await sink.next_batch(timeout_s=0.5))
                await sink.commit()
            done.set()

        async def publish(part: list[bytes]) -> None:
            for i in range(0, len(part), args.batch):
                await bus.publish(
                    Topics.READINGS, [(b"ent1/gw", v) for v in part[i : i + args.batch]]
                )

        reader = asyncio.create_task(consume())
        t0 = time.perf_counter()
        k = args.publishers
        await asyncio.gather(*(publish(values[i::k]) for i in range(k)))
        elapsed = time.perf_counter() - t0
        await done.wait()
        await reader
        writes = bus._writer.writes if bus._writer else 0
        await bus.close()
    return elapsed, writes


async def main(args: argparse.Namespace) -> None:
    values = [batch(args.readings, i).to_bytes() for i in range(args.records)]
    size = sum(map(len, values))
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; log in {args.dir}/")  # fmt: skip
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.records} records of {args.readings} readings, {size / len(values):.0f} B each,"
          f" {args.publishers} publishers, {args.batch} per publish")  # fmt: skip
    print(f"{'mode':<8} {'records/s':>10} {'readings/s':>12} {'MB/s':>7} {'fsyncs':>7}")
    for mode in ("memory", "nofsync", "fsync"):
        elapsed, writes = await run(mode, args, values)
        rate = args.records / elapsed
        print(f"{mode:<8} {rate:>10,.0f} {rate * args.readings:>12,.0f}"
              f" {size / elapsed / 1e6:>7.1f} {writes if mode == 'fsync' else '-':>7}")  # fmt: skip
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--readings", type=int, default=100)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    # Not the temp dir, which may be tmpfs (where fsync costs nothing): where `yujing up`
    # keeps its data by default.
    parser.add_argument("--dir", default="var", help="where the log goes (default: var)")
    parsed = parser.parse_args()
    Path(parsed.dir).mkdir(exist_ok=True)
    asyncio.run(main(parsed))
