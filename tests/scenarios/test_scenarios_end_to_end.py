"""Simulator scenarios with their ground truth, run against a running yujing: embedded
(in-process bus) and distributed (a runtime per stage over Kafka). A report must be clean:
no miss, no false alert, every dead letter with its reason."""

from __future__ import annotations

import pytest

from yujing.config import Settings
from yujing.simulators.checker import check_scenario
from yujing.simulators.scenario import builtin_scenarios, load_scenario
from yujing.testing.flow import running, settings_for_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Accelerated where the rules allow: event time runs `speed` times faster than wall time.
SPEED = 20.0


def scenario_path(name: str) -> str:
    [path] = [p for p in builtin_scenarios() if p.stem == name]
    return str(path)


async def run_clean(
    name: str,
    speed: float,
    database_url: str,
    mqtt: tuple[str, int],
    settings: Settings,
    *,
    distributed: bool = False,
) -> None:
    scenario = load_scenario(scenario_path(name), namespace="d" if distributed else "e")
    speed = min(speed, scenario.max_speed or speed)
    async with running(database_url, mqtt, settings, distributed=distributed) as flow:
        report = await check_scenario(
            scenario, f"mqtt://{mqtt[0]}:{mqtt[1]}", flow.base_url, settings.admin_token,
            speed=speed, say=lambda _: None,
        )  # fmt: skip
    assert report.ok, report.render()


# input-faults runs slower: its clock-skew faults sit just inside the 5-minute tolerance,
# and accelerated event time would push them over it. tank-overfill: new device kinds
# through the registry and a group alert (the installation roll-up) into the alert store.
@pytest.mark.parametrize(
    ("name", "speed"), [("coal-methane", SPEED), ("input-faults", 4.0), ("tank-overfill", SPEED)]
)
async def test_scenario_embedded(
    name: str, speed: float, database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    await run_clean(name, speed, database_url, mqtt_broker, settings_for_test())


# tank-overfill: its installation roll-up through `yj.groups` and the group owner.
@pytest.mark.parametrize("name", ["coal-methane", "tank-overfill"])
async def test_scenario_distributed(
    name: str, database_url: str, mqtt_broker: tuple[str, int], kafka_bootstrap: str
) -> None:
    settings = settings_for_test(
        kafka_bootstrap=kafka_bootstrap, kafka_partitions=3, kafka_topic_prefix=f"scn-{name}-"
    )
    await run_clean(name, SPEED, database_url, mqtt_broker, settings, distributed=True)
