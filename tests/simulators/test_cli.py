"""`yujing simulate` as a person runs it, without a broker: dumping a scenario and
refusing a speed the scenario's rules do not allow."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from yujing.simulators.cli import simulate


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(simulate)
    return app


def test_dump_writes_every_message_with_its_expected_dead_letter(tmp_path: Path) -> None:
    out = tmp_path / "faults.jsonl"
    result = CliRunner().invoke(_app(), ["--scenario", "input-faults", "--dump", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    reasons = [x["expect_dead_letter"] for x in lines if "expect_dead_letter" in x]
    assert len(reasons) == 20 and "bad_topic" in reasons
    assert any("payload_b64" in x for x in lines)  # the byte-order-mark form is not UTF-8
    assert [x["at_ms"] for x in lines] == sorted(x["at_ms"] for x in lines)


def test_check_refuses_a_speed_the_rules_do_not_allow() -> None:
    result = CliRunner().invoke(
        _app(),
        [
            "--scenario",
            "sensor-silent",
            "--check",
            "--speed",
            "10",
            "--api-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2
    assert "runs at most at 1.00x" in result.output


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_list_names_every_scenario_with_its_speed_cap() -> None:
    from yujing.simulators.scenario import builtin_scenarios

    result = CliRunner().invoke(_app(), ["--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(builtin_scenarios())
    faults = next(x for x in lines if x.startswith("input-faults"))
    assert "at most 4x" in faults
    assert "any speed" in next(x for x in lines if x.startswith("tailings-rise"))


def test_every_scenario_declares_its_speed_cap_within_what_its_rules_allow() -> None:
    from yujing.simulators.scenario import builtin_scenarios, load_scenario

    for path in builtin_scenarios():
        sc = load_scenario(path)
        assert "max_speed" in sc.raw, path.name
        derived = sc.derived_max_speed
        if derived is not None:
            assert sc.declared_max_speed is not None and sc.declared_max_speed <= derived


def test_an_unreachable_broker_stops_the_run_naming_the_url() -> None:
    url = f"mqtt://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(_app(), ["--scenario", "coal-methane", "--mqtt-url", url])
    assert result.exit_code == 2
    assert f"no MQTT broker at {url}" in result.output


def test_simulate_finds_the_ports_yujing_up_chose(tmp_path: Path) -> None:
    import os

    from yujing import endpoints

    mqtt = f"mqtt://127.0.0.1:{_closed_port()}"
    endpoints.write(tmp_path, "http://127.0.0.1:8123", mqtt)  # as `yujing up` does
    env = {"YJ_DATA_DIR": str(tmp_path), "YJ_MQTT_URL": "", "YJ_API_URL": ""}
    result = CliRunner().invoke(_app(), ["--scenario", "coal-methane"], env=env)
    assert f"no MQTT broker at {mqtt}" in result.output, result.output
    assert endpoints.read(tmp_path) == endpoints.Endpoints(
        "http://127.0.0.1:8123", mqtt, os.getpid()
    )
    (tmp_path / endpoints.FILE).write_text(
        '{"api_url": "http://x", "mqtt_url": "mqtt://x:1", "pid": 999999999}', "utf-8"
    )
    assert endpoints.read(tmp_path) is None  # its process is gone


def test_a_second_yujing_up_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    from yujing import endpoints
    from yujing.cli import app

    with endpoints.hold(tmp_path):
        result = CliRunner().invoke(
            app, ["up", "--no-simulate"], env={"YJ_DATA_DIR": str(tmp_path)}
        )
    assert result.exit_code == 1
    assert "is in use by yujing" in result.output and "YJ_DATA_DIR" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_repeated_warnings_are_rate_limited() -> None:
    import logging

    from yujing.cli import RepeatFilter

    now = [0.0]
    gate = RepeatFilter(every_s=60, clock=lambda: now[0])

    def warn(url: str) -> logging.LogRecord:
        return logging.LogRecord("w", logging.WARNING, "", 0, "webhook %s failed", (url,), None)

    passed = []
    for t in (0, 1, 2, 30, 61, 62):
        now[0] = t
        record = warn("http://down")
        if gate.filter(record):
            passed.append((t, record.getMessage()))
    assert passed == [
        (0, "webhook http://down failed"),
        (61, "webhook http://down failed (and 3 like it in the last 60 s)"),
    ]
    error = logging.LogRecord("w", logging.ERROR, "", 0, "boom", None, None)
    assert gate.filter(error) and gate.filter(error)  # errors always pass
