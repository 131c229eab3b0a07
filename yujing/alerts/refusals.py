"""Finding the rows the database refuses: a failing write is split in halves until the
refused rows stand alone, so one bad row is dead-lettered and the rest stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

# SQLSTATE classes of an error in the data of a row (22 data exception, 23 integrity
# constraint, 54 program limit such as an oversized value), as opposed to a connection or
# server trouble that a retry of the whole batch may cure.
_ROW_CLASSES = ("22", "23", "54")


def refused_by_row(exc: BaseException) -> bool:
    """True when `exc` is about the data written, not about the database being reachable."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _ROW_CLASSES
    # asyncpg's client-side encoding error (e.g. an int beyond int32 for an integer column,
    # a subclass of ValueError), or a value Python cannot turn into a column's type.
    if isinstance(exc, asyncpg.InterfaceError):
        return isinstance(exc, ValueError)
    return isinstance(exc, ValueError | OverflowError)


def describe(exc: BaseException) -> str:
    return f"not storable: {type(exc).__name__}: {exc}"[:1000]


async def split_refused(
    n: int, write: Callable[[int, int], Awaitable[None]], lo: int = 0
) -> list[tuple[int, BaseException]]:
    """Writes rows [lo, lo+n) with `write(lo, hi)`, each call all-or-nothing; returns the
    index and error of every row refused on its own. Other errors propagate."""
    if n == 0:
        return []
    try:
        await write(lo, lo + n)
        return []
    except Exception as exc:
        if not refused_by_row(exc):
            raise
        if n == 1:
            return [(lo, exc)]
    half = n // 2
    return [
        *await split_refused(half, write, lo),
        *await split_refused(n - half, write, lo + half),
    ]
