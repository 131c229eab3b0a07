"""The interface every rule kind implements (`Kind`), and what the engine hands a kind:
a batch of readings (`Readings`), the clock's scope (`Owned`), and the series a snapshot
covers (`Part`, `Restored`).

The engine owns the series (device, point) and the order of outputs; a kind owns its rules'
state and the format that state takes in a snapshot. See README.md, "Rule kinds".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from yujing.ingest.batch import DeviceInfo, Event, ReadingBatch, Status
from yujing.rules.emit import RuleEntry
from yujing.rules.model import Rule
from yujing.rules.series import B, Runs
from yujing.rules.transition import Transition

# What an unbound rule leaves for its next version (levels, keyed as the kind likes).
Carried = dict[Any, Any]
# Transitions, each with the arrival index of its deciding input (for the canonical order).
Indexed = list[tuple[int, Transition]]


@dataclass(frozen=True, slots=True)
class Readings:
    """One batch of readings as the series kinds see it."""

    sid: npt.NDArray[np.intp]
    batch: ReadingBatch
    fresh: B  # not late
    usable: B  # not late, quality ok, a value
    runs: Runs  # how the readings group into series


@dataclass(frozen=True, slots=True)
class Owned:
    """The input partitions the engine owns now (None: all), as a set and as an array."""

    partitions: Collection[int] | None
    array: npt.NDArray[np.int32] | None

    @classmethod
    def of(cls, partitions: Collection[int] | None) -> Owned:
        arr = None if partitions is None else np.fromiter(partitions, np.int32)
        return cls(partitions, arr)

    def has(self, partition: int) -> bool:
        return self.partitions is None or partition in self.partitions


@dataclass(frozen=True, slots=True)
class Part:
    """What one snapshot covers: the series of `sids` (in snapshot order; `pos[sid]` is a
    series' position there, -1 when not in it), the devices of `devices` (engine device
    indices), and, for kinds keyed by device name, the input `partition` (None: all).
    `full`: a whole partition (else a delta: only the devices changed since the last
    snapshot, which replaces their state when loaded over the earlier ones)."""

    partition: int | None
    sids: npt.NDArray[np.intp]
    pos: npt.NDArray[np.int64]
    devices: npt.NDArray[np.intp]
    full: bool


@dataclass(frozen=True, slots=True)
class Restored:
    """The series of one snapshot after they were added to the engine: `sids[i]` is the
    engine series of the snapshot's i-th series; `partition` the input partition."""

    partition: int
    sids: npt.NDArray[np.intp]


class Kind:
    """One rule kind. The engine calls these between batches, never concurrently.

    `rules`: the rule classes this kind evaluates. `per_series`: bound to (device, point)
    series, which the engine selects (`bind` gets the series a rule matches, again as new
    series appear); otherwise `bind` is called once per rule with no series.
    `point_alerts`: its transitions are per point and feed composite rules, sorted in the
    canonical order (deciding input, then key); otherwise they follow, in its own order.
    `on_events_topic`: its state is checkpointed with the events partitions, not the
    readings partitions. Every method not overridden does nothing.
    """

    name: ClassVar[str]
    rules: ClassVar[tuple[type[Rule], ...]]
    per_series: ClassVar[bool] = False
    point_alerts: ClassVar[bool] = True
    on_events_topic: ClassVar[bool] = False

    def bind(self, entry: RuleEntry, sids: list[int], carried: Carried) -> None:
        """Start evaluating `entry` (on `sids`), continuing from `carried` (its previous
        version's levels, from `unbind`)."""
        raise NotImplementedError

    def unbind(self, entry: RuleEntry) -> Carried:
        """Stop evaluating `entry`; what its next version carries over."""
        raise NotImplementedError

    def drop_series(self, sids: npt.NDArray[np.intp]) -> Carried:
        """Forget the state of these series (a device removed or bound again); the levels
        to give them when bound again, by (rule index, series)."""
        return {}

    def carry_series(self, levels: Carried, sids: npt.NDArray[np.intp]) -> None:
        """The levels `drop_series` returned, after the series were bound again."""

    def drop(self, partition: int, keys: Collection[str]) -> None:
        """Forget what is kept of an input partition by device key (`keys`: the devices
        with series there) other than the series' slots: it moved to another engine."""

    def evaluate(self, readings: Readings) -> Indexed:
        return []

    def on_events(
        self, events: Sequence[Event], partition: int, site_state: Callable[[DeviceInfo], str]
    ) -> Indexed:
        return []

    def on_status(self, sids: list[int], status: Status, index: int) -> Indexed:
        return []

    def react(self, transitions: list[Transition]) -> list[Transition]:
        """The engine's own transitions in canonical order, each followed by those it
        causes here (composite rules); unchanged for other kinds."""
        return transitions

    def on_tick(self, now_ms: int, owned: Owned) -> Indexed:
        return []

    def snapshot(self, part: Part) -> Any:
        """This kind's state in `part`, as a value msgspec can encode, made of copies (it
        is encoded in another thread, while the engine may go on); None: nothing there."""
        return None

    def saved(self) -> None:
        """A snapshot of every partition was taken: what changed counts from now."""

    def restore(self, pieces: Sequence[tuple[bytes, Restored]]) -> None:
        """Merge snapshot sections (`snapshot`'s value, encoded) into the running state,
        oldest first (a base, then the deltas written after it)."""
