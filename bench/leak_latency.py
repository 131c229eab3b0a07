"""How soon after the demo leak crosses 1.5 %CH4 is the red alert at /api/v1/alerts?

Runs the README's `yujing up` (embedded everything, demo fleet on) in a fresh data
directory, waits for the simulator's line saying methane reached red (printed right after
that reading was published), then polls the API every 20 ms until the red alert is listed.

    .venv/bin/python bench/leak_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from yujing.testing.servers import free_port

TOKEN = "bench-leak-latency"


def one_run(timeout_s: float = 240.0) -> float:
    with tempfile.TemporaryDirectory(prefix="yj-bench-") as tmp:
        http_port = free_port()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "YJ_DATA_DIR": str(Path(tmp) / "var"),
            "YJ_HTTP_PORT": str(http_port),
            "YJ_MQTT_PORT": str(free_port()),
            "YJ_ADMIN_TOKEN": TOKEN,
            "YJ_LOG_LEVEL": "WARNING",
        }
        env.pop("YJ_DATABASE_URL", None)
        env.pop("YJ_MQTT_URL", None)
        env.pop("YJ_KAFKA_BOOTSTRAP", None)
        yujing = Path(sys.executable).parent / "yujing"
        proc = subprocess.Popen(
            [str(yujing), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        crossed = threading.Event()
        crossed_at = [0.0]

        def watch() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "methane leak:" in line and not crossed.is_set():
                    crossed_at[0] = time.monotonic()
                    crossed.set()

        threading.Thread(target=watch, daemon=True).start()
        try:
            if not crossed.wait(timeout_s):
                raise SystemExit("the leak never crossed 1.5 %CH4")
            url = f"http://127.0.0.1:{http_port}/api/v1/alerts"
            params = {"min_level": "red", "state": "active"}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client() as client:
                while time.monotonic() - crossed_at[0] < 30:
                    items = client.get(url, params=params, headers=headers).json()["items"]
                    if any(a["point"] == "ch4" for a in items):
                        return time.monotonic() - crossed_at[0]
                    time.sleep(0.02)
            raise SystemExit("no red alert within 30 s of the crossing")
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results = [one_run() for _ in range(args.runs)]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    for i, r in enumerate(results, 1):
        print(f"run {i}: red alert listed {r * 1000:.0f} ms after the leak crossed 1.5 %CH4")
    if len(results) > 1:
        print(
            f"median {statistics.median(results) * 1000:.0f} ms, max {max(results) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
