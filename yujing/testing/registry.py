"""Enterprise records for tests, simulators and benchmarks: valid credit codes and divisions."""

from __future__ import annotations

from typing import Any

from stdnum.cn import uscc


def credit_code(division: str, n: int) -> str:
    """A unified social credit code that passes GB 32100-2015's check: registered by market
    regulation (9), an enterprise (1), in `division`, serial `n`."""
    base = f"91{division}{n:09d}"
    return base + str(uscc.calc_check_digit(base))


def enterprise_record(
    division: str, n: int, *, sectors: tuple[str, ...] = ("hazardous_chemicals",), **extra: Any
) -> dict[str, Any]:
    """A `PUT /enterprises/{id}` body."""
    record: dict[str, Any] = {
        "name": f"测试化工有限公司{n}",
        "uscc": credit_code(division, n),
        "division": division,
        "sectors": list(sectors),
        "supervision_class": "B",
    }
    record.update(extra)
    return record
