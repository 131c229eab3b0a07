"""The one rule for times and query strings at the API: every instant is RFC 3339 with an
offset or epoch milliseconds, and a query parameter a route does not declare is refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, Field, WithJsonSchema

from yujing.api.problems import Problem

EXAMPLE = "2026-12-01T08:00:00+08:00"
_EXAMPLES = f"e.g. {EXAMPLE}, 2026-12-01T00:00:00Z or epoch milliseconds 1764547200000"
# A `+` that arrived as a space: `?since=2026-12-01T08:00:00 08:00` (the `+` not encoded).
_SPACE_FOR_PLUS = re.compile(r"[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)? \d\d:?\d\d$")
_EPOCH_MS = re.compile(r"^-?\d{1,15}$")
# Years outside this range cannot be stored or compared without overflow.
_MIN, _MAX = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def parse_instant(value: Any) -> datetime:
    """An aware datetime from RFC 3339 text with an offset, or from epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"a time needs a UTC offset ({_EXAMPLES})")
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"a time is RFC 3339 text with an offset or epoch milliseconds ({_EXAMPLES})"
        )
    text = str(value).strip()
    if _EPOCH_MS.fullmatch(text):
        try:
            at = datetime.fromtimestamp(int(text) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch milliseconds out of range ({_EXAMPLES})") from None
    else:
        if _SPACE_FOR_PLUS.search(text):
            raise ValueError(
                f"{text!r}: the '+' of the UTC offset arrived as a space; in a query string"
                f" send it as %2B (since=2026-12-01T08:00:00%2B08:00) or use Z"
            )
        try:
            at = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{text!r} is not an RFC 3339 time ({_EXAMPLES})") from None
        if at.tzinfo is None or "T" not in text.upper():
            raise ValueError(f"{text!r} has no UTC offset; add one ({_EXAMPLES})")
    if not _MIN <= at < _MAX:
        raise ValueError(f"{text!r} is outside 1970..9000")
    return at


Instant = Annotated[
    datetime,
    BeforeValidator(parse_instant),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "examples": [EXAMPLE]},
                {"type": "integer", "description": "epoch milliseconds"},
            ],
            "description": "RFC 3339 with a UTC offset (Z or +08:00), or epoch milliseconds",
        }
    ),
    Field(description="RFC 3339 with a UTC offset (Z or +08:00), or epoch milliseconds"),
]


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise Problem(
            422, "Invalid request", "since must be before until", errors=[
                {"loc": ["query", "since"], "msg": "since must be before until",
                 "type": "range"}],
        )  # fmt: skip


_DECLARED: dict[int, frozenset[str]] = {}


def _declared(route: APIRoute) -> frozenset[str]:
    known = _DECLARED.get(id(route))
    if known is not None:
        return known
    names: set[str] = set()
    todo: list[Dependant] = [route.dependant]
    while todo:
        dependant = todo.pop()
        names.update(p.alias for p in dependant.query_params)
        todo.extend(dependant.dependencies)
    _DECLARED[id(route)] = frozenset(names)
    return _DECLARED[id(route)]


async def known_query(request: Request) -> None:
    """Refuse a query parameter the route does not declare (a typo like `level=red` for
    `min_level=red` would otherwise be silently ignored)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _declared(route)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        raise Problem(
            422, "Invalid request",
            f"unknown query parameter(s): {', '.join(unknown)}; this endpoint takes: {takes}",
            errors=[{"loc": ["query", name], "msg": "unknown query parameter",
                     "type": "unknown_parameter"} for name in unknown],
        )  # fmt: skip
