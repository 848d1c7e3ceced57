"""REST rate limiting: request weights, the exchange's used-weight headers, 429 and 418.

Binance counts request weight per IP per minute and reports it back in
``X-MBX-USED-WEIGHT-1M``. We keep our own count (optimistic, before sending) and take
the header as the truth after every answer. A request that would bring the minute's weight
above ``limit * safety`` waits for the next minute. A 429 blocks every request until its
``Retry-After`` has passed (hammering on after 429s is what earns a 418 ban); a 418 stops
all requests until its ``Retry-After`` and raises :class:`Banned` meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

__all__ = ["Banned", "RateLimiter"]

log = logging.getLogger("gateways.ratelimit")


class Banned(RuntimeError):
    """The exchange banned this IP (HTTP 418); no request may be sent until ``until``."""

    def __init__(self, until: float) -> None:
        super().__init__(f"IP banned by exchange for {max(0.0, until - time.time()):.0f}s more")
        self.until = until


class RateLimiter:
    """Per-minute request-weight budget shared by every REST call of one gateway."""

    def __init__(self, limit_1m: int = 6000, safety: float = 0.9,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit_1m
        self.safety = safety
        self._clock = clock
        self._minute = int(clock() // 60)
        self.used = 0
        self.blocked_until = 0.0
        self.banned_until = 0.0
        self.n_429 = 0
        self.n_418 = 0
        self.n_waits = 0

    def _roll(self, now: float) -> None:
        m = int(now // 60)
        if m != self._minute:
            self._minute = m
            self.used = 0

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` may be spent, then spend it; raise Banned during a ban."""
        while True:
            now = self._clock()
            if now < self.banned_until:
                raise Banned(self.banned_until)
            if now < self.blocked_until:
                self.n_waits += 1
                await asyncio.sleep(self.blocked_until - now)
                continue
            self._roll(now)
            if self.used + weight > self.limit * self.safety and self.used > 0:
                self.n_waits += 1
                await asyncio.sleep((self._minute + 1) * 60 - now + 0.05)
                continue
            self.used += weight
            return

    def update(self, status: int, headers: Mapping[str, str]) -> None:
        """Take the exchange's view after an answer (headers are case-insensitive)."""
        now = self._clock()
        self._roll(now)
        used = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        if used is not None:
            try:
                self.used = int(used)
            except ValueError:
                pass
        if status in (429, 418):
            try:
                retry = float(headers.get("Retry-After") or headers.get("retry-after") or 60)
            except ValueError:
                retry = 60.0
            if status == 429:
                self.n_429 += 1
                self.blocked_until = max(self.blocked_until, now + retry)
                log.warning("HTTP 429 from exchange: backing off %.1fs", retry)
            else:
                self.n_418 += 1
                self.banned_until = max(self.banned_until, now + retry)
                log.error("HTTP 418 from exchange: banned for %.0fs; all requests stopped", retry)
