"""The rule model (docs/contracts.md, "Rules"): one pydantic class per rule kind, discriminated
on `kind`, with validation that refuses rules an engine could not evaluate sensibly.

Thresholds may name a device tag instead of a number (`"idle_kw"`, `"0.2*dp_rated"`): the
value is then read from each device's tags when the rule is bound to it, because some
limits (a collector's rated pressure difference, a plant's idle power) belong to the device.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from yujing.levels import Level
from yujing.names import IDENTIFIER

Ident = Annotated[str, StringConstraints(pattern=IDENTIFIER.pattern)]
LevelWord = Literal["blue", "yellow", "orange", "red"]
Direction = Literal["above", "below"]
Seconds = Annotated[float, Field(ge=0, le=366 * 86400)]
# A threshold: a number, a tag name, `factor*tag` or `tag+offset` (the tag's value read
# per device; `max_people+1`: more than the permitted number, for counts compared with ≥).
Bound = float | str
_NUM = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
TAG_REF = re.compile(
    rf"^(?:(?P<factor>{_NUM})\*)?(?P<tag>[A-Za-z][A-Za-z0-9_.-]*)(?:\+(?P<offset>{_NUM}))?$"
)
SITE_STATES = ("operating", "halted", "closed")
# A point with no registered reporting interval is judged as if it reported every 25 s:
# the coal-mine monitoring polling cycle (AQ 6201, ≤ 25 s; secondary), the shortest cycle
# of the standards the packs follow, so an unregistered point is never judged too leniently.
DEFAULT_INTERVAL_S = 25.0


def level_of(word: str) -> Level:
    return Level.parse(word)


def resolve_bound(bound: Bound, tags: Mapping[str, str]) -> float | None:
    """A threshold's value for one device; None when the device lacks the tag or it is not
    a number (the rule is then not bound to that device)."""
    if not isinstance(bound, str):
        return float(bound)
    m = TAG_REF.fullmatch(bound)
    if m is None or m["tag"] not in tags:
        return None
    try:
        value = float(tags[m["tag"]])
    except ValueError:
        return None
    return value * float(m["factor"] or 1.0) + float(m["offset"] or 0.0)


def _check_bound(value: Bound) -> Bound:
    if isinstance(value, str) and TAG_REF.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is neither a number nor a tag reference like 'dp_rated' or '0.2*dp_rated'"
        )
    if isinstance(value, float) and value != value:
        raise ValueError("NaN is not a threshold")
    return value


class Select(BaseModel):
    """Which series a rule applies to; every given field must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    device_kind: Ident | None = None
    point: Ident | None = None
    tags: dict[Ident, str] = {}

    def matches(self, kind: str, point: str | None, tags: Mapping[str, str]) -> bool:
        if self.device_kind is not None and self.device_kind != kind:
            return False
        if self.point is not None and self.point != point:
            return False
        return all(tags.get(k) == v for k, v in self.tags.items())


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Ident
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    source: str = Field(default="", max_length=500, description="where the thresholds come from")
    select: Select = Select()
    enabled: bool = True
    health: bool = Field(default=False, description="a device-health rule, fed by fault readings")
    overrides: dict[Ident, dict[str, Any]] = {}
    enterprises: list[str] = Field(
        default=["*"],
        description='whose devices the rule watches: ["*"] every enterprise (a global rule),'
        " or a list of enterprise ids",
    )

    @field_validator("enterprises")
    @classmethod
    def _scope(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError('name at least one enterprise, or ["*"] for every enterprise')
        if "*" in names:
            if len(names) > 1:
                raise ValueError('"*" already means every enterprise; give it alone')
            return names
        bad = [n for n in names if not IDENTIFIER.fullmatch(n)]
        if bad:
            raise ValueError(f"not enterprise ids: {bad}")
        return sorted(set(names))

    @property
    def scope(self) -> frozenset[str] | None:
        """The enterprises the rule applies to; None: every one."""
        return None if self.enterprises == ["*"] else frozenset(self.enterprises)

    def binds(self, enterprise: str, kind: str, point: str | None, tags: Mapping[str, str]) -> bool:
        """Whether the rule applies to a series (or, with no point, to a device's events)."""
        scope = self.scope
        if scope is not None and enterprise not in scope:
            return False
        return self.select.matches(kind, point, tags)

    @model_validator(mode="after")
    def _check_overrides(self) -> _RuleBase:
        for device, fields in self.overrides.items():
            bad = {"id", "kind", "select", "overrides", "enterprises"} & set(fields)
            if bad:
                raise ValueError(f"override for {device} may not change {sorted(bad)}")
            # Each override must itself give a valid rule; errors name the device.
            try:
                self.for_device(device)
            except ValidationError as exc:
                msgs = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"override for {device}: {msgs}") from None
        return self

    def for_device(self, device: str) -> Any:
        """The rule as it applies to one device (its override merged in)."""
        fields = self.overrides.get(device)
        if not fields:
            return self
        merged = self.model_dump(mode="json", exclude={"overrides"}) | fields
        return type(self).model_validate(merged)


