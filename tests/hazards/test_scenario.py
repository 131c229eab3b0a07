"""The `hazard-loop` scenario end to end against a running yujing (embedded): alarms → a
proposed hazard → a sign-off sent back; a late rectification that escalates. The checker
compares every step, and every refusal, with the scenario's ground truth."""

from __future__ import annotations

import aiomqtt
import pytest

from yujing.simulators.checker import check_scenario
from yujing.simulators.scenario import load_scenario
from yujing.testing.flow import running, settings_for_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_hazard_loop_runs_clean(
    database_url: str, mqtt_broker: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YJ_HAZARD_WATCH_EVERY_S", "0.5")  # the watch's period, not a timing
    scenario = load_scenario("hazard-loop", namespace="e")
    settings = settings_for_test()
    lines: list[str] = []
    try:
        async with running(database_url, mqtt_broker, settings) as flow:
            report = await check_scenario(
                scenario, f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}", flow.base_url,
                settings.admin_token, speed=20.0, say=lines.append,
            )  # fmt: skip
    finally:
        # The broker is shared by the session: leave no retained device status behind.
        async with aiomqtt.Client(*mqtt_broker) as client:
            for d in scenario.fleet.devices:
                topic = f"yj/{d.enterprise}/{d.device}/status"
                await client.publish(topic, b"", qos=1, retain=True)
    assert report.ok, report.render()
    assert [name for name, _ in report.hazards] == ["repeated-ch4", "late-ventilation"]
    assert report.hazards[1][1][3:5] == ["overdue", "escalated"]
