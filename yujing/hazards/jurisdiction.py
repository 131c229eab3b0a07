"""Who acts on a hazard: the actor's role and, for a supervisor, the level of their
jurisdiction (county, city, province), decided in one place (`tier_of_divisions`)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from yujing.registry import divisions


class Tier(enum.IntEnum):
    """Levels of the jurisdiction ladder a hazard or an alert escalates along."""

    ENTERPRISE = 0
    COUNTY = 1
    CITY = 2
    PROVINCE = 3

    @property
    def word(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> Tier:
        try:
            return cls[word.upper()]
        except KeyError:
            raise ValueError(f"unknown level {word!r}; expected county, city or province") from None


def tier_of_division(code: str) -> Tier:
    """GB/T 2260: `xx0000` is a province, `xxxx00` a city (地级), anything else a county."""
    return Tier.parse(divisions.level_of(code))


def tier_of_divisions(codes: Iterable[str] | None, *, everything: bool) -> Tier:
    """A supervisor's level: the highest of their token's division codes (a token scoped to
    320500 is a city's). A token without a division, enterprise or park restriction (`*`, or
    sectors only) is provincial; one scoped to enterprises or parks only is county level."""
    if everything:
        return Tier.PROVINCE
    tiers = [tier_of_division(c) for c in codes or ()]
    return max(tiers, default=Tier.COUNTY)


@dataclass(frozen=True, slots=True)
class Actor:
    """The person taking a step: name, role word (viewer, supervisor, operator, admin or
    `system`) and, for a supervisor, their level."""

    name: str
    role: str
    tier: Tier | None = None

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


SYSTEM = Actor("yujing", "system")