def _levels_map(value: Mapping[Any, Any], what: str) -> None:
    if not value:
        raise ValueError(f"{what} must name at least one of blue, yellow, orange, red")
    for word in value:
        level_of(word)


def _ordered(levels: Mapping[Any, float], *, increasing: bool, what: str) -> None:
    """Numbers must rise (or fall) with the level; equal neighbours are allowed (e.g. a
    return airway whose alarm and power-cut values are both 1.0 % CH4)."""
    ordered = sorted(levels.items(), key=lambda kv: level_of(kv[0]))
    for (lo_w, lo), (hi_w, hi) in itertools.pairwise(ordered):
        if (hi < lo) if increasing else (hi > lo):
            rel = "≥" if increasing else "≤"
            raise ValueError(f"{what}: {hi_w} ({hi}) must be {rel} {lo_w} ({lo})")


class OffHours(BaseModel):
    """When a rule applies: at night (local `start_h` to `end_h`), at weekends, and on the
    listed holidays (the year's 法定节假日 are published each year: add them through the
    API). Judged on the engine's clock tick."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start_h: Annotated[int, Field(ge=0, le=23)] = 22
    end_h: Annotated[int, Field(ge=0, le=23)] = 6
    weekends: bool = True
    holidays: list[date] = []
    utc_offset_h: Annotated[float, Field(ge=-12, le=14)] = 8.0

    def active(self, ms: int) -> bool:
        local = datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=self.utc_offset_h)))
        h = local.hour
        night = (
            (h >= self.start_h or h < self.end_h)
            if self.start_h > self.end_h
            else (self.start_h <= h < self.end_h)
        )
        return night or (self.weekends and local.weekday() >= 5) or local.date() in self.holidays


class ThresholdRule(_RuleBase):
    kind: Literal["threshold"] = "threshold"
    levels: dict[LevelWord, Bound]
    direction: Direction = "above"
    for_s: Seconds | dict[LevelWord, Seconds] = 0.0
    clear: dict[LevelWord, Bound] = {}
    deadband: Annotated[float, Field(ge=0)] | None = None
    clear_for_s: Seconds = 0.0
    site_state: str | list[str] | None = None
    off_hours: OffHours | None = Field(
        default=None, description="apply only at night, at weekends and on holidays"
    )

    @field_validator("levels", "clear")
    @classmethod
    def _bounds(cls, v: dict[str, Bound]) -> dict[str, Bound]:
        for b in v.values():
            _check_bound(b)
        return v

    @field_validator("site_state")
    @classmethod
    def _site_state(cls, v: str | list[str] | None) -> str | list[str] | None:
        return _check_site_state(v)

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdRule:
        _levels_map(self.levels, "levels")
        if self.clear and self.deadband is not None:
            raise ValueError("give either clear or deadband, not both")
        unknown = set(self.clear) - set(self.levels)
        if unknown:
            raise ValueError(f"clear names levels the rule does not have: {sorted(unknown)}")
        if isinstance(self.for_s, dict) and set(self.for_s) - set(self.levels):
            raise ValueError(
                "for_s names levels the rule does not have: "
                f"{sorted(set(self.for_s) - set(self.levels))}"
            )
        numeric = {k: v for k, v in self.levels.items() if not isinstance(v, str)}
        if len(numeric) == len(self.levels):
            check_threshold_numbers(
                self, {k: float(v) for k, v in numeric.items()}, self._numeric_clear()
            )
        return self

    def _numeric_clear(self) -> dict[str, float] | None:
        if any(isinstance(v, str) for v in self.clear.values()):
            return None
        return {k: float(v) for k, v in self.clear.items()}

    def level_for_s(self, word: str) -> float:
        if isinstance(self.for_s, dict):
            return float(self.for_s.get(word, 0.0))  # type: ignore[call-overload]
        return float(self.for_s)


def check_threshold_numbers(
    rule: ThresholdRule, levels: Mapping[Any, float], clear: Mapping[Any, float] | None
) -> None:
    """Validation that needs numbers; run at parse time, or per device for tag thresholds."""
    above = rule.direction == "above"
    _ordered(levels, increasing=above, what="levels")
    for word, c in (clear or {}).items():
        t = levels[word]
        if (c > t) if above else (c < t):
            side = "at or below" if above else "at or above"
            raise ValueError(
                f"clear.{word} ({c}) must be {side} its threshold ({t})"
                f" for direction {rule.direction}"
            )


def _check_site_state(v: str | list[str] | None) -> str | list[str] | None:
    for s in [v] if isinstance(v, str) else (v or []):
        if s not in SITE_STATES:
            raise ValueError(f"unknown site state {s!r}; expected one of {', '.join(SITE_STATES)}")
    return v


def site_states(v: str | list[str] | None) -> frozenset[str] | None:
    if v is None:
        return None
    return frozenset([v] if isinstance(v, str) else v)


class RateRule(_RuleBase):
    """Change per minute over `window_s`, compared with `levels` like a threshold."""

    kind: Literal["rate"] = "rate"
    levels: dict[LevelWord, Bound]
    direction: Direction = "above"
    window_s: Annotated[float, Field(gt=0, le=86400)]
    for_s: Seconds = 0.0
    clear_for_s: Seconds = 0.0

    @field_validator("levels")
    @classmethod
    def _bounds(cls, v: dict[str, Bound]) -> dict[str, Bound]:
        for b in v.values():
            _check_bound(b)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RateRule:
        _levels_map(self.levels, "levels")
        numeric = {k: float(v) for k, v in self.levels.items() if not isinstance(v, str)}
        if len(numeric) == len(self.levels):
            _ordered(numeric, increasing=self.direction == "above", what="levels")
        return self


class AbsentRule(_RuleBase):
    """No reading from a selected point for a while (`signal: silence`), or a point that
    keeps reporting `fault` quality (`signal: fault`); measured on the clock tick against
    the last reading's event time. A level's duration is given in seconds (`levels`) or in
    reporting intervals of the point (`intervals`: the registry's `points.{name}.interval_s`,
    `default_interval_s` when none is registered). A device's own status message acts at
    once: `offline` (silence) or `fault` (fault) raises the rule's lowest level."""

    kind: Literal["absent"] = "absent"
    levels: dict[LevelWord, Annotated[float, Field(gt=0)]] = {}
    intervals: dict[LevelWord, Annotated[float, Field(gt=0, le=1000)]] = {}
    default_interval_s: Annotated[float, Field(gt=0, le=86400)] = DEFAULT_INTERVAL_S
    signal: Literal["silence", "fault"] = "silence"
    health: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> AbsentRule:
        _levels_map({**self.levels, **self.intervals}, "levels or intervals")
        both = set(self.levels) & set(self.intervals)
        if both:
            raise ValueError(f"{sorted(both)} given both in seconds and in intervals")
        _ordered(self.levels, increasing=True, what="levels (seconds)")
        _ordered(self.intervals, increasing=True, what="intervals")
        return self

    def seconds(self, interval_s: float | None) -> dict[str, float]:
        """Each level's duration for a point reporting every `interval_s` seconds. A level
        never comes before a lower one: a point reporting every 10 minutes goes straight
        to orange after 3 missed intervals rather than orange before blue."""
        every = interval_s if interval_s and interval_s > 0 else self.default_interval_s
        raw = {**self.levels, **{w: n * every for w, n in self.intervals.items()}}
        out: dict[str, float] = {}
        floor = 0.0
        for word in ("blue", "yellow", "orange", "red"):
            if word in raw:
                floor = max(floor, raw[word])
                out[word] = floor
        return out


