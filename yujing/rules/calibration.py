"""Calibration due dates: a detector's tag (`calibration_due`) holds the date its next
calibration is due; once the clock passes it, one device-level alert (CalibrationRule).
Judged on the clock tick over the devices that carry the tag, so a detector that never
reports is still judged once the engine has seen it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, time, timedelta, timezone

import msgspec
import numpy as np

from yujing.ingest.batch import DeviceInfo
from yujing.levels import Level
from yujing.rules.emit import RuleEntry
from yujing.rules.kind import Carried, Indexed, Kind, Owned, Part, Restored
from yujing.rules.model import CalibrationRule
from yujing.rules.series import Series
from yujing.rules.transition import Transition

# Snapshot section: (rule id, device key, level) for the part's devices.
Section = list[tuple[str, str, int]]


def due_ms(text: str, utc_offset_h: float) -> int | None:
    """When a due date has lapsed, in epoch ms: a date lapses at the end of that local
    day, a date-time at that instant (local time when it has no offset). None: not a date."""
    tz = timezone(timedelta(hours=utc_offset_h))
    try:
        if len(text.strip()) == 10:
            day = datetime.fromisoformat(text.strip()).date()
            when = datetime.combine(day + timedelta(days=1), time(), tz)
        else:
            when = datetime.fromisoformat(text.strip())
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError:
        return None
    return round(when.timestamp() * 1000)


class Calibrations(Kind):
    name = "calibration"
    rules = (CalibrationRule,)
    point_alerts = False

    def __init__(self, series: Series) -> None:
        self.series = series
        self.entries: dict[str, RuleEntry] = {}
        self.level: dict[tuple[str, str], int] = {}  # (rule id, device key) → level now
        self._due: dict[str, dict[int, int]] = {}  # rule id → engine device index → due ms
        self._seen: dict[str, list[DeviceInfo]] = {}  # the device records the cache holds
        self._stale = True  # devices were added or changed since the last scan

    def touch(self) -> None:
        """New or changed device records: the next tick reads their due dates."""
        self._stale = True

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        self.entries[entry.id] = entry
        self._due[entry.id], self._seen[entry.id] = {}, []
        self._stale = True
        self.level.update(carried)

    def unbind(self, entry: RuleEntry) -> Carried:
        self.entries.pop(entry.id, None)
        self._due.pop(entry.id, None)
        self._seen.pop(entry.id, None)
        kept = {k: v for k, v in self.level.items() if k[0] == entry.id}
        for k in kept:
            del self.level[k]
        return kept

    def drop(self, partition: int, keys: Collection[str]) -> None:
        gone = set(keys)
        for k in [k for k in self.level if k[1] in gone]:
            del self.level[k]

    def snapshot(self, part: Part) -> Section | None:
        if not self.level:
            return None
        s = self.series
        inside = np.zeros(len(s.devices), np.bool_)
        inside[part.devices] = True
        out: Section = []
        for (rid, dk), lv in self.level.items():
            enterprise, _, device = dk.partition("/")
            idx = s.device_index.get((enterprise, device))
            if idx is not None and inside[idx]:
                out.append((rid, dk, lv))
        return out or None

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        for data, _ in pieces:
            for rid, dk, lv in msgspec.msgpack.decode(data, type=Section):
                self.level[(rid, dk)] = lv

    def _refresh(self, rule: CalibrationRule, series: Series) -> dict[int, int]:
        """Due dates of new devices, and of devices whose record changed."""
        due, seen = self._due[rule.id], self._seen[rule.id]
        for idx, info in enumerate(series.devices):
            if idx < len(seen) and seen[idx] is info:
                continue
            if idx < len(seen):
                seen[idx] = info
            else:
                seen.append(info)
            text = info.tags.get(rule.due_tag)
            ok = (
                text is not None
                and info.rev != -1  # removed, or its partition moved to another engine
                and rule.select.matches(info.kind, None, info.tags)
            )
            when = due_ms(text, rule.utc_offset_h) if ok and text is not None else None
            if when is None:
                due.pop(idx, None)
            else:
                due[idx] = when
        return due

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        return [(0, t) for t in self._tick(now_ms, self.series, owned.partitions)]

    def _tick(self, now_ms: int, series: Series, owned: Collection[int] | None) -> list[Transition]:
        out = []
        stale, self._stale = self._stale, False
        for entry in self.entries.values():
            rule = entry.rule
            assert isinstance(rule, CalibrationRule)
            level = int(Level.parse(rule.level))
            due = self._refresh(rule, series) if stale else self._due[rule.id]
            for idx, when in sorted(due.items()):
                if owned is not None and int(series.device_partition[idx]) not in owned:
                    continue
                info = series.devices[idx]
                key = (rule.id, info.key)
                before, after = self.level.get(key, 0), level if now_ms >= when else 0
                if after == before:
                    continue
                self.level[key] = after
                series.touched[idx] = True
                out.append(_transition(entry, rule, info, before, after, now_ms, when))
        return out


def _transition(
    entry: RuleEntry,
    rule: CalibrationRule,
    info: DeviceInfo,
    before: int,
    after: int,
    now_ms: int,
    due: int,
) -> Transition:
    return Transition(
        key=f"{info.enterprise}/{info.device}/-/{rule.id}",
        enterprise=info.enterprise,
        site=info.site,
        device=info.device,
        point=None,
        rule_id=rule.id,
        rule_version=entry.version,
        kind=rule.kind,
        from_level=before,
        to_level=after,
        ts=now_ms,
        value=round((now_ms - due) / 86_400_000, 2),
        threshold=0.0,
        unit="days overdue",
        rule_name=rule.name,
        health=rule.health,
    )
