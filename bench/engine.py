"""Engine throughput on the default packs: readings per second per core, vectorised engine
beside the per-reading reference, same data.

    .venv/bin/python bench/engine.py [--devices 100000] [--rounds 20] [--per-batch 1]

A "round" is every device reporting every point once (one polling cycle of a province);
`--per-batch` rounds go into one batch. Values sit in the normal band with a small share
near and above thresholds (so alerts rise and clear), and a few percent of readings arrive
out of order. Single process, single thread: the figure is per core.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from yujing.ingest.batch import DeviceInfo, ReadingBatch
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules
from yujing.rules.reference import Reference

# (share of the fleet, kind, tags, {point: (normal value, alarm-ish value)}): every sector
# of the default packs; the design values the packs read from tags are on the devices.
TANK = {
    "installation": "mh-1",
    "level_l": "1.5",
    "level_ll": "0.8",
    "level_h": "14",
    "level_hh": "15",
    "temp_h": "40",
    "temp_hh": "50",
    "press_h": "20",
    "press_hh": "25",
}
CAST = {
    "cw_pressure_min": "0.25",
    "cw_flow_min": "80",
    "cw_temp_max": "40",
    "melt_level_max": "120",
}
FLEET: list[tuple[float, str, dict[str, str], dict[str, tuple[float, float]]]] = [
    (0.12, "gas_detector", {"sector": "coal", "location": "coal_face", "critical": "true",
                            "power_cut": "true"},
     {"ch4": (0.3, 1.6), "co": (5.0, 30.0), "o2": (20.8, 19.0)}),
    (0.06, "gas_detector", {"sector": "coal", "location": "return_airway", "critical": "true"},
     {"ch4": (0.4, 1.1), "co": (4.0, 25.0)}),
    (0.06, "gas_detector", {"sector": "coal", "location": "heading_face"},
     {"ch4": (0.3, 1.2), "co2": (0.2, 0.6), "no2": (0.3, 3.0), "so2": (0.4, 6.0)}),
    (0.15, "gas_detector", {"sector": "chemical", "installation": "mh-1"},
     {"lel": (2.0, 30.0), "h2s": (0.5, 9.0), "co": (3.0, 20.0), "o2": (20.9, 19.0)}),
    (0.08, "tank_monitor", TANK, {"level": (7.0, 14.5), "temp": (25.0, 45.0),
                                  "pressure": (10.0, 22.0)}),
    (0.05, "gas_detector", {"sector": "metallurgy"}, {"co": (3.0, 40.0)}),
    (0.05, "gas_detector", {"sector": "metal_mine"},
     {"co": (4.0, 30.0), "o2": (20.8, 19.5), "no2": (0.3, 3.0)}),
    (0.03, "anemometer", {"sector": "metal_mine", "air_speed_min": "0.25"},
     {"air_speed": (1.0, 0.1)}),
    (0.10, "dust_collector", {"collector": "dry", "dust": "metal", "dp_rated": "1200",
                              "air_speed_min": "23"},
     {"dp": (1150.0, 1600.0), "hopper_temp": (35.0, 75.0), "inlet_temp": (40.0, 72.0),
      "air_speed": (28.0, 20.0)}),
    (0.05, "dust_collector", {"collector": "wet", "dust": "wood", "dp_rated": "1200",
                              "water_level_min": "0.8", "flow_min": "20"},
     {"dp": (1150.0, 1600.0), "water_level": (1.2, 0.6), "flow": (30.0, 12.0)}),
    (0.03, "casting_monitor", CAST, {"cw_pressure": (0.38, 0.2), "cw_flow": (120.0, 70.0),
                                     "cw_temp": (22.0, 42.0), "melt_level": (66.0, 125.0)}),
    (0.04, "workshop_monitor", {"max_people": "6", "max_kg": "50", "temp_max": "32",
                                "humidity_min": "60"},
     {"people": (3.0, 8.0), "explosive_kg": (25.0, 55.0), "temp": (20.0, 34.0),
      "humidity": (75.0, 55.0)}),
    (0.08, "tailings_monitor", {"dam": "dam-1", "item": "displacement", "warn_blue": "10",
                                "warn_yellow": "20", "warn_orange": "30", "warn_red": "40"},
     {"displacement": (3.0, 25.0)}),
    (0.10, "power_meter", {"idle_kw": "50", "night_kw": "100"}, {"p_active": (20.0, 400.0)}),
]  # fmt: skip
# Meters with a `jump_kw` tag are bound to the `power-jump` rate rule, which runs per
# reading in Python (rate.py): `--jump-share` moves that share of the fleet onto it.
JUMP_METER = ("power_meter", {"idle_kw": "50", "jump_kw": "200"}, {"p_active": (20.0, 400.0)})


def with_jump_meters(share: float) -> None:
    if share <= 0:
        return
    last = FLEET[-1]
    FLEET[-1] = (last[0] - share, *last[1:])
    FLEET.append((share, *JUMP_METER))


def fleet(
    n: int,
) -> tuple[list[DeviceInfo], list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    devices: list[DeviceInfo] = []
    points = sorted({p for *_, pts in FLEET for p in pts})
    dev_col, pt_col, normal, alarm = [], [], [], []
    for share, kind, tags, pts in FLEET:
        for _ in range(int(n * share)):
            d = len(devices)
            # registry ids, as ingest attaches them from the devices table
            devices.append(
                DeviceInfo("ent-1", f"dev-{d}", kind, f"site-{d // 50}", tags, {}, uid=d + 1, rev=1)
            )
            for p, (lo, hi) in pts.items():
                dev_col.append(d)
                pt_col.append(points.index(p))
                normal.append(lo)
                alarm.append(hi)
    return (
        devices,
        points,
        np.array(dev_col, np.int32),
        np.array(pt_col, np.int32),
        np.array(normal),
        np.array(alarm),
    )


def make_batches(
    n: int, rounds: int, per_batch: int, hot_share: float, seed: int = 1
) -> list[ReadingBatch]:
    rng = np.random.default_rng(seed)
    devices, points, dev, pt, normal, alarm = fleet(n)
    hot = rng.random(len(dev)) < hot_share  # these series drift to their alarm value and back
    out = []
    t0 = 1_763_856_000_000
    for r0 in range(0, rounds, per_batch):
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        for r in range(r0, min(r0 + per_batch, rounds)):
            noise = 1 + 0.005 * rng.standard_normal(len(dev))  # 0.5 % sensor noise
            phase = (r % 10) / 9
            value = np.where(hot, normal + (alarm - normal) * phase, normal) * noise
            ts = t0 + r * 15_000 + rng.integers(0, 2_000, len(dev))
            late = rng.random(len(dev)) < 0.02
            ts = np.where(late, ts - 20_000, ts)
            parts: tuple[np.ndarray, ...] = (dev, pt, ts, value, np.zeros(len(dev), np.uint8))
            for c, a in zip(cols, parts, strict=True):
                c.append(a)
        out.append(ReadingBatch(devices, points, *(np.concatenate(c) for c in cols)))  # type: ignore[arg-type]
    return out


def measure(engine: Engine | Reference, batches: list[ReadingBatch]) -> tuple[float, int, int]:
    n = sum(len(b) for b in batches)
    start = time.process_time()
    emitted = sum(len(engine.on_batch(b)) for b in batches)
    return n / (time.process_time() - start), n, emitted


def measure_parts(engine: Engine, batches: list[ReadingBatch]) -> tuple[float, float]:
    """CPU seconds in the device-table lookup and in rule evaluation, separately."""
    lookup = evaluation = 0.0
    for b in batches:
        t0 = time.process_time()
        sid = engine.series_of(b)
        t1 = time.process_time()
        engine.evaluate(b, sid)
        evaluation += time.process_time() - t1
        lookup += t1 - t0
    return lookup, evaluation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-batch", type=int, default=1)
    ap.add_argument("--reference-rounds", type=int, default=2)
    ap.add_argument("--hot", type=float, default=0.002, help="share of series drifting into alarm")
    ap.add_argument("--jump-share", type=float, default=0.0, help="share of jump_kw meters")
    args = ap.parse_args()
    with_jump_meters(args.jump_share)
    print("command:   .venv/bin/python bench/engine.py " + " ".join(sys.argv[1:]))
    rules = [(r, 1) for r in default_rules()]
    batches = make_batches(args.devices, args.rounds + 1, args.per_batch, args.hot)
    engine = Engine(rules)
    t = time.process_time()
    engine.on_batch(batches[0])  # binds every series to its rules
    bind_s = time.process_time() - t
    rate, n, emitted = measure(engine, batches[1:])
    nb = len(batches) - 1
    print(
        f"engine:    {rate / 1e6:6.2f} M readings/s/core  ({n:,} readings of {args.devices:,} "
        f"devices in {nb} batches of {n // nb:,}; {emitted:,} transitions, "
        f"{engine.late_readings:,} late readings; binding {len(engine.series):,} series on the "
        f"first batch took {bind_s:.2f} s)"
    )
    parts = Engine(rules)
    parts.on_batch(batches[0])
    lookup, evaluation = measure_parts(parts, batches[1:])
    print(
        f"  of which: device-table lookup {lookup / n * 1e9:5.1f} ns/reading "
        f"({lookup / (nb * args.devices) * 1e9:.0f} ns per device and batch), rule evaluation "
        f"{evaluation / n * 1e9:5.1f} ns/reading = {n / evaluation / 1e6:.1f} M readings/s/core"
    )
    ref_batches = make_batches(args.devices, args.reference_rounds + 1, 1, args.hot)
    reference = Reference(rules)
    reference.on_batch(ref_batches[0])
    ref_rate, ref_n, _ = measure(reference, ref_batches[1:])
    print(f"reference: {ref_rate / 1e6:6.2f} M readings/s/core  ({ref_n:,} readings, same mix)")
    print(f"speed-up:  {rate / ref_rate:6.1f}x")


if __name__ == "__main__":
    main()