class StuckRule(_RuleBase):
    """Value unchanged within `epsilon`; `levels` are how long (seconds), e.g. {blue: 1800}."""

    kind: Literal["stuck"] = "stuck"
    levels: dict[LevelWord, Annotated[float, Field(gt=0)]]
    epsilon: Annotated[float, Field(ge=0)] = 0.0
    health: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> StuckRule:
        _levels_map(self.levels, "levels")
        _ordered(self.levels, increasing=True, what="levels (seconds)")
        return self


class EventRule(_RuleBase):
    """Count of `event_type` within `window_s` → `levels` (counts)."""

    kind: Literal["event"] = "event"
    event_type: Ident
    levels: dict[LevelWord, Annotated[int, Field(ge=1)]]
    window_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 60.0
    site_state: str | list[str] | None = None
    unanswered_by: Ident | None = Field(
        default=None,
        description="count an event only if no event of this type from the same device"
        " follows within answer_within_s (a spark not extinguished)",
    )
    answer_within_s: Annotated[float, Field(gt=0, le=86400)] = 10.0

    @field_validator("site_state")
    @classmethod
    def _site_state(cls, v: str | list[str] | None) -> str | list[str] | None:
        return _check_site_state(v)

    @model_validator(mode="after")
    def _consistent(self) -> EventRule:
        _levels_map(self.levels, "levels")
        if self.unanswered_by == self.event_type:
            raise ValueError("unanswered_by must differ from event_type")
        _ordered(
            {k: float(v) for k, v in self.levels.items()}, increasing=True, what="levels (counts)"
        )
        return self


