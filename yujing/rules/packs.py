"""The default rule packs: YAML data files in `yujing/rules/packs/`, each threshold with
its source cited beside it. Loaded into the rule store on first start."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from yujing.rules.model import Rule, parse_rule


def pack_names() -> list[str]:
    folder = resources.files("yujing.rules").joinpath("packs")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))


def pack_rules(name: str) -> list[Rule]:
    text = resources.files("yujing.rules").joinpath("packs", name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text) or {}
    return [parse_rule(obj) for obj in data.get("rules", [])]


def default_rules() -> list[Rule]:
    rules = [r for name in pack_names() for r in pack_rules(name)]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise ValueError(f"rule id {r.id} appears twice in the default packs")
        seen.add(r.id)
    return rules
