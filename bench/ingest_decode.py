"""Cost of validating device messages in ingest (`yujing.ingest.payloads`), one core.

Prints messages/s and µs per message for a typical telemetry message (4 points), an
event, and a store-and-forward batch of 1,000 readings. Run:

    .venv/bin/python bench/ingest_decode.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from yujing.ingest import payloads as p

NOW = 1_763_856_000_000


def rate(label: str, fn: Callable[[], object], seconds: float = 2.0) -> None:
    n, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(200):
            fn()
        n += 200
    print(f"{label:<34} {n / elapsed:>10,.0f} msg/s  {elapsed / n * 1e6:>8.1f} µs/msg")


def main() -> None:
    values = {"ch4": 0.42, "co": 12.0, "o2": 20.9, "temp": 21.5}
    one = json.dumps({"ts": NOW, "seq": 41, "values": values}).encode()
    event = json.dumps({"ts": NOW, "seq": 7, "type": "person_in", "count": 2}).encode()
    batch = json.dumps(
        {"batch": [{"ts": NOW - i, "seq": i, "values": values} for i in range(1000)]}
    ).encode()
    rate("telemetry, 4 points", lambda: p.decode_telemetry(one, NOW, 300_000))
    rate("event", lambda: p.decode_event(event, NOW, 300_000))
    rate("batch of 1,000 readings (4 points)", lambda: p.decode_telemetry(batch, NOW, 300_000), 4)


if __name__ == "__main__":
    main()