class CompositeRule(_RuleBase):
    """Alerts of at least `of_level` from ≥ `count` distinct points of one group within
    `window_s` → a group alert of `level` (the tailings-dam aggregation)."""

    kind: Literal["composite"] = "composite"
    rules: list[Ident] = Field(
        default=[], description="input rule ids; empty = every non-composite rule"
    )
    of_level: LevelWord
    count: Annotated[int, Field(ge=1, le=1000)]
    level: LevelWord
    window_s: Annotated[float, Field(gt=0, le=7 * 86400)]
    group_by: list[Ident] = Field(default=["site"], min_length=1)
    distinct: list[Ident] = Field(
        default=[],
        description="count distinct values of these tags (sub-groups) instead of points:"
        " a group of groups, e.g. items of a dam",
    )

    @field_validator("group_by", "distinct", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistent(self) -> CompositeRule:
        if self.overrides:
            raise ValueError(
                "composite rules act on groups, not devices: overrides are not allowed"
            )
        if self.id in self.rules:
            raise ValueError("a composite rule cannot take its own alerts as input")
        return self


class CalibrationRule(_RuleBase):
    """A detector whose calibration is due: the device tag `due_tag` holds the due date
    (ISO 8601 date or date-time; a date without offset is read in `utc_offset_h`); once
    the clock passes it the device gets one alert of `level`. A device-level alert that is
    not a health alert (it does not mark the device's hazard alerts unreliable)."""

    kind: Literal["calibration"] = "calibration"
    due_tag: Ident = "calibration_due"
    level: LevelWord = "blue"
    utc_offset_h: Annotated[float, Field(ge=-12, le=14)] = 8.0

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationRule:
        if self.overrides:
            raise ValueError("the due date is a device tag: overrides are not needed")
        return self


Rule: TypeAlias = Annotated[
    ThresholdRule | RateRule | AbsentRule | StuckRule | EventRule | CompositeRule | CalibrationRule,
    Field(discriminator="kind"),
]
RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule, config=ConfigDict(title="rule"))
KINDS = ("threshold", "rate", "absent", "stuck", "event", "composite", "calibration")


def parse_rule(obj: dict[str, Any]) -> Rule:
    """A rule from JSON/YAML data; raises `pydantic.ValidationError` naming each problem."""
    return RULE_ADAPTER.validate_python(obj)


def rule_json(rule: Rule) -> dict[str, Any]:
    """The stored and published form; defaults left out so a rule reads like its YAML."""
    out: dict[str, Any] = rule.model_dump(mode="json", exclude_defaults=True)
    out["kind"] = rule.kind
    return out
