# cython: language_level=3
"""Price-time priority matching engine of the simulated exchange (see matching.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memmove, memset

from gateways.sim.order_types cimport is_market_like, is_stop, stop_triggers, trail_stop

cdef extern from *:
    """
    /* price*qty/scale overflows int64 for ordinary sizes at 1e-8 precision; widen. */
    static inline int64_t sim_mul_div(int64_t a, int64_t b, int64_t d) {
        return (int64_t)(((__int128)a * (__int128)b) / (__int128)d);
    }
    static inline int64_t sim_mul_div_up(int64_t a, int64_t b, int64_t d) {
        __int128 p = (__int128)a * (__int128)b;
        return (int64_t)((p + (__int128)d - 1) / (__int128)d);
    }
    """
    int64_t sim_mul_div(int64_t a, int64_t b, int64_t d) noexcept nogil
    int64_t sim_mul_div_up(int64_t a, int64_t b, int64_t d) noexcept nogil

SCALE = 100_000_000
cdef int64_t C_SCALE = 100_000_000
cdef uint8_t NO_EVENT = 255


def enum_values():
    """Return the engine's enum values by name (the contract ``constants.py`` mirrors)."""
    return {
        "SIDE_BUY": SIDE_BUY, "SIDE_SELL": SIDE_SELL,
        "OT_LIMIT": OT_LIMIT, "OT_MARKET": OT_MARKET, "OT_LIMIT_MAKER": OT_LIMIT_MAKER,
        "OT_STOP_LOSS": OT_STOP_LOSS, "OT_STOP_LOSS_LIMIT": OT_STOP_LOSS_LIMIT,
        "OT_TAKE_PROFIT": OT_TAKE_PROFIT, "OT_TAKE_PROFIT_LIMIT": OT_TAKE_PROFIT_LIMIT,
        "TIF_GTC": TIF_GTC, "TIF_IOC": TIF_IOC, "TIF_FOK": TIF_FOK,
        "STP_NONE": STP_NONE, "STP_EXPIRE_TAKER": STP_EXPIRE_TAKER,
        "STP_EXPIRE_MAKER": STP_EXPIRE_MAKER, "STP_EXPIRE_BOTH": STP_EXPIRE_BOTH,
        "ST_NEW": ST_NEW, "ST_PARTIALLY_FILLED": ST_PARTIALLY_FILLED, "ST_FILLED": ST_FILLED,
        "ST_CANCELED": ST_CANCELED, "ST_REJECTED": ST_REJECTED, "ST_EXPIRED": ST_EXPIRED,
        "ST_EXPIRED_IN_MATCH": ST_EXPIRED_IN_MATCH,
        "EV_NEW": EV_NEW, "EV_TRADE": EV_TRADE, "EV_CANCELED": EV_CANCELED,
        "EV_EXPIRED": EV_EXPIRED, "EV_TRIGGERED": EV_TRIGGERED, "EV_STP": EV_STP,
        "REJ_OK": REJ_OK, "REJ_BAD_PARAM": REJ_BAD_PARAM,
        "REJ_INSUFFICIENT_BALANCE": REJ_INSUFFICIENT_BALANCE, "REJ_WOULD_TAKE": REJ_WOULD_TAKE,
        "REJ_WOULD_TRIGGER": REJ_WOULD_TRIGGER, "REJ_FULL": REJ_FULL,
        "REJ_UNKNOWN_ORDER": REJ_UNKNOWN_ORDER, "REJ_NO_LIQUIDITY": REJ_NO_LIQUIDITY,
    }


# ======================================================================== Book ====

