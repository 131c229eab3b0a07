"""Checking the regional picture against a scenario: the overview row of every registered
enterprise must state its register facts, count its devices, say which devices are online
and connected as the messages actually published imply, and give the colour that the alert
transitions seen on the SSE stream imply. Pure: observations in, error lines out."""

from __future__ import annotations

from typing import Any

from yujing.levels import Level
from yujing.simulators.fleet import DeviceRegistration, Fleet
from yujing.simulators.report import Observed

MISSED_INTERVALS = 3  # yujing/picture/overview.py: online within 3 reporting intervals
DEFAULT_INTERVAL_S = 25.0  # ... of the slowest point, or this when none is registered
MARGIN_S = 3.0  # a device this close to the boundary may be counted either way


def expected_colour(observed: list[Observed], enterprise: str) -> str | None:
    """The highest level among the enterprise's alerts whose last transition left them
    active or acknowledged, neither device-health nor suppressed."""
    last: dict[str, dict[str, Any]] = {}
    for o in sorted(observed, key=lambda o: o.seq):
        if o.alert.get("enterprise") == enterprise:
            last[o.key] = o.alert
    levels = [
        Level.parse(str(a["level"]))
        for a in last.values()
        if a.get("state") in ("active", "acknowledged")
        and not a.get("health")
        and not a.get("suppressed")
    ]
    return max(levels).word if levels else None


def online_bounds(
    devices: list[DeviceRegistration],
    last_report: dict[tuple[str, str], float],
    said_status: set[tuple[str, str]],
    now_wall: float,
) -> tuple[int, int, int]:
    """(connected, surely online, possibly online) from when each device last reported."""
    connected = surely = possibly = 0
    for d in devices:
        last = last_report.get((d.enterprise, d.device))
        if last is None:
            continue
        connected += 1
        intervals = [float(p["interval_s"]) for p in d.points.values() if "interval_s" in p]
        window = MISSED_INTERVALS * (max(intervals) if intervals else DEFAULT_INTERVAL_S)
        age = now_wall - last
        if (d.enterprise, d.device) in said_status or abs(age - window) < MARGIN_S:
            possibly += 1
        elif age < window:
            surely += 1
    return connected, surely, surely + possibly


def judge_map(
    fleet: Fleet, features: list[dict[str, Any]], items: list[dict[str, Any]]
) -> list[str]:
    """Every registered enterprise with a location is on the map, where it was registered,
    with the overview's colour."""
    errors: list[str] = []
    colours = {i["enterprise"]: i["colour"] for i in items}
    where = {f["id"]: f for f in features}
    for reg in fleet.registrations:
        loc = reg.record.get("location")
        if loc is None:
            continue
        f = where.get(reg.enterprise)
        if f is None:
            errors.append(f"{reg.enterprise}: not on the map")
        elif f["geometry"]["coordinates"] != [loc["lon"], loc["lat"]]:
            errors.append(f"{reg.enterprise}: on the map at {f['geometry']['coordinates']}")
        elif f["properties"]["colour"] != colours.get(reg.enterprise):
            errors.append(f"{reg.enterprise}: map colour {f['properties']['colour']!r}")
    return errors


def judge_statistics(
    enterprise: str, division: str, groups: list[dict[str, Any]], observed: list[Observed]
) -> list[str]:
    """The alarm statistics of one enterprise against the alerts seen raised on the stream:
    how many, at which peak level, counted in the enterprise's division."""
    peaks: dict[str, Level] = {}
    for o in observed:
        a = o.alert
        if a.get("enterprise") == enterprise and a.get("id"):
            peak = Level.parse(str(a.get("peak_level") or a["level"]))
            peaks[str(a["id"])] = max(peak, peaks.get(str(a["id"]), Level.NONE))
    want: dict[str, int] = {}
    for level in peaks.values():
        want[level.word] = want.get(level.word, 0) + 1
    got: dict[str, int] = {}
    for g in groups:
        if g["division"] != division:
            return [f"{enterprise}: alarms counted in division {g['division']}, not {division}"]
        got[g["level"]] = got.get(g["level"], 0) + int(g["raised"])
    if got != want:
        return [f"{enterprise}: statistics count raised alarms {got}, the stream saw {want}"]
    return []


def judge_picture(
    fleet: Fleet,
    items: list[dict[str, Any]],
    observed: list[Observed],
    last_report: dict[tuple[str, str], float],
    said_status: set[tuple[str, str]],
    now_wall: float,
) -> list[str]:
    errors: list[str] = []
    rows = {i["enterprise"]: i for i in items}
    for reg in fleet.registrations:
        row = rows.get(reg.enterprise)
        if row is None:
            errors.append(f"{reg.enterprise}: not in the overview")
            continue
        want = {
            "division": reg.division, "sectors": reg.sectors,
            "state": reg.record.get("state", "operating"),
            "devices": sum(1 for d in fleet.devices if d.enterprise == reg.enterprise),
            "colour": expected_colour(observed, reg.enterprise),
        }  # fmt: skip
        for name, value in want.items():
            if row[name] != value:
                errors.append(
                    f"{reg.enterprise}: overview {name} {row[name]!r}, expected {value!r}"
                )
        devices = [d for d in fleet.devices if d.enterprise == reg.enterprise]
        connected, low, high = online_bounds(devices, last_report, said_status, now_wall)
        if row["connected"] != connected:
            errors.append(
                f"{reg.enterprise}: overview connected {row['connected']}, published {connected}"
            )
        if not low <= row["online"] <= high:
            errors.append(
                f"{reg.enterprise}: overview online {row['online']}, expected {low}..{high}"
            )
    return errors
