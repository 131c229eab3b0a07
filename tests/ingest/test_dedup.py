from __future__ import annotations

from yujing.ingest.dedup import WINDOW, SeqWindow


def test_redelivery_is_a_duplicate_and_gaps_are_counted() -> None:
    w = SeqWindow()
    dev = ("ent1", "dev1")
    assert [w.accept(dev, s) for s in (1, 2, 2, 5, 4, 4, 3, 1)] == [
        True, True, False, True, True, False, True, False,
    ]  # fmt: skip
    assert w.gaps == 2  # 3 and 4 were missing when 5 arrived
    assert w.accept(("ent1", "dev2"), 2)  # per device


def test_older_than_the_window_is_a_duplicate() -> None:
    w = SeqWindow()
    dev = ("e", "d")
    assert w.accept(dev, 10 * WINDOW)
    assert not w.accept(dev, 10 * WINDOW - WINDOW)
    assert w.accept(dev, 10 * WINDOW - 1)
    assert w.accept(dev, 20 * WINDOW)  # a jump past the window forgets what came before
    assert not w.accept(dev, 20 * WINDOW)
