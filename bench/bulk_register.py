"""How fast can a province's devices be registered? `POST /api/v1/devices/bulk` with
2,000 devices per request against a running API over HTTP, and `PUT /devices/{e}/{d}`
one by one for comparison (the issue measured 158 devices/s that way).

    .venv/bin/python bench/bulk_register.py --url http://127.0.0.1:8000 --token T [--devices N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import uuid

import httpx


def record(ns: str, i: int) -> dict[str, object]:
    return {
        "enterprise": f"{ns}-e{i // 50:04d}", "device": f"gd-{i % 50:02d}",
        "kind": "gas_detector", "site": "s1", "tags": {"sector": "chemical"},
        "points": {"lel": {"unit": "%LEL", "interval_s": 10}},
    }  # fmt: skip


async def run(url: str, token: str, n: int, singles: int) -> None:
    ns = f"b{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        t0 = time.perf_counter()
        for start in range(0, n, 2_000):
            body = {"devices": [record(ns, i) for i in range(start, min(n, start + 2_000))]}
            r = await client.post("/api/v1/devices/bulk", json=body)
            r.raise_for_status()
        bulk_s = time.perf_counter() - t0
        print(f"  bulk:       {n:,} devices in {bulk_s:.2f} s = {n / bulk_s:,.0f} devices/s")
        t0 = time.perf_counter()
        for i in range(singles):
            rec = record(ns + "s", i)
            ent, dev = rec.pop("enterprise"), rec.pop("device")
            (await client.put(f"/api/v1/devices/{ent}/{dev}", json=rec)).raise_for_status()
        one_s = time.perf_counter() - t0
        print(
            f"  one by one: {singles:,} devices in {one_s:.2f} s = {singles / one_s:,.0f} devices/s"
        )


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("YJ_TOKEN", ""))
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=500)
    args = parser.parse_args()
    print(f"$ {' '.join([os.path.relpath(sys.executable), *sys.argv])}".replace(args.token, "T"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores,"
          f" Python {platform.python_version()}")  # fmt: skip
    asyncio.run(run(args.url, args.token, args.devices, args.singles))


if __name__ == "__main__":
    main()
