"""Alert tests run on timelines with an injected clock (yujing.alerts.testkit)."""

from __future__ import annotations

import pytest

from yujing.alerts.testkit import Clock, at


@pytest.fixture
def clock() -> Clock:
    return Clock(at(0))
