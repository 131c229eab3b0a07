"""Does the wall display keep up with 2,000 open alerts and 20 transitions/s?

Runs `yujing up --no-simulate` (embedded everything) in a fresh data directory, registers
2,000 gas detectors and raises an orange alert on each, opens the wall display in headless
Chromium at 1920×1080, then moves 20 alerts a second between orange and red over MQTT. In
the browser it measures, per transition, the delay from reading it off the SSE stream to the
frame that draws it (the screen's own `__yjPerf`), the frame times (requestAnimationFrame)
and every long task (PerformanceObserver).

    .venv/bin/python bench/screen.py [--alerts 2000] [--rate 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from yujing.testing.browser import chromium, ensure_screen_built
from yujing.testing.servers import free_port

TOKEN = "bench-screen"


def device(interval_s: float) -> dict[str, Any]:
    return {
        "kind": "gas_detector", "site": "face-1",
        "tags": {"sector": "coal", "location": "coal_face", "critical": "true"},
        "points": {"ch4": {"unit": "%CH4", "interval_s": interval_s}},
    }  # fmt: skip


# Installed in the page before the stream phase: frame times and long tasks.
PROBE = """() => {
  const p = window.__yjPerf; p.delays = []; p.drawn = 0; p.byKind = {}; p.frames = []; p.long = [];
  p.loaf = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) p.long.push(e.duration); })
    .observe({ type: "longtask", buffered: false });
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      if (e.duration < 50) continue;
      p.loaf.push({
        duration: e.duration, blocking: e.blockingDuration,
        style_layout: e.startTime + e.duration - e.styleAndLayoutStart,
        render: e.renderStart ? e.styleAndLayoutStart - e.renderStart : 0,
        scripts: e.scripts.map((s) => ({
          invoker: s.invoker, fn: s.sourceFunctionName, src: s.sourceURL.split("/").pop(),
          duration: s.duration, layout: s.forcedStyleAndLayoutDuration,
        })),
      });
    }
  }).observe({ type: "long-animation-frame", buffered: false });
  let last = performance.now();
  const tick = (t) => {
    p.frames.push(t - last); last = t; if (!p.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("yujing up exited early")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    raise SystemExit("yujing up was not ready within 150 s")


async def open_alerts(http: httpx.AsyncClient) -> int:
    n, cursor = 0, None
    while True:
        params: dict[str, Any] = {"state": "active", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        body = (await http.get("/api/v1/alerts", params=params)).json()
        n += len(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return n


async def prepare(
    http: httpx.AsyncClient, mqtt: aiomqtt.Client, alerts: int, interval_s: float
) -> int:
    for i in range(alerts):
        r = await http.put(f"/api/v1/devices/ent{i % 20}/gd-{i}", json=device(interval_s))
        r.raise_for_status()
    now = int(time.time() * 1000)
    for i in range(alerts):
        body = {"ts": now, "seq": 1, "values": {"ch4": 1.2}}
        await mqtt.publish(f"yj/ent{i % 20}/gd-{i}/telemetry", json.dumps(body), qos=1)
    for _ in range(600):
        if await open_alerts(http) >= alerts:
            return alerts
        await asyncio.sleep(0.5)
    raise SystemExit("the open alerts never reached the target")


async def drive(mqtt: aiomqtt.Client, alerts: int, rate: int, seconds: int) -> int:
    """Flips alerts between orange and red, `rate` readings a second, each one transition."""
    sent, start = 0, time.monotonic()
    seqs = [1] * alerts
    while time.monotonic() - start < seconds:
        i = sent % alerts
        seqs[i] += 1
        ch4 = 1.6 if (sent // alerts) % 2 == 0 else 1.2
        body = {"ts": int(time.time() * 1000), "seq": seqs[i], "values": {"ch4": ch4}}
        await mqtt.publish(f"yj/ent{i % 20}/gd-{i}/telemetry", json.dumps(body), qos=1)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


READY = (
    "document.querySelector('[data-testid=connection]')?.textContent === '实时' && "
    "Number(document.querySelector('[data-testid=count-orange]')?.textContent) >= {n}"
)


async def measure(
    base: str, mqtt: aiomqtt.Client, args: argparse.Namespace
) -> tuple[float, int, Any]:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        t0 = time.monotonic()
        await page.goto(f"{base}/#token={TOKEN}")
        await page.wait_for_function(READY.format(n=args.alerts), timeout=120_000)
        loaded = time.monotonic() - t0
        await page.evaluate(PROBE)
        cdp = await page.context.new_cdp_session(page) if args.profile else None
        if cdp:
            await cdp.send("Profiler.enable")
            await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
            await cdp.send("Profiler.start")
        sent = await drive(mqtt, args.alerts, args.rate, args.seconds)
        await asyncio.sleep(3)  # the last transitions reach the screen
        if cdp:
            profile = (await cdp.send("Profiler.stop"))["profile"]
            await asyncio.to_thread(Path(args.profile).write_text, json.dumps(profile))
        perf = await page.evaluate("() => { window.__yjPerf.stop = true; return window.__yjPerf; }")
        await page.close()
    return loaded, sent, perf


async def run(args: argparse.Namespace) -> None:
    ensure_screen_built()
    with tempfile.TemporaryDirectory(prefix="yj-bench-screen-") as tmp:
        http_port, mqtt_port = free_port(), free_port()
        env = {**os.environ, "YJ_DATA_DIR": str(Path(tmp) / "var"),
               "YJ_HTTP_PORT": str(http_port), "YJ_MQTT_PORT": str(mqtt_port),
               "YJ_ADMIN_TOKEN": TOKEN, "YJ_LOG_LEVEL": "WARNING"}  # fmt: skip
        for name in ("YJ_DATABASE_URL", "YJ_MQTT_URL", "YJ_KAFKA_BOOTSTRAP"):
            env.pop(name, None)
        yujing = Path(sys.executable).parent / "yujing"
        log = (Path(tmp) / "yujing.log").open("w")
        proc = subprocess.Popen(  # noqa: ASYNC220 -- started once, before any load
            [str(yujing), "up", "--no-simulate"], env=env, text=True,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{http_port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                await wait_ready(http, proc)
                async with aiomqtt.Client("127.0.0.1", mqtt_port) as mqtt:
                    opened = await prepare(http, mqtt, args.alerts, args.interval)
                    loaded, sent, perf = await measure(base, mqtt, args)
        except BaseException:
            log.flush()
            print((Path(tmp) / "yujing.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
    report(args, opened, loaded, sent, perf)


def spread(delays: list[float]) -> str:
    return (
        f"p50 {pct(delays, 0.5):.0f} ms, p95 {pct(delays, 0.95):.0f} ms, "
        f"p99 {pct(delays, 0.99):.0f} ms, max {max(delays, default=float('nan')):.0f} ms"
    )


# The transitions the driver causes: each reading flips one alert between orange and red.
DRIVEN = ("hazard escalated", "hazard deescalated")


def report(args: argparse.Namespace, opened: int, loaded: float, sent: int, perf: Any) -> None:
    delays, frames, long = perf["delays"], perf["frames"][1:], perf["long"]
    by_kind: dict[str, list[float]] = perf["byKind"]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, headless Chromium; "
          f"load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"open alerts: {opened}; points' interval_s {args.interval:g}; "
          f"wall display loaded and live in {loaded:.1f} s")  # fmt: skip
    print(f"stream: {sent} readings sent at {args.rate}/s for {args.seconds} s; "
          f"{perf['drawn']} transitions drawn")  # fmt: skip
    kinds = ", ".join(f"{k} {len(v)}" for k, v in sorted(by_kind.items()))
    print(f"  by kind: {kinds or 'none'}")
    driven = [d for k in DRIVEN for d in by_kind.get(k, [])]
    print(f"SSE → drawn, the driven transitions ({len(driven)}): {spread(driven)}")
    print(f"SSE → drawn, all transitions ({len(delays)}): {spread(delays)}")
    print(
        f"frame time: p50 {pct(frames, 0.5):.1f} ms, p95 {pct(frames, 0.95):.1f} ms, "
        f"max {max(frames, default=float('nan')):.1f} ms over {len(frames)} frames"
    )
    over = [d for d in long if d > 100]
    print(
        f"long tasks (> 50 ms): {len(long)}, longest {max(long, default=0):.0f} ms, "
        f"over 100 ms: {len(over)}"
    )
    for f in sorted(perf["loaf"], key=lambda f: -f["duration"])[:5]:
        scripts = "; ".join(
            f"{s['invoker']} {s['fn'] or '?'}@{s['src']} {s['duration']:.0f} ms"
            for s in sorted(f["scripts"], key=lambda s: -s["duration"])[:3]
        )
        print(
            f"  long frame {f['duration']:.0f} ms (blocking {f['blocking']:.0f}): "
            f"style+layout {f['style_layout']:.0f} ms; scripts: {scripts or 'none'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=600, help="the points' interval_s")
    parser.add_argument("--profile", help="write the stream phase's CPU profile (.cpuprofile)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
