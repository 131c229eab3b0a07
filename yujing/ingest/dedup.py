"""QoS 1 redelivery detection by per-device `seq`, with gap counting.

A sliding window of the last `WINDOW` sequence numbers per device: a `seq` seen inside the
window is a duplicate; one older than the window is treated as a duplicate too (it cannot
be told apart, and a device's seq only increases); a step forward counts the gap.

Two exceptions, each accepted once as a *candidate* and adopted only when the next reading
follows it, so that one corrupt `seq` (10^30) cannot turn every later reading into a
"duplicate":

- a jump forward of `WINDOW` or more: the reading is new, but the window stays where it
  is until a following `seq` (within `WINDOW` above the jump) confirms the device really
  moved on;
- a step back to `seq` ≤ `RESTART_MAX` (0 or 1) from at least `RESTART_MIN_AGE` ahead:
  the device restarted its counter (a reboot). When the next reading follows it, the
  window starts again from there.

A window can be rolled back to its last `begin()`: ingest does that when the bus refused a
batch, so that the redelivered messages are not taken for duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

WINDOW = 4096
RESTART_MAX = 1
# A step back to 0 or 1 from fewer than this many seqs ahead is taken for a redelivery of
# the device's first messages, not a restart: the two cannot be told apart by seq alone.
RESTART_MIN_AGE = 64
_MASK = (1 << WINDOW) - 1


@dataclass(slots=True)
class _Seen:
    top: int
    bits: int = 1  # bit i set: seq (top - i) was seen
    candidate: int | None = None  # a jump or restart waiting for its confirmation


@dataclass(slots=True)
class SeqWindow:
    gaps: int = 0
    _devices: dict[tuple[str, str], _Seen] = field(default_factory=dict)
    _undo: dict[tuple[str, str], _Seen | None] = field(default_factory=dict)
    _undo_gaps: int = 0

    def begin(self) -> None:
        """Starts a batch: `rollback()` returns the window to this point."""
        self._undo.clear()
        self._undo_gaps = self.gaps

    def rollback(self) -> None:
        for device, before in self._undo.items():
            if before is None:
                self._devices.pop(device, None)
            else:
                self._devices[device] = before
        self._undo.clear()
        self.gaps = self._undo_gaps

    def accept_all(self, device: tuple[str, str], seqs: list[int | None]) -> list[bool]:
        """`accept` for each of a message's seqs (None: no seq, always new). A store-and-
        forward batch usually continues its device's count one by one: that run is taken
        in one step (the window shifted once), the same outcome as seq by seq."""
        seen = self._devices.get(device)
        n = len(seqs)
        if (
            seen is not None
            and seen.candidate is None
            and 1 < n < WINDOW
            and seqs[0] == seen.top + 1
            and seqs[-1] == seen.top + n
            and None not in seqs
            and all(b == a + 1 for a, b in pairwise(seqs))  # type: ignore[operator]
        ):
            if device not in self._undo:
                self._undo[device] = _Seen(seen.top, seen.bits, seen.candidate)
            seen.bits = ((seen.bits << n) | ((1 << n) - 1)) & _MASK
            seen.top += n
            return [True] * n
        return [s is None or self.accept(device, s) for s in seqs]

    def accept(self, device: tuple[str, str], seq: int) -> bool:
        """True if `seq` is new for this device (and records it)."""
        seen = self._devices.get(device)
        if device not in self._undo:
            self._undo[device] = seen and _Seen(seen.top, seen.bits, seen.candidate)
        if seen is None:
            self._devices[device] = _Seen(seq)
            return True
        cand = seen.candidate
        if cand is not None:
            if seq == cand:
                return False  # the jump (or restart) itself, redelivered
            if cand < seq < cand + WINDOW and not seen.top < seq < seen.top + WINDOW:
                # Confirmed: the device really is there now. The gap to the jump is not
                # counted (it is a counter reset, not lost messages).
                seen.top, seen.bits, seen.candidate = cand, 1, None
        if seq > seen.top:
            jump = seq - seen.top
            if jump >= WINDOW:
                seen.candidate = seq
                return True
            self.gaps += jump - 1
            seen.bits = ((seen.bits << jump) | 1) & _MASK
            seen.top = seq
            seen.candidate = None  # the device followed its old course: it was a glitch
            return True
        age = seen.top - seq
        if seq <= RESTART_MAX and age >= RESTART_MIN_AGE:
            seen.candidate = seq
            return True
        if age >= WINDOW or seen.bits >> age & 1:
            return False
        seen.bits |= 1 << age
        return True
