"""Pure-Python reference order book: the model the compiled ``Book`` is held to.

It implements matching only (LIMIT GTC/IOC/FOK, MARKET, LIMIT_MAKER, cancel, self-trade
prevention), without balances or stop orders. It is the baseline of
``benchmarks/bench_matching.py`` and the oracle of the property tests.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

from gateways.sim.constants import (
    OT_LIMIT_MAKER,
    OT_MARKET,
    SIDE_BUY,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    TIF_FOK,
    TIF_GTC,
)


@dataclass(slots=True)
class RefOrder:
    order_id: int
    account: int
    side: int
    price: int
    qty: int
    filled: int = 0


class ReferenceBook:
    """Dict of price -> deque of orders plus a sorted price list per side."""

    def __init__(self) -> None:
        self.levels: tuple[dict[int, deque[RefOrder]], dict[int, deque[RefOrder]]] = ({}, {})
        # ascending price lists; best bid is prices[0][-1], best ask prices[1][0]
        self.prices: tuple[list[int], list[int]] = ([], [])
        self.orders: dict[int, RefOrder] = {}
        self.next_id = 1
        self.next_trade = 1
        self.trades: list[tuple[int, int, int, int, int]] = []  # id, price, qty, taker, maker

    def _best(self, side: int) -> int | None:
        p = self.prices[side]
        if not p:
            return None
        return p[-1] if side == SIDE_BUY else p[0]

    def _remove_price(self, side: int, price: int) -> None:
        p = self.prices[side]
        del p[bisect.bisect_left(p, price)]
        del self.levels[side][price]

    def _crosses(self, side: int, limit: int, price: int) -> bool:
        return price <= limit if side == SIDE_BUY else price >= limit

    def submit(self, account: int, side: int, otype: int, tif: int, price: int, qty: int,
               stp: int = STP_NONE) -> int:
        """Submit an order; return its id (-3 when a LIMIT_MAKER would take)."""
        opp = 1 - side
        market = otype == OT_MARKET
        best = self._best(opp)
        if otype == OT_LIMIT_MAKER and best is not None and self._crosses(side, price, best):
            return -3
        oid = self.next_id
        self.next_id += 1
        o = RefOrder(oid, account, side, 0 if market else price, qty)
        if tif == TIF_FOK:
            avail = 0
            plist = self.prices[opp] if opp == 1 else self.prices[opp][::-1]
            for p in plist:
                if not market and not self._crosses(side, price, p):
                    break
                avail += sum(x.qty - x.filled for x in self.levels[opp][p])
                if avail >= qty:
                    break
            if avail < qty:
                return oid
        while o.filled < o.qty:
            best = self._best(opp)
            if best is None or (not market and not self._crosses(side, price, best)):
                break
            q = self.levels[opp][best]
            m = q[0]
            if m.account == account and stp != STP_NONE:
                if stp in (STP_EXPIRE_MAKER, STP_EXPIRE_BOTH):
                    q.popleft()
                    del self.orders[m.order_id]
                    if not q:
                        self._remove_price(opp, best)
                if stp in (STP_EXPIRE_TAKER, STP_EXPIRE_BOTH):
                    return oid
                continue
            n = min(o.qty - o.filled, m.qty - m.filled)
            o.filled += n
            m.filled += n
            self.trades.append((self.next_trade, best, n, oid, m.order_id))
            self.next_trade += 1
            if m.filled == m.qty:
                q.popleft()
                del self.orders[m.order_id]
                if not q:
                    self._remove_price(opp, best)
        if o.filled < o.qty and not market and (tif == TIF_GTC or otype == OT_LIMIT_MAKER):
            lv = self.levels[side].get(price)
            if lv is None:
                lv = self.levels[side][price] = deque()
                bisect.insort(self.prices[side], price)
            lv.append(o)
            self.orders[oid] = o
        return oid

    def cancel(self, order_id: int) -> int:
        """Cancel an open order; return 0, or -6 when it is not open."""
        o = self.orders.pop(order_id, None)
        if o is None:
            return -6
        q = self.levels[o.side][o.price]
        q.remove(o)
        if not q:
            self._remove_price(o.side, o.price)
        return 0

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return ``(bids, asks)`` as lists of ``(price, qty)`` best first."""
        out = []
        for side in (0, 1):
            plist = self.prices[side][::-1] if side == SIDE_BUY else self.prices[side]
            out.append([(p, sum(x.qty - x.filled for x in self.levels[side][p])) for p in plist])
        return out[0], out[1]
