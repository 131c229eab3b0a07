"""Simulator scenarios with their ground truth, run against a running yujing: embedded
(in-process bus) and distributed (a runtime per stage over Kafka). A report must be clean:
no miss, no false alert, every dead letter with its reason."""

from __future__ import annotations

import pytest

from yujing.simulators.checker import check_scenario
from yujing.simulators.scenario import builtin_scenarios, load_scenario
from yujing.testing.flow import running, settings_for_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Accelerated where the rules allow: event time runs `speed` times faster than wall time.
SPEED = 20.0


def scenario_path(name: str) -> str:
    [path] = [p for p in builtin_scenarios() if p.stem == name]
    return str(path)


# input-faults runs slower: its clock-skew faults sit just inside the 5-minute tolerance,
# and accelerated event time would push them over it.
@pytest.mark.parametrize(("name", "speed"), [("coal-methane", SPEED), ("input-faults", 4.0)])
async def test_scenario_embedded(
    name: str, speed: float, database_url: str, mqtt_broker: tuple[str, int]
) -> None:
    scenario = load_scenario(scenario_path(name), namespace="emb")
    speed = min(speed, scenario.max_speed or speed)
    settings = settings_for_test()
    async with running(database_url, mqtt_broker, settings) as flow:
        mqtt_url = f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}"
        report = await check_scenario(
            scenario, mqtt_url, flow.base_url, settings.admin_token, speed=speed,
            say=lambda _: None,
        )  # fmt: skip
    assert report.ok, report.render()


async def test_scenario_distributed(
    database_url: str, mqtt_broker: tuple[str, int], kafka_bootstrap: str
) -> None:
    scenario = load_scenario(scenario_path("coal-methane"), namespace="dist")
    speed = min(SPEED, scenario.max_speed or SPEED)
    settings = settings_for_test(
        kafka_bootstrap=kafka_bootstrap, kafka_partitions=3, kafka_topic_prefix="scn-"
    )
    async with running(database_url, mqtt_broker, settings, distributed=True) as flow:
        mqtt_url = f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}"
        report = await check_scenario(
            scenario, mqtt_url, flow.base_url, settings.admin_token, speed=speed,
            say=lambda _: None,
        )  # fmt: skip
    assert report.ok, report.render()
