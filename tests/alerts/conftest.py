"""Alert tests run on timelines with an injected clock (yujing.testing.alerts)."""

from __future__ import annotations

import pytest

from yujing.testing.alerts import Clock, at


@pytest.fixture
def clock() -> Clock:
    return Clock(at(0))
