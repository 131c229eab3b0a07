"""GB/T 2260 administrative divisions: a 6-digit code names a province (`xx0000`), a
prefecture-level city (`xxxx00`) or a county-level division; the table ships with yujing
(`divisions.csv`, its source named in its header) and nothing is fetched at run time."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Level = Literal["province", "city", "county"]
CODE = re.compile(r"^[1-9][0-9]{5}$")
# Digits of a code that name its division at each level (320506 → 32, 3205, 320506).
DIGITS: dict[str, int] = {"province": 2, "city": 4, "county": 6}


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    level: Level

    @property
    def prefix(self) -> str:
        """What every code under this division starts with."""
        return prefix(self.code)


def prefix(code: str) -> str:
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def level_of(code: str) -> Level:
    return "province" if code.endswith("0000") else "city" if code.endswith("00") else "county"


@cache
def table() -> dict[str, Division]:
    text = resources.files("yujing.registry").joinpath("divisions.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {r["code"]: Division(r["code"], r["name"], level_of(r["code"])) for r in rows}


def get(code: str) -> Division | None:
    return table().get(code)


@cache
def chain(code: str) -> list[Division]:
    """Province, city and county of a code, highest first (those that exist in the table)."""
    found = [table().get(code[:2] + "0000"), table().get(code[:4] + "00"), table().get(code)]
    out: list[Division] = []
    for d in found:
        if d is not None and d not in out:
            out.append(d)
    return out


def covers(outer: str, code: str) -> bool:
    """Whether `code` lies in division `outer` (a city covers every county below it)."""
    return code.startswith(prefix(outer))


@cache
def full_name(code: str) -> str:
    """江苏省苏州市吴中区; a municipality's `市辖区` level is left out."""
    return "".join(d.name for d in chain(code) if d.name not in ("市辖区", "县"))
