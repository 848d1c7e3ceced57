"""Exponential back-off between retries (cold code): restarts of supervised processes,
websocket reconnects, ccxt calls, the writer's database retries.

Attempt ``n`` (from 0) waits ``min(cap, base * 2**n)``. With jitter ("full jitter", the
right choice when many clients retry the same peer) it waits a uniform draw below that
ceiling instead, never less than ``base / 10`` so that a flapping peer cannot make a loop
spin.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 64  # 2**64 times any base is past every cap; keeps the float finite


class Backoff:
    """The delays of one retry loop; ``reset()`` once the operation succeeded."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rnd: random.Random | None = None,
                 *, jitter: bool = True) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError(f"back-off needs a positive base and cap, got {base}, {cap}")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.attempt = 0
        self._rnd = rnd or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The longest wait of attempt ``attempt`` (from 0): ``min(cap, base * 2**attempt)``."""
        return min(self.cap, self.base * 2 ** min(max(attempt, 0), _MAX_DOUBLINGS))

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds; counts the attempt."""
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        if not self.jitter:
            return ceiling
        return max(self.base / 10, self._rnd.uniform(0, ceiling))

    def reset(self) -> None:
        """Start again from ``base`` (the operation succeeded)."""
        self.attempt = 0


__all__ = ["Backoff"]
