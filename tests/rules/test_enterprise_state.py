"""An enterprise's state gates its sites' rules: halting it (the register) changes which
rules apply at once, and a site keeps its own stricter state."""

from __future__ import annotations

from yujing.ingest.batch import DeviceInfo, Event
from yujing.registry.sectors import effective_state
from yujing.rules.engine import Engine
from yujing.rules.packs import default_rules

T0 = 1_763_856_000_000
SEAL = DeviceInfo("e1", "seal-1", "electronic_seal", "mine-9", {"position": "main_shaft"})
OTHER_SITE = DeviceInfo("e1", "seal-2", "electronic_seal", "mine-10", {"position": "main_shaft"})


def levels(got: list) -> list[tuple[str, str | None, int]]:  # type: ignore[type-arg]
    return [(t.rule_id, t.device, t.to_level) for t in got]


def test_the_stricter_of_site_and_enterprise_state_applies() -> None:
    assert effective_state("halted", "operating") == "halted"
    assert effective_state("operating", "halted") == "halted"
    assert effective_state("closed", "halted") == "closed"
    assert effective_state(None, None) == "operating"


def test_halting_an_enterprise_halts_every_site_without_a_restart() -> None:
    engine = Engine([(r, 1) for r in default_rules() if r.id == "seal-person-in"])
    assert engine.on_events([Event(SEAL, T0, "person_in", 1)]) == []
    engine.set_enterprise_state("e1", "halted")
    got = engine.on_events(
        [Event(SEAL, T0 + 1, "person_in", 2), Event(OTHER_SITE, T0 + 2, "person_in", 1)]
    )
    assert levels(got) == [("seal-person-in", "seal-1", 4), ("seal-person-in", "seal-2", 4)]
    # back to operating: a site halted on its own stays halted
    engine.set_site_state("e1", "mine-10", "halted")
    engine.set_enterprise_state("e1", "operating")
    assert engine.state_of("e1", "mine-9") == "operating"
    assert engine.state_of("e1", "mine-10") == "halted"
    assert engine.state_of("e1", "never-seen") == "operating"
    engine.set_enterprise_state("e1", "closed")
    assert engine.state_of("e1", "never-seen") == "closed"
