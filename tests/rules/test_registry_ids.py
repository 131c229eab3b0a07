"""Devices carrying registry ids: the engine maps them by uid, and a new revision of the
record (a changed location, kind or tags) rebinds their rules."""

from __future__ import annotations

from msgspec.structs import replace

from yujing.rules.engine import Engine
from yujing.rules.model import parse_rule
from yujing.testing.rules import batch, gas

RULES = [
    (parse_rule({"id": "intake-ch4", "kind": "threshold", "levels": {"orange": 0.5},
                 "select": {"point": "ch4", "tags": {"location": "intake_airway"}}}), 1),
    (parse_rule({"id": "face-ch4", "kind": "threshold", "levels": {"orange": 1.0},
                 "select": {"point": "ch4", "tags": {"location": "coal_face"}}}), 1),
]  # fmt: skip


def test_a_new_revision_rebinds_the_device() -> None:
    engine = Engine(RULES)
    at_face = replace(gas("d7", location="coal_face"), uid=42, rev=1)
    assert engine.on_batch(batch([(at_face, "ch4", 1000, 0.7)])) == []
    # The detector is moved to the intake airway: the registry bumps the revision.
    moved = replace(gas("d7", location="intake_airway"), uid=42, rev=2)
    [t] = engine.on_batch(batch([(moved, "ch4", 2000, 0.7)]))
    assert (t.rule_id, t.to_level, t.key) == ("intake-ch4", 3, "e1/d7/ch4/intake-ch4")
    assert len(engine.series) == 1  # the same series, bound to another rule


def test_uids_and_names_address_the_same_devices() -> None:
    engine = Engine(RULES)
    named = gas("d1", location="coal_face")
    assert engine.on_batch(batch([(named, "ch4", 1000, 1.2)]))[0].to_level == 3
    with_id = replace(named, uid=9, rev=1)
    # Same device, now with its registry id: no new series, no second raise.
    assert engine.on_batch(batch([(with_id, "ch4", 2000, 1.3)])) == []
    assert len(engine.series) == 1
    assert engine.on_batch(batch([(with_id, "ch4", 3000, 0.2)]))[0].to_level == 0
