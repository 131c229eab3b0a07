"""Rule validation, and the rule store on a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from yujing.rules import store
from yujing.rules.model import parse_rule, rule_json
from yujing.rules.packs import default_rules

BASE: dict[str, Any] = {
    "id": "r1",
    "kind": "threshold",
    "select": {"point": "ch4"},
    "levels": {"orange": 1.0},
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"levels": {"orange": 2.0, "red": 1.0}}, "red (1.0) must be ≥ orange (2.0)"),
        (
            {"direction": "below", "levels": {"orange": 1.0, "red": 2.0}},
            "red (2.0) must be ≤ orange (1.0)",
        ),
        ({"clear": {"orange": 1.5}}, "clear.orange (1.5) must be at or below"),
        ({"clear": {"red": 0.5}}, "clear names levels the rule does not have"),
        ({"clear": {"orange": 0.5}, "deadband": 0.1}, "either clear or deadband"),
        ({"levels": {}}, "at least one of blue, yellow, orange, red"),
        ({"levels": {"amber": 1.0}}, "Input should be 'blue', 'yellow', 'orange' or 'red'"),
        ({"id": "no spaces"}, "String should match pattern"),
        ({"levels": {"orange": "not a tag!"}}, "neither a number nor a tag reference"),
        (
            {"overrides": {"d1": {"levels": {"orange": 1.0}, "clear": {"orange": 3.0}}}},
            "override for d1",
        ),
        ({"overrides": {"d1": {"kind": "rate"}}}, "may not change ['kind']"),
        ({"site_state": "asleep"}, "unknown site state"),
        ({"frobnicate": 1}, "Extra inputs are not permitted"),
    ],
)
def test_nonsense_is_refused_with_a_clear_message(change: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_rule(BASE | change)
    assert says in str(err.value)


def test_other_kinds_validate() -> None:
    with pytest.raises(ValidationError, match=r"orange \(90\.0\) must be ≥ blue"):
        parse_rule({"id": "a", "kind": "absent", "levels": {"blue": 300, "orange": 90}})
    with pytest.raises(ValidationError, match="own alerts"):
        parse_rule({"id": "c", "kind": "composite", "rules": ["c"], "of_level": "blue", "count": 2,
                    "level": "red", "window_s": 60})  # fmt: skip
    rule = parse_rule({"id": "c", "kind": "composite", "group_by": "dam", "of_level": "blue",
                       "count": 2, "level": "red", "window_s": 60})  # fmt: skip
    assert rule_json(rule)["group_by"] == ["dam"]


def test_rule_json_round_trips_every_default_rule() -> None:
    for rule in default_rules():
        assert parse_rule(rule_json(rule)) == rule


@pytest.mark.integration
async def test_packs_load_on_first_start_only(pool: asyncpg.Pool) -> None:
    await store.ensure_default_rules(pool)
    loaded = await store.load_rules(pool)
    assert len(loaded) == len(default_rules()) and {v for _, v in loaded} == {1}
    await store.delete_rule(pool, "coal-face-ch4", "op")
    await store.ensure_default_rules(pool)  # a second start does not bring it back
    assert "coal-face-ch4" not in {r.id for r, _ in await store.load_rules(pool)}


@pytest.mark.integration
async def test_versions_only_go_up(pool: asyncpg.Pool) -> None:
    rule = parse_rule(BASE)
    assert (await store.create_rule(pool, rule, "a")).version == 1
    with pytest.raises(store.RuleExists):
        await store.create_rule(pool, rule, "a")
    assert (await store.update_rule(pool, rule, "b")).version == 2
    with pytest.raises(store.VersionConflict):
        await store.update_rule(pool, rule, "b", expected_version=1)
    assert await store.delete_rule(pool, "r1", "c") == 3
    assert (await store.create_rule(pool, rule, "d")).version == 4
    disabled = parse_rule(BASE | {"enabled": False})
    await store.update_rule(pool, disabled, "e")
    assert await store.load_rules(pool) == []
    history = await store.rule_versions(pool, "r1")
    assert [(h["version"], h["deleted"], h["changed_by"]) for h in history] == [
        (1, False, "a"), (2, False, "b"), (3, True, "c"), (4, False, "d"), (5, False, "e"),
    ]  # fmt: skip
