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
