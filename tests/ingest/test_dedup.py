from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.ingest.dedup import RESTART_MIN_AGE, WINDOW, SeqWindow


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
    assert w.accept(dev, 20 * WINDOW)  # a jump past the window: a candidate
    assert not w.accept(dev, 20 * WINDOW)  # ... and its redelivery a duplicate
    assert w.accept(dev, 20 * WINDOW + 1)  # confirmed: the window moved there
    assert not w.accept(dev, 10 * WINDOW - 2)


def timeline(w: SeqWindow, dev: tuple[str, str], seqs: list[int]) -> list[bool]:
    return [w.accept(dev, s) for s in seqs]


def test_one_wild_jump_does_not_poison_the_window() -> None:
    """Issue 12: one reading with seq 10^30 made every later reading a duplicate."""
    w = SeqWindow()
    dev = ("e", "d")
    assert timeline(w, dev, [1, 2, 3, 10**30, 4, 5, 10**30, 5, 6]) == [
        True, True, True,
        True,  # the wild one is stored once (it is a reading, only its seq is odd)
        True, True,  # the device goes on from 3: the jump was a glitch
        True,  # the glitch redelivered once the window dropped it: stored again, once
        False, True,
    ]  # fmt: skip
    assert w.gaps == 0


def test_a_real_jump_is_adopted_when_the_next_reading_follows_it() -> None:
    w = SeqWindow()
    dev = ("e", "d")
    assert timeline(w, dev, [1, 2, 50_000, 50_001, 50_001, 3, 50_003]) == [
        True, True, True, True, False,
        False,  # older than the adopted window
        True,
    ]  # fmt: skip
    assert w.gaps == 1  # only 50,002 (the jump itself is a reset, not lost messages)


def test_a_device_that_restarts_its_seq_is_recognised() -> None:
    w = SeqWindow()
    dev = ("e", "d")
    before = list(range(1, 200))
    assert all(timeline(w, dev, before))
    # Reboot: back to 0. Then 1, 2 follow it; a redelivery of the restart is a duplicate.
    assert timeline(w, dev, [0, 1, 0, 2, 3, 1]) == [True, True, False, True, True, False]
    assert w.gaps == 0


def test_a_redelivery_of_the_first_messages_is_not_a_restart() -> None:
    w = SeqWindow()
    dev = ("e", "d")
    assert all(timeline(w, dev, list(range(RESTART_MIN_AGE - 1))))
    assert timeline(w, dev, [0, 1]) == [False, False]


def test_rollback_forgets_the_batch() -> None:
    w = SeqWindow()
    dev, other = ("e", "d"), ("e", "new")
    w.begin()
    assert timeline(w, dev, [1, 2]) == [True, True]
    w.begin()
    assert timeline(w, dev, [3, 5]) == [True, True]
    assert w.accept(other, 7)
    assert w.gaps == 1
    w.rollback()  # the bus refused that batch: MQTT sends it again
    assert timeline(w, dev, [3, 5]) == [True, True]
    assert w.accept(other, 7)
    assert w.gaps == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.lists(st.integers(min_value=0, max_value=3 * WINDOW), max_size=5),
            st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=40)), max_size=4),
            st.integers(min_value=1, max_value=40),  # a run continuing the device's count
        ),
        max_size=12,
    )
)
def test_a_run_at_once_is_the_same_as_seq_by_seq(messages: list[list[int | None] | int]) -> None:
    """`accept_all` (a batch's seqs, runs taken in one step) decides and remembers exactly
    what `accept` one seq at a time does, rollback included."""
    dev = ("e", "d")
    one, many = SeqWindow(), SeqWindow()
    for i, message in enumerate(messages):
        if i % 4 == 0:
            one.begin()
            many.begin()
        if isinstance(message, int):
            top = one._devices[dev].top if dev in one._devices else 0
            seqs: list[int | None] = list(range(top + 1, top + 1 + message))
        else:
            seqs = list(message)
        expected = [s is None or one.accept(dev, s) for s in seqs]
        assert many.accept_all(dev, seqs) == expected
        assert many._devices == one._devices and many.gaps == one.gaps
        if i % 4 == 3:
            one.rollback()
            many.rollback()
            assert many._devices == one._devices and many.gaps == one.gaps
