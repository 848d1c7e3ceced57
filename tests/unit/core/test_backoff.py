"""oms_core.backoff: the one back-off of every retry loop (supervisor restarts, websocket
reconnects, ccxt calls, the writer's database retries)."""

from __future__ import annotations

import random

import pytest

from oms_core.backoff import Backoff


def test_without_jitter_it_doubles_from_base_up_to_the_cap() -> None:
    b = Backoff(0.5, 15.0, jitter=False)
    assert [b.next_delay() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert b.attempt == 8
    b.reset()
    assert b.next_delay() == 0.5


def test_the_ceiling_of_an_attempt_is_the_same_without_state() -> None:
    b = Backoff(0.1, 30.0, jitter=False)
    assert [b.ceiling(n) for n in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert b.ceiling(-1) == 0.1
    assert b.ceiling(10**6) == 30.0  # no overflow after a very long outage
    assert b.attempt == 0


def test_jitter_stays_under_the_ceiling_and_never_reaches_zero() -> None:
    rnd = random.Random(3)
    b = Backoff(0.2, 5.0, rnd)
    for n in range(2000):
        d = b.next_delay()
        assert 0.02 <= d <= min(5.0, 0.2 * 2 ** min(n, 10))


def test_nonsense_bounds_are_refused() -> None:
    for base, cap in ((0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)):
        with pytest.raises(ValueError):
            Backoff(base, cap)
