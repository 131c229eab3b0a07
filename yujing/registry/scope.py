"""Token scopes, and the one place that decides what a scope may see.

A scope restricts up to four dimensions — division codes (a city covers its counties),
sectors, chemical parks and enterprise ids; an enterprise is in scope when it satisfies every
dimension that is restricted (so `divisions=[320506], sectors=[hazardous_chemicals]` is "the
chemical plants of 吴中区"). An unrestricted scope (`*`) sees everything.

`resolve` turns a scope into the set of enterprise ids it covers, from the register; every
route, feed and figure filters by that set, so jurisdictions need nothing of their own
downstream. A scope that names only enterprises resolves to exactly those ids, registered or
not (the enterprise-list tokens of before the register keep working).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yujing.db import Conn
from yujing.registry import divisions


@dataclass(frozen=True, slots=True)
class Scope:
    enterprises: frozenset[str] | None = None
    divisions: frozenset[str] | None = None
    sectors: frozenset[str] | None = None
    parks: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        enterprises: Iterable[str] | None = None,
        divisions: Iterable[str] | None = None,
        sectors: Iterable[str] | None = None,
        parks: Iterable[str] | None = None,
    ) -> Scope:
        """From stored or requested lists, where `None`, `[]` or `["*"]` mean "any"."""

        def dim(values: Iterable[str] | None) -> frozenset[str] | None:
            got = frozenset(values or ())
            return None if not got or "*" in got else got

        return cls(dim(enterprises), dim(divisions), dim(sectors), dim(parks))

    @property
    def is_global(self) -> bool:
        return not (self.enterprises or self.divisions or self.sectors or self.parks)

    @property
    def registered_only(self) -> bool:
        """Restricted by something only the register knows (division, sector, park)."""
        return bool(self.divisions or self.sectors or self.parks)

    def within(self, outer: Scope) -> bool:
        """Whether every enterprise this scope can see is one `outer` can see (by definition,
        not by today's register): each dimension `outer` restricts is restricted here too,
        to a subset."""
        if outer.enterprises is not None and (
            self.enterprises is None or not self.enterprises <= outer.enterprises
        ):
            return False
        if outer.divisions is not None and (
            self.divisions is None
            or not all(any(divisions.covers(o, d) for o in outer.divisions) for d in self.divisions)
        ):
            return False
        for mine, theirs in ((self.sectors, outer.sectors), (self.parks, outer.parks)):
            if theirs is not None and (mine is None or not mine <= theirs):
                return False
        return True

    def public(self) -> dict[str, list[str]]:
        def show(v: frozenset[str] | None) -> list[str]:
            return ["*"] if v is None else sorted(v)

        return {
            "enterprises": show(self.enterprises), "divisions": show(self.divisions),
            "sectors": show(self.sectors), "parks": show(self.parks),
        }  # fmt: skip


GLOBAL = Scope()


def _patterns(codes: frozenset[str] | None) -> list[str] | None:
    return None if codes is None else [divisions.prefix(c) + "%" for c in sorted(codes)]


async def resolve(conn: Conn, scope: Scope) -> frozenset[str] | None:
    """The enterprise ids a scope covers: None = every enterprise."""
    if scope.is_global:
        return None
    if not scope.registered_only:
        assert scope.enterprises is not None
        return scope.enterprises
    rows = await conn.fetch(
        "SELECT id FROM enterprises WHERE ($1::text[] IS NULL OR id = ANY($1))"
        " AND ($2::text[] IS NULL OR division LIKE ANY($2))"
        " AND ($3::text[] IS NULL OR sectors && $3)"
        " AND ($4::text[] IS NULL OR park = ANY($4))",
        None if scope.enterprises is None else sorted(scope.enterprises),
        _patterns(scope.divisions),
        None if scope.sectors is None else sorted(scope.sectors),
        None if scope.parks is None else sorted(scope.parks),
    )
    return frozenset(r["id"] for r in rows)


def admits(
    scope: Scope, enterprise: str, division: str, sectors: Iterable[str], park: str | None
) -> bool:
    """Whether an enterprise with these facts lies in the scope (for writes: a scoped admin
    may register or move an enterprise only inside its own jurisdiction)."""
    if scope.enterprises is not None and enterprise not in scope.enterprises:
        return False
    if scope.divisions is not None and not any(
        divisions.covers(d, division) for d in scope.divisions
    ):
        return False
    if scope.sectors is not None and not scope.sectors & set(sectors):
        return False
    return scope.parks is None or park in scope.parks
