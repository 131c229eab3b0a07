"""Cost of one engine checkpoint (all input partitions' snapshots) on the default packs:
a delta after 1 % of the devices reported, and after all of them reported, beside the
whole-snapshot cost. CPU time split into what runs on the event loop (taking copies of
the changed state) and what runs in a worker thread (encoding); the database write is
not included (the bytes are printed).

    .venv/bin/python bench/snapshot.py [--devices 10000 60000] [--partitions 6]

The fleet and its readings are bench/engine.py's. Run against a tree without deltas
(`Engine.capture` absent), it times that tree's whole snapshot of every partition, all
on the loop, for a before/after figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_batches  # bench/engine.py: the fleet

from yujing.ingest.batch import ReadingBatch
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules


def split(batch: ReadingBatch, parts: int, share: float, seed: int) -> list[ReadingBatch]:
    """The readings of `share` of the devices (all of them: 1.0), one batch per input
    partition (device index modulo `parts`, as a key hash would spread them)."""
    rng = np.random.default_rng(seed)
    chosen = rng.random(len(batch.devices)) < share
    out = []
    for p in range(parts):
        keep = chosen[batch.device] & (batch.device % parts == p)
        out.append(
            ReadingBatch(batch.devices, batch.points, batch.device[keep], batch.point[keep],
                         batch.ts[keep], batch.value[keep], batch.quality[keep])
        )  # fmt: skip
    return out


def checkpoint(engine: Engine, parts: int, *, full: bool) -> tuple[float, float, int]:
    """CPU s on the loop, CPU s encoding, bytes: every partition's snapshot or delta."""
    from yujing.rules.snapshot import encode

    t0 = time.process_time()
    snaps = [engine.capture(p, series=True, events=False, full=full)[0] for p in range(parts)]
    snaps += [engine.capture(p, series=False, events=True, full=full)[0] for p in range(parts)]
    engine.saved()
    t1 = time.process_time()
    size = sum(len(encode(s)) for s in snaps)
    return t1 - t0, time.process_time() - t1, size


def checkpoint_before(engine: Engine, parts: int) -> tuple[float, float, int]:
    """The tree before deltas: `snapshot.dump` of each partition, on the loop."""
    from yujing.rules import snapshot

    t0 = time.process_time()
    size = 0
    for p in range(parts):
        size += len(snapshot.dump(engine, p, series=True, events=False))  # type: ignore[attr-defined]
        size += len(snapshot.dump(engine, p, series=False, events=True))  # type: ignore[attr-defined]
    return time.process_time() - t0, 0.0, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, nargs="+", default=[10_000, 60_000])
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("command:   .venv/bin/python bench/snapshot.py " + " ".join(sys.argv[1:]))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    deltas = hasattr(Engine, "capture")
    rules = [(r, 1) for r in default_rules()]
    for n in args.devices:
        rounds = make_batches(n, 2 + 2 * args.repeat, 1, 0.002)
        engine = Engine(rules)
        for p, b in enumerate(split(rounds[0], args.partitions, 1.0, 0)):
            engine.on_batch(b, p)
        if deltas:
            checkpoint(engine, args.partitions, full=True)  # the base
        series = len(engine.series)
        for label, share in (("1 % changed", 0.01), ("all changed", 1.0)):
            best: tuple[float, float, int] | None = None
            for r in range(args.repeat):
                batch = rounds[1 + r + (args.repeat if share == 1.0 else 0)]
                for p, b in enumerate(split(batch, args.partitions, share, r + 1)):
                    engine.on_batch(b, p)
                got = (
                    checkpoint(engine, args.partitions, full=False)
                    if deltas
                    else checkpoint_before(engine, args.partitions)
                )
                if best is None or sum(got[:2]) < sum(best[:2]):
                    best = got
            assert best is not None
            loop_s, thread_s, size = best
            print(
                f"{n:>7,} devices ({series:,} series), {label:<12}: on the loop "
                f"{loop_s * 1000:7.1f} ms, encoding in a thread {thread_s * 1000:6.1f} ms, "
                f"{size / 1e6:6.2f} MB"
            )
        if deltas:
            loop_s, thread_s, size = checkpoint(engine, args.partitions, full=True)
            print(
                f"{n:>7,} devices, whole snapshot   : on the loop {loop_s * 1000:7.1f} ms, "
                f"encoding in a thread {thread_s * 1000:6.1f} ms, {size / 1e6:6.2f} MB"
            )


if __name__ == "__main__":
    main()
