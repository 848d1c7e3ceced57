"""Pure-Python reference L2 book (dict based), held to the same answers as gateways.book.

Used by the property tests and as the baseline in benchmarks/bench_book.py. It follows
the same Binance sequence rules and the same truncation to ``capacity`` levels per side
(applied after every level, like the compiled book).
"""

from __future__ import annotations

from decimal import Decimal

OK, STALE_DIFF, GAP, NOT_SYNCED, MALFORMED = 0, 1, 2, 3, 4


def to_fixed(text: str, decimals: int) -> int:
    """Parse a plain decimal string into an int at ``decimals`` (exact; no float)."""
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise ValueError("more precision than the instrument allows")
        frac = frac[:decimals]
    if not (whole + frac).isdigit():
        raise ValueError(f"malformed decimal {text!r}")
    return int(whole + frac.ljust(decimals, "0"))


def to_fixed_exact(text: str, decimals: int) -> int:
    """Slow twin of :func:`to_fixed` through Decimal, for cross-checks."""
    d = Decimal(text) * (10**decimals)
    if d != d.to_integral_value():
        raise ValueError("more precision than the instrument allows")
    return int(d)


class RefBook:
    """Dict-based L2 book: price -> qty per side."""

    def __init__(self, price_decimals: int, qty_decimals: int, capacity: int = 1000) -> None:
        self.pdec = price_decimals
        self.qdec = qty_decimals
        self.capacity = capacity
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_update_id = -1
        self.synced = False
        self._first = False

    def _set(self, side: dict[int, int], price: int, qty: int, is_bid: bool) -> None:
        if qty == 0:
            side.pop(price, None)
            return
        if price in side:
            side[price] = qty
            return
        if len(side) >= self.capacity:
            worst = min(side) if is_bid else max(side)
            if (is_bid and price < worst) or (not is_bid and price > worst):
                return
            del side[worst]
        side[price] = qty

    def snapshot(self, last_update_id: int, bids: list, asks: list) -> int:
        self.bids.clear()
        self.asks.clear()
        for p, q in bids:
            self._set(self.bids, to_fixed(p, self.pdec), to_fixed(q, self.qdec), True)
        for p, q in asks:
            self._set(self.asks, to_fixed(p, self.pdec), to_fixed(q, self.qdec), False)
        self.last_update_id = last_update_id
        self.synced = True
        self._first = True
        return OK

    def diff(self, first_id: int, last_id: int, bids: list, asks: list) -> int:
        if not self.synced:
            return NOT_SYNCED
        if last_id <= self.last_update_id:
            return STALE_DIFF
        nxt = self.last_update_id + 1
        if (self._first and not (first_id <= nxt <= last_id)) or (
            not self._first and first_id != nxt
        ):
            self.synced = False
            return GAP
        for p, q in bids:
            self._set(self.bids, to_fixed(p, self.pdec), to_fixed(q, self.qdec), True)
        for p, q in asks:
            self._set(self.asks, to_fixed(p, self.pdec), to_fixed(q, self.qdec), False)
        self.last_update_id = last_id
        self._first = False
        return OK

    def bid_levels(self) -> list[tuple[int, int]]:
        return sorted(self.bids.items(), reverse=True)

    def ask_levels(self) -> list[tuple[int, int]]:
        return sorted(self.asks.items())

    def top(self) -> tuple[int, int, int, int]:
        bb = max(self.bids) if self.bids else 0
        ba = min(self.asks) if self.asks else 0
        return (bb, self.bids.get(bb, 0), ba, self.asks.get(ba, 0))
