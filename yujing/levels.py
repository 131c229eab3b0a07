"""The four warning colours as one ordered type: blue < yellow < orange < red (red highest)."""

from __future__ import annotations

import enum


class Level(enum.IntEnum):
    """Ordered alert level. `NONE` (0) is the engine's "no alert" and never appears on the wire."""

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def word(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> Level:
        try:
            level = cls[word.upper()]
        except KeyError:
            raise ValueError(
                f"unknown level {word!r}; expected blue, yellow, orange or red"
            ) from None
        if level is cls.NONE:
            raise ValueError("'none' is not an alert level")
        return level


COLOURS: tuple[Level, ...] = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
