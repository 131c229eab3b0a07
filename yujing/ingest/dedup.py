"""QoS 1 redelivery detection by per-device `seq`, with gap counting.

A sliding window of the last `WINDOW` sequence numbers per device: a `seq` seen inside the
window is a duplicate; one older than the window is treated as a duplicate too (it cannot
be told apart and a device's seq only increases); a jump forward counts the gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW = 4096


@dataclass(slots=True)
class _Seen:
    top: int
    bits: int = 1  # bit i set: seq (top - i) was seen


@dataclass(slots=True)
class SeqWindow:
    gaps: int = 0
    _devices: dict[tuple[str, str], _Seen] = field(default_factory=dict)

    def accept(self, device: tuple[str, str], seq: int) -> bool:
        """True if `seq` is new for this device (and records it)."""
        seen = self._devices.get(device)
        if seen is None:
            self._devices[device] = _Seen(seq)
            return True
        if seq > seen.top:
            jump = seq - seen.top
            self.gaps += jump - 1
            seen.bits = ((seen.bits << jump) | 1) & ((1 << WINDOW) - 1) if jump < WINDOW else 1
            seen.top = seq
            return True
        age = seen.top - seq
        if age >= WINDOW or seen.bits >> age & 1:
            return False
        seen.bits |= 1 << age
        return True