cdef class Book:
    """A limit order book for one symbol, matching with price-time priority.

    Parameters
    ----------
    ledger : Ledger
        Balances shared by every book of the exchange.
    base_asset, quote_asset : int
        Asset indices in ``ledger``.
    maker_bps, taker_bps : int
        Fees in basis points, charged in the asset received.
    max_orders, max_levels, max_stops : int
        Capacities, allocated up front.
    """

    def __cinit__(self, Ledger ledger, int32_t base_asset, int32_t quote_asset,
                  int64_t maker_bps=0, int64_t taker_bps=0, int32_t max_orders=65536,
                  int32_t max_levels=8192, int32_t max_stops=4096, int64_t first_id=1):
        cdef int32_t i
        cdef int64_t hcap = 1
        if max_orders <= 0 or max_levels <= 0 or max_stops <= 0:
            raise ValueError("capacities must be positive")
        if not (0 <= base_asset < ledger.n_assets and 0 <= quote_asset < ledger.n_assets):
            raise ValueError("asset index out of range")
        self.ledger = ledger
        self.base_asset = base_asset
        self.quote_asset = quote_asset
        self.maker_bps = maker_bps
        self.taker_bps = taker_bps
        self._cap_orders = max_orders
        self._cap_levels = max_levels
        self._cap_stops = max_stops
        self._cap_events = 1024
        while hcap < 2 * <int64_t>max_orders:
            hcap <<= 1
        self._hmask = hcap - 1
        self._orders = <order_t*>PyMem_Malloc(max_orders * sizeof(order_t))
        self._hkeys = <int64_t*>PyMem_Malloc(hcap * sizeof(int64_t))
        self._hvals = <int32_t*>PyMem_Malloc(hcap * sizeof(int32_t))
        self._levels[0] = <level_t*>PyMem_Malloc(max_levels * sizeof(level_t))
        self._levels[1] = <level_t*>PyMem_Malloc(max_levels * sizeof(level_t))
        self._stops = <int32_t*>PyMem_Malloc(max_stops * sizeof(int32_t))
        self._events = <event_t*>PyMem_Malloc(self._cap_events * sizeof(event_t))
        if (self._orders == NULL or self._hkeys == NULL or self._hvals == NULL
                or self._levels[0] == NULL or self._levels[1] == NULL
                or self._stops == NULL or self._events == NULL):
            raise MemoryError()
        memset(self._orders, 0, max_orders * sizeof(order_t))
        memset(self._hkeys, 0, hcap * sizeof(int64_t))
        for i in range(max_orders):
            self._orders[i].next = i + 1 if i + 1 < max_orders else -1
        self._free_head = 0
        if first_id <= 0:
            raise ValueError("first_id must be positive")
        self.next_order_id = first_id
        self.next_trade_id = first_id

    def __dealloc__(self):
        PyMem_Free(self._orders)
        PyMem_Free(self._hkeys)
        PyMem_Free(self._hvals)
        PyMem_Free(self._levels[0])
        PyMem_Free(self._levels[1])
        PyMem_Free(self._stops)
        PyMem_Free(self._events)

    # ------------------------------------------------------------ slots & hash ----

    cdef int32_t _alloc(self) except -2:
        cdef int32_t s = self._free_head
        if s == -1:
            return -1
        self._free_head = self._orders[s].next
        memset(&self._orders[s], 0, sizeof(order_t))
        self._orders[s].prev = -1
        self._orders[s].next = -1
        self.n_orders += 1
        return s

    cdef void _release(self, int32_t slot) noexcept:
        self._orders[slot].order_id = 0
        self._orders[slot].next = self._free_head
        self._free_head = slot
        self.n_orders -= 1

    cdef void _hput(self, int64_t key, int32_t val) noexcept:
        cdef int64_t i = key & self._hmask
        while self._hkeys[i] != 0:
            i = (i + 1) & self._hmask
        self._hkeys[i] = key
        self._hvals[i] = val

    cdef int32_t _hget(self, int64_t key) noexcept:
        cdef int64_t i = key & self._hmask
        if key <= 0:
            return -1
        while self._hkeys[i] != 0:
            if self._hkeys[i] == key:
                return self._hvals[i]
            i = (i + 1) & self._hmask
        return -1

    cdef void _hdel(self, int64_t key) noexcept:
        # backward-shift deletion keeps probe chains intact without tombstones
        cdef int64_t i = key & self._hmask
        cdef int64_t j, k
        while self._hkeys[i] != key:
            if self._hkeys[i] == 0:
                return
            i = (i + 1) & self._hmask
        j = i
        while True:
            j = (j + 1) & self._hmask
            if self._hkeys[j] == 0:
                break
            k = self._hkeys[j] & self._hmask
            if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
                self._hkeys[i] = self._hkeys[j]
                self._hvals[i] = self._hvals[j]
                i = j
        self._hkeys[i] = 0

    # ------------------------------------------------------------------ levels ----

    cdef int32_t _find_level(self, uint8_t side, int64_t price) noexcept:
        # sorted ascending by key; key = price for bids, -price for asks (best at the end)
        cdef level_t* lv = self._levels[side]
        cdef int32_t lo = 0, hi = self._n_levels[side] - 1, mid
        cdef int64_t key = price if side == SIDE_BUY else -price
        cdef int64_t k
        while lo <= hi:
            mid = (lo + hi) >> 1
            k = lv[mid].price if side == SIDE_BUY else -lv[mid].price
            if k == key:
                return mid
            if k < key:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    cdef int32_t _insert_level(self, uint8_t side, int64_t price) noexcept:
        cdef level_t* lv = self._levels[side]
        cdef int32_t n = self._n_levels[side]
        cdef int32_t lo = 0, hi = n, mid
        cdef int64_t key = price if side == SIDE_BUY else -price
        cdef int64_t k
        if n >= self._cap_levels:
            return -1
        while lo < hi:
            mid = (lo + hi) >> 1
            k = lv[mid].price if side == SIDE_BUY else -lv[mid].price
            if k < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < n:
            memmove(&lv[lo + 1], &lv[lo], (n - lo) * sizeof(level_t))
        lv[lo].price = price
        lv[lo].qty = 0
        lv[lo].head = -1
        lv[lo].tail = -1
        lv[lo].count = 0
        self._n_levels[side] = n + 1
        return lo

    cdef void _remove_level(self, uint8_t side, int32_t idx) noexcept:
        cdef level_t* lv = self._levels[side]
        cdef int32_t n = self._n_levels[side]
        if idx < n - 1:
            memmove(&lv[idx], &lv[idx + 1], (n - 1 - idx) * sizeof(level_t))
        self._n_levels[side] = n - 1

    cdef int _rest(self, int32_t slot) except -1:
        cdef order_t* o = &self._orders[slot]
        cdef int32_t idx = self._find_level(o.side, o.price)
        cdef level_t* lv
        if idx < 0:
            idx = self._insert_level(o.side, o.price)
            if idx < 0:
                return 1  # no room: caller expires the order
        lv = &self._levels[o.side][idx]
        o.prev = lv.tail
        o.next = -1
        if lv.tail >= 0:
            self._orders[lv.tail].next = slot
        else:
            lv.head = slot
        lv.tail = slot
        lv.count += 1
        lv.qty += o.qty - o.filled
        self.update_id += 1
        return 0

    cdef void _unlink(self, int32_t slot) noexcept:
        cdef order_t* o = &self._orders[slot]
        cdef int32_t idx = self._find_level(o.side, o.price)
        cdef level_t* lv
        if idx < 0:
            return
        lv = &self._levels[o.side][idx]
        if o.prev >= 0:
            self._orders[o.prev].next = o.next
        else:
            lv.head = o.next
        if o.next >= 0:
            self._orders[o.next].prev = o.prev
        else:
            lv.tail = o.prev
        o.prev = -1
        o.next = -1
        lv.count -= 1
        lv.qty -= o.qty - o.filled
        if lv.count == 0:
            self._remove_level(o.side, idx)
        self.update_id += 1

    # ------------------------------------------------------------------ events ----

    cdef int _emit(self, int32_t slot, uint8_t kind, int64_t trade_id, int64_t price,
                   int64_t qty, int64_t quote, int64_t fee, int64_t counter, uint8_t maker) except -1:
        cdef order_t* o = &self._orders[slot]
        cdef event_t* ev
        cdef event_t* grown
        if self._n_events >= self._cap_events:
            grown = <event_t*>PyMem_Realloc(self._events, 2 * self._cap_events * sizeof(event_t))
            if grown == NULL:
                raise MemoryError()
            self._events = grown
            self._cap_events *= 2
        ev = &self._events[self._n_events]
        self._n_events += 1
        ev.order_id = o.order_id
        ev.trade_id = trade_id
        ev.price = price
        ev.qty = qty
        ev.quote_qty = quote
        ev.commission = fee
        ev.filled = o.filled
        ev.cum_quote = o.cum_quote
        ev.counter_id = counter
        ev.account = o.account
        ev.kind = kind
        ev.status = o.status
        ev.side = o.side
        ev.is_maker = maker
        return 0

    cdef int _finish(self, int32_t slot, uint8_t status, uint8_t kind) except -1:
        # terminal: unlock what is left, report, forget the order
        cdef order_t* o = &self._orders[slot]
        cdef int32_t asset = self.quote_asset if o.side == SIDE_BUY else self.base_asset
        if o.locked:
            self.ledger.locked_ptr(o.account, asset)[0] -= o.locked
            self.ledger.free_ptr(o.account, asset)[0] += o.locked
            o.locked = 0
        o.status = status
        if kind != NO_EVENT:
            self._emit(slot, kind, -1, 0, 0, 0, 0, 0, 0)
        self._hdel(o.order_id)
        self._release(slot)
        return 0

    # ------------------------------------------------------------------- funds ----

    cdef int64_t _required_lock(self, order_t* o) noexcept:
        if o.side == SIDE_SELL:
            return o.qty - o.filled
        if o.otype == OT_MARKET:
            return -1  # market buy: all free quote, unused part released at the end
        if o.otype == OT_STOP_LOSS or o.otype == OT_TAKE_PROFIT:
            # stop-market buy: nothing while waiting, all free quote once triggered
            return -1 if o.working else 0
        return sim_mul_div_up(o.price, o.qty - o.filled, C_SCALE)

    cdef bint _lock(self, int32_t slot) noexcept:
        cdef order_t* o = &self._orders[slot]
        cdef int32_t asset = self.quote_asset if o.side == SIDE_BUY else self.base_asset
        cdef int64_t* free = self.ledger.free_ptr(o.account, asset)
        cdef int64_t amt = self._required_lock(o)
        if amt < 0:
            amt = free[0]
            if amt <= 0:
                return False
        if free[0] < amt:
            return False
        free[0] -= amt
        self.ledger.locked_ptr(o.account, asset)[0] += amt
        o.locked += amt
        return True

    # ---------------------------------------------------------------- matching ----

    cdef bint _crosses(self, uint8_t side, int64_t limit, int64_t price) noexcept:
        return price <= limit if side == SIDE_BUY else price >= limit

    cdef int64_t _available(self, uint8_t side, int64_t limit, int64_t need) noexcept:
        # liquidity on the opposite side at acceptable prices (limit <= 0: any price)
        cdef uint8_t opp = 1 - side
        cdef level_t* lv = self._levels[opp]
        cdef int32_t i = self._n_levels[opp] - 1
        cdef int64_t got = 0
        while i >= 0 and got < need:
            if limit > 0 and not self._crosses(side, limit, lv[i].price):
                break
            got += lv[i].qty
            i -= 1
        return got

    cdef int _fill(self, int32_t taker, int32_t maker, int64_t qty) except -1:
        cdef order_t* t = &self._orders[taker]
        cdef order_t* m = &self._orders[maker]
        cdef uint8_t opp = m.side
        cdef level_t* lv = &self._levels[opp][self._n_levels[opp] - 1]
        cdef int64_t price = m.price
        cdef int64_t quote = sim_mul_div(price, qty, C_SCALE)
        cdef int64_t trade_id = self.next_trade_id
        cdef order_t* b
        cdef order_t* s
        cdef int64_t fee_b, fee_s, fee_t, fee_m
        cdef int32_t nxt
        self.next_trade_id += 1
        if t.side == SIDE_BUY:
            b = t
            s = m
            fee_b = qty * self.taker_bps // 10000
            fee_s = quote * self.maker_bps // 10000
            fee_t = fee_b
            fee_m = fee_s
        else:
            b = m
            s = t
            fee_b = qty * self.maker_bps // 10000
            fee_s = quote * self.taker_bps // 10000
            fee_t = fee_s
            fee_m = fee_b
        # buyer pays quote out of its lock and receives base; seller the reverse
        self.ledger.locked_ptr(b.account, self.quote_asset)[0] -= quote
        b.locked -= quote
        self.ledger.free_ptr(b.account, self.base_asset)[0] += qty - fee_b
        self.ledger.locked_ptr(s.account, self.base_asset)[0] -= qty
        s.locked -= qty
        self.ledger.free_ptr(s.account, self.quote_asset)[0] += quote - fee_s
        t.filled += qty
        t.cum_quote += quote
        m.filled += qty
        m.cum_quote += quote
        t.status = ST_FILLED if t.filled == t.qty else ST_PARTIALLY_FILLED
        m.status = ST_FILLED if m.filled == m.qty else ST_PARTIALLY_FILLED
        lv.qty -= qty
        self.update_id += 1
        self.last_price = price
        self._emit(taker, EV_TRADE, trade_id, price, qty, quote, fee_t, m.order_id, 0)
        self._emit(maker, EV_TRADE, trade_id, price, qty, quote, fee_m, t.order_id, 1)
        if m.filled == m.qty:
            # the maker is the head of the best level: pop it
            nxt = m.next
            lv.head = nxt
            if nxt >= 0:
                self._orders[nxt].prev = -1
            else:
                lv.tail = -1
            lv.count -= 1
            if lv.count == 0:
                self._n_levels[opp] -= 1
            self._finish(maker, ST_FILLED, NO_EVENT)
        return 0

    cdef int _match(self, int32_t slot) except -1:
        # returns 1 when the taker was finished here (self-trade prevention)
        cdef order_t* t = &self._orders[slot]
        cdef uint8_t opp = 1 - t.side
        cdef bint market = is_market_like(t.otype)
        cdef level_t* lv
        cdef order_t* m
        cdef int32_t ms
        cdef int64_t q, rem, afford
        while True:
            rem = t.qty - t.filled
            if rem <= 0 or self._n_levels[opp] == 0:
                return 0
            lv = &self._levels[opp][self._n_levels[opp] - 1]
            if not market and not self._crosses(t.side, t.price, lv.price):
                return 0
            ms = lv.head
            m = &self._orders[ms]
            if m.account == t.account and t.stp != STP_NONE:
                if t.stp == STP_EXPIRE_MAKER or t.stp == STP_EXPIRE_BOTH:
                    self._emit(slot, EV_STP, -1, 0, 0, 0, 0, m.order_id, 0)
                    self._unlink(ms)
                    self._finish(ms, ST_EXPIRED_IN_MATCH, EV_EXPIRED)
                if t.stp == STP_EXPIRE_TAKER or t.stp == STP_EXPIRE_BOTH:
                    self._finish(slot, ST_EXPIRED_IN_MATCH, EV_EXPIRED)
                    return 1
                continue
            q = rem if rem < m.qty - m.filled else m.qty - m.filled
            if t.side == SIDE_BUY and market:
                # market buys are bounded by the quote they locked
                afford = sim_mul_div(t.locked, C_SCALE, lv.price)
                if afford < q:
                    q = afford
                if q <= 0:
                    return 0
            self._fill(slot, ms, q)

    cdef int _activate(self, int32_t slot) except -1:
        cdef order_t* o = &self._orders[slot]
        cdef int64_t keep
        cdef int32_t asset
        o.working = 1
        if o.tif == TIF_FOK and self._available(
                o.side, 0 if is_market_like(o.otype) else o.price, o.qty) < o.qty:
            self._finish(slot, ST_EXPIRED, EV_EXPIRED)
            return 0
        if self._match(slot):
            return 0
        o = &self._orders[slot]
        if o.filled == o.qty:
            self._finish(slot, ST_FILLED, NO_EVENT)
        elif not is_market_like(o.otype) and o.tif == TIF_GTC:
            if o.side == SIDE_BUY:
                # fills at better prices leave more locked than the rest needs
                keep = sim_mul_div_up(o.price, o.qty - o.filled, C_SCALE)
                if o.locked > keep:
                    asset = self.quote_asset
                    self.ledger.locked_ptr(o.account, asset)[0] -= o.locked - keep
                    self.ledger.free_ptr(o.account, asset)[0] += o.locked - keep
                    o.locked = keep
            if self._rest(slot):
                self._finish(slot, ST_EXPIRED, EV_EXPIRED)
        else:
            self._finish(slot, ST_EXPIRED, EV_EXPIRED)
        return 0

    cdef int _check_stops(self) except -1:
        cdef int32_t i, slot
        cdef bint again = True
        while again:
            again = False
            for i in range(self._n_stops):
                slot = self._stops[i]
                if self._orders[slot].trailing_delta:
                    trail_stop(&self._orders[slot], self.last_price)
                if stop_triggers(&self._orders[slot], self.last_price):
                    if i < self._n_stops - 1:
                        memmove(&self._stops[i], &self._stops[i + 1],
                                (self._n_stops - 1 - i) * sizeof(int32_t))
                    self._n_stops -= 1
                    self._emit(slot, EV_TRIGGERED, -1, 0, 0, 0, 0, 0, 0)
                    self._orders[slot].working = 1
                    if (self._orders[slot].side == SIDE_BUY
                            and is_market_like(self._orders[slot].otype)
                            and not self._lock(slot)):
                        self._finish(slot, ST_EXPIRED, EV_EXPIRED)
                    else:
                        self._activate(slot)
                    again = True
                    break
        return 0

    cdef int64_t c_submit(self, int32_t account, uint8_t side, uint8_t otype, uint8_t tif,
                          int64_t price, int64_t qty, int64_t stop_price, uint8_t stp,
                          int64_t trailing_delta=0):
        cdef int32_t slot
        cdef order_t* o
        cdef uint8_t opp = 1 - side
        cdef int32_t n_opp
        cdef int64_t oid
        if (qty <= 0 or side > SIDE_SELL or otype > OT_TAKE_PROFIT_LIMIT or tif > TIF_FOK
                or stp > STP_EXPIRE_BOTH or account < 0 or account >= self.ledger.n_accounts):
            return -REJ_BAD_PARAM
        if not is_market_like(otype) and price <= 0:
            return -REJ_BAD_PARAM
        if trailing_delta and (trailing_delta < 0 or trailing_delta >= 10000 or stop_price
                               or (otype != OT_STOP_LOSS and otype != OT_STOP_LOSS_LIMIT)
                               or self.last_price <= 0):
            return -REJ_BAD_PARAM  # an activation price (stopPrice too) is not modelled
        if is_stop(otype) and stop_price <= 0 and trailing_delta == 0:
            return -REJ_BAD_PARAM
        if otype == OT_LIMIT_MAKER:
            n_opp = self._n_levels[opp]
            if n_opp and self._crosses(side, price, self._levels[opp][n_opp - 1].price):
                return -REJ_WOULD_TAKE
        slot = self._alloc()
        if slot < 0:
            return -REJ_FULL
        o = &self._orders[slot]
        o.account = account
        o.side = side
        o.otype = otype
        o.tif = TIF_GTC if otype == OT_LIMIT_MAKER else tif
        o.price = 0 if is_market_like(otype) else price
        o.stop_price = stop_price if is_stop(otype) else 0
        o.trailing_delta = trailing_delta
        if trailing_delta:
            trail_stop(o, self.last_price)
        o.qty = qty
        o.stp = stp
        o.status = ST_NEW
        self._seq += 1
        o.seq = self._seq
        if is_stop(otype):
            if stop_triggers(o, self.last_price):
                self._release(slot)
                return -REJ_WOULD_TRIGGER
            if self._n_stops >= self._cap_stops:
                self._release(slot)
                return -REJ_FULL
        if not self._lock(slot):
            self._release(slot)
            return -REJ_INSUFFICIENT_BALANCE
        o.order_id = self.next_order_id
        self.next_order_id += 1
        self._hput(o.order_id, slot)
        if is_stop(otype):
            o.working = 0
            self._stops[self._n_stops] = slot
            self._n_stops += 1
            self._emit(slot, EV_NEW, -1, 0, 0, 0, 0, 0, 0)
            return o.order_id
        o.working = 1
        self._emit(slot, EV_NEW, -1, 0, 0, 0, 0, 0, 0)
        oid = o.order_id
        self._activate(slot)
        if self._n_stops:
            self._check_stops()
        return oid

    cdef int c_cancel(self, int64_t order_id, int32_t account):
        cdef int32_t slot = self._hget(order_id)
        cdef int32_t i
        cdef order_t* o
        if slot < 0:
            return -REJ_UNKNOWN_ORDER
        o = &self._orders[slot]
        if account >= 0 and o.account != account:
            return -REJ_UNKNOWN_ORDER
        if o.working:
            self._unlink(slot)
        else:
            for i in range(self._n_stops):
                if self._stops[i] == slot:
                    if i < self._n_stops - 1:
                        memmove(&self._stops[i], &self._stops[i + 1],
                                (self._n_stops - 1 - i) * sizeof(int32_t))
                    self._n_stops -= 1
                    break
        self._finish(slot, ST_CANCELED, EV_CANCELED)
        return 0

    # ------------------------------------------------------------- public API ----

    def submit(self, int32_t account, int side, int otype, int tif, int64_t price, int64_t qty,
               int64_t stop_price=0, int stp=0, int64_t trailing_delta=0):
        """Submit an order; return its id (> 0) or a negated ``REJ_*`` code.

        The order's reports (accept, fills, expiry) are appended to the event buffer.
        ``trailing_delta`` (BIPS, STOP_LOSS / STOP_LOSS_LIMIT without ``stop_price``): the
        stop price trails the last price from now on.
        """
        if side < 0 or otype < 0 or tif < 0 or stp < 0:
            return -REJ_BAD_PARAM
        return self.c_submit(account, <uint8_t>side, <uint8_t>otype, <uint8_t>tif, price, qty,
                             stop_price, <uint8_t>stp, trailing_delta)

    def cancel(self, int64_t order_id, int32_t account=-1):
        """Cancel an open order; return 0 or ``-REJ_UNKNOWN_ORDER``.

        ``account`` >= 0 restricts the cancel to that account's orders.
        """
        return self.c_cancel(order_id, account)

    def order(self, int64_t order_id):
        """Return an open order as a dict, or None when it is not open."""
        cdef int32_t slot = self._hget(order_id)
        cdef order_t* o
        if slot < 0:
            return None
        o = &self._orders[slot]
        return {
            "order_id": o.order_id, "account": o.account, "side": o.side, "type": o.otype,
            "tif": o.tif, "price": o.price, "stop_price": o.stop_price,
            "trailing_delta": o.trailing_delta, "qty": o.qty,
            "filled": o.filled, "cum_quote": o.cum_quote, "locked": o.locked,
            "status": o.status, "working": bool(o.working), "stp": o.stp,
        }

    def depth(self, int limit=0):
        """Return ``(bids, asks)``: lists of ``(price, qty)`` best first, ``limit`` per side."""
        cdef int side, i, n, stop
        out = []
        for side in range(2):
            n = self._n_levels[side]
            stop = -1 if limit <= 0 or limit >= n else n - 1 - limit
            out.append([(self._levels[side][i].price, self._levels[side][i].qty)
                        for i in range(n - 1, stop, -1)])
        return out[0], out[1]

    def level_orders(self, int side, int64_t price):
        """Return the order ids at one price level in queue (priority) order."""
        cdef int32_t idx = self._find_level(<uint8_t>side, price)
        cdef int32_t s
        if idx < 0:
            return []
        out = []
        s = self._levels[side][idx].head
        while s >= 0:
            out.append(self._orders[s].order_id)
            s = self._orders[s].next
        return out

    def resume(self, int64_t next_order_id, int64_t next_trade_id, int64_t last_price):
        """Go on from a saved book (a restart from a saved state): the next order and trade
        ids and the last trade price the stops compare with. Once the book holds an order
        the ids only go forward (ValueError)."""
        if self.n_orders and (next_order_id < self.next_order_id
                              or next_trade_id < self.next_trade_id):
            raise ValueError("order and trade ids only go forward")
        if next_order_id <= 0 or next_trade_id <= 0:
            raise ValueError("ids must be positive")
        self.next_order_id = next_order_id
        self.next_trade_id = next_trade_id
        self.last_price = last_price

    def level_qty(self, int side, int64_t price):
        """Return the total open quantity at one price (0 when there is no level)."""
        cdef int32_t idx = self._find_level(<uint8_t>side, price)
        return 0 if idx < 0 else self._levels[side][idx].qty

    def best(self, int side):
        """Return ``(price, qty)`` of the best level of ``side``, or None."""
        cdef int32_t n = self._n_levels[side]
        if n == 0:
            return None
        return (self._levels[side][n - 1].price, self._levels[side][n - 1].qty)

    @property
    def n_events(self):
        """Number of events in the buffer."""
        return self._n_events

    @property
    def n_stops(self):
        """Number of stop orders waiting for a trigger."""
        return self._n_stops

    def events(self, bint clear=True):
        """Return the buffered events as tuples and (by default) clear the buffer.

        Each tuple is ``(kind, order_id, account, side, status, trade_id, price, qty,
        quote_qty, commission, filled, cum_quote, counter_id, is_maker)``; copies, not views.
        """
        cdef int32_t i
        cdef event_t* e
        out = []
        for i in range(self._n_events):
            e = &self._events[i]
            out.append((e.kind, e.order_id, e.account, e.side, e.status, e.trade_id, e.price,
                        e.qty, e.quote_qty, e.commission, e.filled, e.cum_quote, e.counter_id,
                        e.is_maker))
        if clear:
            self._n_events = 0
        return out

    def clear_events(self):
        """Drop the buffered events."""
        self._n_events = 0

    def check_invariants(self):
        """Raise AssertionError when the book's internal structure is inconsistent (tests)."""
        cdef int side, i
        cdef int32_t s, cnt
        cdef int64_t tot
        cdef level_t* lv
        for side in range(2):
            for i in range(self._n_levels[side]):
                lv = &self._levels[side][i]
                if i > 0:
                    if side == SIDE_BUY:
                        assert self._levels[side][i - 1].price < lv.price, "bids unsorted"
                    else:
                        assert self._levels[side][i - 1].price > lv.price, "asks unsorted"
                s = lv.head
                tot = 0
                cnt = 0
                while s >= 0:
                    assert self._orders[s].price == lv.price, "order in wrong level"
                    assert self._orders[s].filled < self._orders[s].qty, "filled order resting"
                    tot += self._orders[s].qty - self._orders[s].filled
                    cnt += 1
                    s = self._orders[s].next
                assert tot == lv.qty, "level qty mismatch"
                assert cnt == lv.count and cnt > 0, "level count mismatch"
        if self._n_levels[0] and self._n_levels[1]:
            assert (self._levels[0][self._n_levels[0] - 1].price
                    < self._levels[1][self._n_levels[1] - 1].price), "book crossed"
