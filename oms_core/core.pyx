"""The compiled OMS core (see core.pxd). Semantics are those of the reference model in
oms_core/reference/model.py, function for function; property tests hold the two together."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memset

from oms_core.heaps cimport HeapSet, heap_entry_t
from oms_core.index cimport PairIndex
from oms_core.ledger cimport Ledger, trip_t
from oms_core.orders cimport OrderTable
from oms_core.risk cimport RiskChecker, bucket_configure, bucket_take
from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport *

import json
import struct

from oms_core.limits import LIMIT_DEFAULTS, check_limit_value

SNAPSHOT_MAGIC = b"OMSSNAP1"

ORDER_FIELDS = (
    "order_id", "cl_ord_id", "account", "strategy", "instrument", "side", "order_type", "tif",
    "flags", "price", "trigger", "qty", "expire_ts", "trail_offset", "status", "reason", "hold",
    "filled", "fill_notional", "reserve_price", "pending_price", "pending_qty",
    "trail_anchor", "contingency", "linked_id", "parent_id", "child1_id", "child2_id",
    "group_qty", "exit_reason", "locks_funds", "expiring", "reserved_qty",
    "reserved_notional", "ts_received", "ts_risk", "ts_sent", "ts_ack", "ts_last_fill",
    "ts_done", "anchor", "protect",
)
POSITION_FIELDS = (
    "qty", "cost", "realized", "fees", "open_buy", "open_sell", "entry_ts", "trip_realized",
    "exposure", "unrealized", "unprotected",
)
ACCOUNT_FIELDS = (
    "kill", "open_orders", "open_buy_notional", "open_sell_notional", "gross", "net",
    "realized", "fees", "unrealized", "day_start_pnl", "peak_pnl", "day_start_ts",
)
ANY = ANY_ID
cdef int64_t NS_PER_DAY = 86_400_000_000_000
# client order ids the core gives the orders it places itself when a protective child is
# refused: RETRY_CL or FLATTEN_CL | the refused order's creation sequence
RETRY_CL = 1 << 63
FLATTEN_CL = 3 << 62


cdef inline bint _terminal(int status) noexcept nogil:
    return (status == ST_FILLED or status == ST_CANCELED or status == ST_REJECTED
            or status == ST_EXPIRED)


cdef inline bint _priced(int order_type) noexcept nogil:
    return order_type == TYPE_LIMIT or order_type == TYPE_STOP_LIMIT


cdef inline bint _stop_type(int order_type) noexcept nogil:
    return order_type >= TYPE_STOP_MARKET and order_type <= TYPE_TRAILING_STOP


cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline int64_t _live_qty(order_t* o) noexcept nogil:
    if o.status == ST_PENDING_REPLACE and o.pending_qty > o.qty:
        return o.pending_qty
    return o.qty


cdef inline int _working_status(order_t* o) noexcept nogil:
    if o.filled > 0:
        return ST_PARTIALLY_FILLED
    return ST_NEW if o.ts_ack else ST_PENDING_NEW


cdef inline int64_t _day_end(int64_t ts) noexcept nogil:
    """Expiry of a DAY order: the end of the UTC day of ``ts``."""
    return (ts // NS_PER_DAY + 1) * NS_PER_DAY


cdef inline int64_t _away_from(int64_t anchor, int64_t offset, int64_t tick) noexcept nogil:
    """anchor + offset on the tick grid, rounded away from the anchor (never nearer than
    asked), kept within one tick .. MAX_RAW."""
    cdef int64_t p = anchor + offset
    if p > MAX_RAW:
        p = MAX_RAW
    if p < tick:
        return tick
    if p % tick:
        p = p - p % tick + (tick if offset > 0 else 0)
        if p > MAX_RAW:
            p -= tick
    return p


cdef inline int64_t _protect_price(order_t* entry, int64_t offset, int64_t tick) noexcept nogil:
    """A released child's price: its distance from the entry's average fill price (or from the
    entry's anchor), and never on the wrong side of that fill price."""
    cdef int64_t fill = entry.fill_notional // entry.filled
    cdef int64_t anchor = fill if entry.protect & PROTECT_ON_FILL else entry.anchor
    cdef int64_t p = _away_from(anchor, offset, tick)
    if (offset > 0 and p <= fill) or (offset < 0 and p >= fill):
        p = _away_from(fill, offset, tick)
    return p


cdef int _compare_ids(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<uint64_t*>a)[0]
    cdef uint64_t y = (<uint64_t*>b)[0]
    return -1 if x < y else (1 if x > y else 0)


cdef class OmsCore:
    """The OMS state: instruments, accounts, orders, positions, balances and risk limits.

    Parameters
    ----------
    max_orders : int
        Order slots; closed orders are forgotten, oldest first, when slots run out.
    max_accounts, max_instruments, max_assets, max_strategies, max_exchanges : int
        Id ranges; ids are dense small integers below these.
    trade_window : int
        How many recent exchange trade ids are remembered to drop duplicate fills.
    max_strategy_positions : int
        Account x strategy x instrument positions that can exist.
    max_day_orders : int
        Orders accepted per trading day, each one's client order id refused for the rest of
        the day (0: 4 x max_orders); past that, new orders are refused TABLE_FULL until
        start_of_day.
    """

    def __cinit__(self, uint32_t max_orders=1 << 16, uint32_t max_accounts=64,
                  uint32_t max_instruments=256, uint32_t max_assets=64,
                  uint32_t max_strategies=64, uint32_t max_exchanges=16,
                  uint64_t trade_window=1 << 16, uint32_t max_strategy_positions=1 << 14,
                  uint64_t max_day_orders=0):
        if trade_window == 0:
            raise ValueError("trade_window must be positive")
        self.n_instruments = max_instruments
        self.n_assets = max_assets
        self.instruments = <instrument_t*>PyMem_Malloc(max_instruments * sizeof(instrument_t))
        self.asset_precision = <uint32_t*>PyMem_Malloc(max_assets * sizeof(uint32_t))
        self.fee_pairs = <uint32_t*>PyMem_Malloc(max_assets * max_assets * sizeof(uint32_t))
        self.seen_k1 = <uint64_t*>PyMem_Malloc(trade_window * sizeof(uint64_t))
        self.seen_k2 = <uint32_t*>PyMem_Malloc(trade_window * sizeof(uint32_t))
        self.scratch = <uint32_t*>PyMem_Malloc(max_orders * sizeof(uint32_t))
        self.scratch_ids = <uint64_t*>PyMem_Malloc(max_orders * sizeof(uint64_t))
        self.events_capacity = 1024
        self.events = <event_t*>PyMem_Malloc(self.events_capacity * sizeof(event_t))
        if (not self.instruments or not self.asset_precision or not self.fee_pairs
                or not self.seen_k1
                or not self.seen_k2 or not self.scratch or not self.scratch_ids
                or not self.events):
            raise MemoryError("OmsCore: allocation failed")
        memset(self.instruments, 0, max_instruments * sizeof(instrument_t))
        memset(self.asset_precision, 0xFF, max_assets * sizeof(uint32_t))
        memset(self.fee_pairs, 0xFF, max_assets * max_assets * sizeof(uint32_t))
        self.trade_window = trade_window
        self.orders = OrderTable(max_orders, max_accounts)
        self.ledger = Ledger(max_accounts, max_instruments, max_assets, max_strategy_positions)
        self.risk = RiskChecker(max_accounts, max_strategies, max_exchanges)
        self.resting = HeapSet(max_accounts * max_instruments * 2, max_orders)
        self.triggers = HeapSet(max_instruments * 3, max_orders)
        self.expiries = HeapSet(1, max_orders)
        self.seen_trades = PairIndex(trade_window)
        self.day_ids = PairIndex(max_day_orders or 4 * <uint64_t>max_orders)
        self.risk.day_ids = self.day_ids
        self.risk.instruments = self.instruments
        self.risk.n_instruments = max_instruments
        self.risk.ledger = self.ledger
        self.risk.orders = self.orders
        self.risk.resting = self.resting
        self.symbols = {}

    def __dealloc__(self):
        PyMem_Free(self.instruments)
        PyMem_Free(self.asset_precision)
        PyMem_Free(self.fee_pairs)
        PyMem_Free(self.seen_k1)
        PyMem_Free(self.seen_k2)
        PyMem_Free(self.scratch)
        PyMem_Free(self.scratch_ids)
        PyMem_Free(self.events)

    # ------------------------------------------------------------------ configuration
    def add_asset(self, uint32_t asset_id, str name, int precision):
        """Register an asset whose balances count units of 10**-precision."""
        if asset_id >= self.n_assets or self.asset_precision[asset_id] != 0xFFFFFFFFU:
            raise ValueError(f"asset id {asset_id} out of range or already added")
        if not 0 <= precision <= 18:
            raise ValueError(f"asset {name}: precision {precision} outside 0..18")
        self.asset_precision[asset_id] = precision

    def add_instrument(self, uint32_t instrument_id, str symbol, uint32_t exchange_id,
                       uint32_t base_asset, uint32_t quote_asset, int price_precision,
                       int qty_precision, int64_t tick, int64_t lot, int64_t min_qty,
                       int64_t max_qty, int64_t min_notional, bint tradable=True,
                       bint native_stops=False):
        """Register an instrument; tick, lot and the minima are raw integers."""
        if instrument_id >= self.n_instruments or self.instruments[instrument_id].active:
            raise ValueError(f"instrument id {instrument_id} out of range or already added")
        if exchange_id >= self.risk.n_exchanges:
            raise ValueError(f"{symbol}: exchange id {exchange_id} out of range")
        if (base_asset >= self.n_assets or quote_asset >= self.n_assets
                or self.asset_precision[base_asset] == 0xFFFFFFFFU
                or self.asset_precision[quote_asset] == 0xFFFFFFFFU):
            raise ValueError(f"{symbol}: unknown base or quote asset")
        cdef int shift = <int>self.asset_precision[quote_asset] - price_precision - qty_precision
        if shift < 0:
            raise ValueError(
                f"{symbol}: quote asset precision must be >= price + quantity precision")
        cdef int base_shift = <int>self.asset_precision[base_asset] - qty_precision
        if base_shift < 0:
            raise ValueError(f"{symbol}: base asset precision must be >= quantity precision")
        if tick <= 0 or lot <= 0 or min_qty < 0 or max_qty <= 0 or min_notional < 0:
            raise ValueError(f"{symbol}: tick, lot and max qty must be positive")
        cdef instrument_t* inst = &self.instruments[instrument_id]
        memset(inst, 0, sizeof(instrument_t))
        inst.tick = tick
        inst.lot = lot
        inst.min_qty = min_qty
        inst.max_qty = max_qty
        inst.min_notional = min_notional
        inst.notional_mult = int(10 ** shift)
        inst.base_mult = int(10 ** base_shift)
        fee_shift = <int>self.asset_precision[quote_asset] - price_precision - <int>(
            self.asset_precision[base_asset])
        inst.fee_mult = int(10 ** fee_shift) if fee_shift > 0 else 1
        inst.fee_div = int(10 ** -fee_shift) if fee_shift < 0 else 1
        inst.base_asset = base_asset
        inst.quote_asset = quote_asset
        inst.exchange_id = exchange_id
        inst.price_precision = price_precision
        inst.qty_precision = qty_precision
        inst.tradable = tradable
        inst.native_stops = native_stops
        inst.active = 1
        self.symbols[instrument_id] = symbol
        self._index_fee_pairs()

    def _index_fee_pairs(self):
        """Derive fee_pairs from the instruments: a fee in asset F of a fill in quote asset Q
        is valued at the last price of the lowest-id instrument F/Q."""
        cdef uint32_t i, key
        memset(self.fee_pairs, 0xFF, self.n_assets * self.n_assets * sizeof(uint32_t))
        for i in range(self.n_instruments):
            if self.instruments[i].active:
                key = self.instruments[i].base_asset * self.n_assets + (
                    self.instruments[i].quote_asset)
                if self.fee_pairs[key] == NO_SLOT:
                    self.fee_pairs[key] = i

    def add_account(self, uint32_t account_id):
        """Register an account with the default limits (oms_core.limits.LIMIT_DEFAULTS)."""
        if account_id >= self.risk.n_accounts or self.risk.accounts[account_id].active:
            raise ValueError(f"account id {account_id} out of range or already added")
        cdef account_t* acct = &self.risk.accounts[account_id]
        memset(acct, 0, sizeof(account_t))
        for limit, value in LIMIT_DEFAULTS.items():
            acct.limits[<int>limit] = value
        acct.active = 1

    def add_strategy(self, uint32_t strategy_id, bint single_entry=False):
        if (strategy_id == 0 or strategy_id >= self.risk.n_strategies
                or self.risk.strategy_active[strategy_id]):
            raise ValueError(f"strategy id {strategy_id} out of range or already added")
        self.risk.strategy_active[strategy_id] = 1
        self.risk.strategy_single_entry[strategy_id] = single_entry

    def set_limit(self, uint32_t account_id, int limit, int64_t value):
        """Change one limit of an account at run time; return a Reject code."""
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            return R_UNKNOWN_ACCOUNT
        check_limit_value(limit, value)
        cdef account_t* acct = &self.risk.accounts[account_id]
        cdef int64_t* lim = acct.limits
        cdef uint32_t e
        lim[limit] = value
        if limit == LIM_ORDER_RATE or limit == LIM_ORDER_BURST:
            bucket_configure(&acct.order_bucket, lim[LIM_ORDER_RATE], lim[LIM_ORDER_BURST])
        elif limit == LIM_MESSAGE_RATE or limit == LIM_MESSAGE_BURST:
            bucket_configure(&acct.message_bucket, lim[LIM_MESSAGE_RATE],
                             lim[LIM_MESSAGE_BURST])
        elif limit == LIM_REJECT_RATE or limit == LIM_REJECT_BURST:
            bucket_configure(&acct.reject_bucket, lim[LIM_REJECT_RATE], lim[LIM_REJECT_BURST])
        elif limit == LIM_EXCHANGE_RATE or limit == LIM_EXCHANGE_BURST:
            for e in range(self.risk.n_exchanges):
                bucket_configure(&self.risk.exchange_buckets[account_id * self.risk.n_exchanges
                                                             + e],
                                 lim[LIM_EXCHANGE_RATE], lim[LIM_EXCHANGE_BURST])
        return R_OK

    def get_limit(self, uint32_t account_id, int limit):
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            raise KeyError(f"unknown account {account_id}")
        if limit <= 0 or limit >= N_LIMITS:
            raise ValueError(f"unknown limit {limit}")
        return self.risk.accounts[account_id].limits[limit]

    def set_kill(self, int level, uint32_t target, int mode):
        """Kill switch: level 0 global, 1 account, 2 strategy; mode a KillMode."""
        if mode < KILL_OFF or mode > KILL_HALT:
            raise ValueError(f"kill mode {mode} unknown")
        if level == 0:
            self.risk.global_kill = mode
        elif level == 1:
            if target >= self.risk.n_accounts or not self.risk.accounts[target].active:
                return R_UNKNOWN_ACCOUNT
            self.risk.accounts[target].kill = mode
        elif level == 2:
            if target >= self.risk.n_strategies or not self.risk.strategy_active[target]:
                return R_UNKNOWN_STRATEGY
            self.risk.strategy_kill[target] = mode
        else:
            raise ValueError(f"kill level {level} not 0, 1 or 2")
        return R_OK

    def deposit(self, uint32_t account_id, uint32_t asset_id, int64_t amount):
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            return R_UNKNOWN_ACCOUNT
        if asset_id >= self.n_assets or self.asset_precision[asset_id] == 0xFFFFFFFFU:
            raise ValueError(f"unknown asset {asset_id}")
        self.ledger.balance(account_id, asset_id).total += amount
        return R_OK

    # ------------------------------------------------------------------ market prices
    def set_price(self, uint32_t instrument_id, int64_t last, int64_t bid, int64_t ask,
                  int64_t ts, bint stale=False):
        """Record reference prices and trigger the held stop orders they reach. A ``last`` of 0
        means the update carries no trade price (a book-only update): the last trade stands."""
        return self.c_set_price(instrument_id, last, bid, ask, ts, stale)

    cdef int c_set_price(self, uint32_t instrument, int64_t last, int64_t bid, int64_t ask,
                         int64_t ts, bint stale) except -1:
        if instrument >= self.n_instruments or not self.instruments[instrument].active:
            return R_UNKNOWN_INSTRUMENT
        cdef instrument_t* inst = &self.instruments[instrument]
        if last > 0:  # 0: a book-only update (no trade seen); the last trade price stands
            inst.last = last
        inst.bid = bid
        inst.ask = ask
        inst.price_ts = ts
        inst.stale = stale
        if last > 0:
            self._trigger_stops(instrument, last, ts)
        return R_OK

    cdef int _trigger_stops(self, uint32_t instrument, int64_t last, int64_t ts) except -1:
        cdef HeapSet h = self.triggers
        cdef uint32_t rises = instrument * 3, falls = instrument * 3 + 1
        cdef uint32_t trailing = instrument * 3 + 2
        cdef uint32_t n = 0, i, slot
        cdef order_t* o
        cdef heap_entry_t* top
        cdef bint hit
        # rises-to heap (buy stops, sell take-profits) fires when last >= trigger
        while h.size(rises) and h.top(rises).key <= last:
            slot = h.top(rises).slot
            h.remove(rises, slot)
            self.scratch_ids[n] = self.orders.slots[slot].order_id
            n += 1
        # falls-to heap (sell stops, buy take-profits), keyed by -trigger
        while h.size(falls) and h.top(falls).key <= -last:
            slot = h.top(falls).slot
            h.remove(falls, slot)
            self.scratch_ids[n] = self.orders.slots[slot].order_id
            n += 1
        # trailing stops move their anchor with the market, then fire on the retrace
        i = 0
        while i < h.size(trailing):
            slot = h.entry(trailing, i).slot
            o = &self.orders.slots[slot]
            if o.side == SIDE_BUY:
                if last < o.trail_anchor:
                    o.trail_anchor = last
                hit = last >= o.trail_anchor + o.trail_offset
            else:
                if last > o.trail_anchor:
                    o.trail_anchor = last
                hit = last <= o.trail_anchor - o.trail_offset
            if hit:
                self.scratch_ids[n] = o.order_id
                n += 1
            i += 1
        if n == 0:
            return 0
        qsort(self.scratch_ids, n, sizeof(uint64_t), _compare_ids)
        cdef order_t* partner
        for i in range(n):
            o = &self.orders.slots[self.orders.slot_of(self.scratch_ids[i])]
            if _terminal(o.status):  # refused above, its held partner went with it
                continue
            partner = self._venue_partner(o)
            if partner != NULL:
                # the partner could fill at the venue while o is on its way and both would
                # close the pair: o waits, visibly, until the partner's cancel is confirmed
                o.hold = HOLD_FIRED
                self._sync_heaps(o)
                self._emit(EV_ORDER_UPDATE, o, o.status, o.filled, 0, ts)
                self._request_cancel(partner, ts)
            else:
                o.hold = HOLD_NONE
                self._sync_heaps(o)
                self._send_checked(o, ts)
        return 0

    cdef int _fired_check(self, order_t* o) noexcept nogil:
        """The checks a fired order still passes as it goes out: under a kill switch (HALT or
        REDUCE_ONLY, any level) only one that reduces the position, so protection still
        works; never one that would trade with the account's own resting orders at or through
        its price (a market order's is the last trade price, where it fired: an own order
        far from the market does not block a stop)."""
        cdef bint reduce_mode = False
        cdef int code = self.risk.kill_switch(&self.risk.accounts[o.account], o.strategy,
                                              &reduce_mode)
        cdef int64_t held = self.ledger.position(o.account, o.instrument).qty
        cdef int64_t qty = o.qty - o.filled
        cdef bint is_buy = o.side == SIDE_BUY
        if code == R_OK and reduce_mode:
            code = R_REDUCE_ONLY_MODE
        if code != R_OK and not (-held >= qty if is_buy else held >= qty):
            return code
        cdef int64_t price = (o.price if o.order_type == TYPE_STOP_LIMIT
                              else self.instruments[o.instrument].last)
        if self.risk.crosses_own(o.account, o.instrument, is_buy, TYPE_LIMIT, price):
            return R_SELF_TRADE
        return R_OK

    cdef int _send_checked(self, order_t* o, int64_t ts) except -1:
        """Send a fired order, or end it REJECTED with the reason a check gives; a bracket's
        protective order refused so raises PROTECTION_REFUSED (nothing placed instead) and
        marks a position still held unprotected: never left unprotected in silence."""
        cdef int code = self._fired_check(o)
        if code == R_OK:
            return self._emit(EV_SEND_ORDER, o, 0, 0, 0, ts)
        o.reason = code
        # the slot may be reused once the order ends: copy what the alert needs first
        cdef bint protective = o.parent_id != 0
        cdef uint32_t account = o.account, strategy = o.strategy, instrument = o.instrument
        cdef uint64_t order_id = o.order_id
        self._set_status(o, ST_REJECTED, ts)
        if protective:
            self._emit_raw(EV_ALERT, ALERT_PROTECTION_REFUSED, account, instrument, strategy,
                           order_id, code, 0, ts)
            if self.ledger.position(account, instrument).qty != 0:
                self._mark_protected(account, strategy, instrument, order_id, True, ts)
        return 0

    cdef order_t* _venue_partner(self, order_t* o) noexcept nogil:
        """The live OCO partner of o that is at the venue (or on its way there), else NULL."""
        if o.contingency != CONT_OCO or not o.linked_id:
            return NULL
        cdef order_t* partner = self.orders.find(o.linked_id)
        if partner == NULL or _terminal(partner.status) or partner.hold != HOLD_NONE:
            return NULL
        return partner

    cdef int _send_fired(self, order_t* fired, order_t* partner, int64_t ts) except -1:
        """The partner of a fired leg is closed at the venue: send the fired leg for what the
        pair has left, or close it when the partner filled (the pair is done)."""
        cdef int64_t left = fired.group_qty - partner.filled - fired.filled
        if partner.status == ST_FILLED or left <= 0:
            return self._request_cancel(fired, ts)
        if fired.filled + left < fired.qty:
            fired.qty = fired.filled + left
        fired.hold = HOLD_NONE
        self._sync(fired)
        self._emit(EV_ORDER_UPDATE, fired, fired.status, fired.filled, 0, ts)
        return self._send_checked(fired, ts)

    def mark_to_market(self, int64_t ts):
        """Revalue every position at its instrument's last price; run the loss breakers."""
        self.c_mark_to_market(ts)

    cdef void c_mark_to_market(self, int64_t ts) except *:
        cdef uint32_t a, i
        cdef account_t* acct
        for a in range(self.risk.n_accounts):
            acct = &self.risk.accounts[a]
            if not acct.active:
                continue
            for i in range(self.n_instruments):
                if self.instruments[i].active and self.instruments[i].last > 0:
                    self._revalue(acct, a, i, self.instruments[i].last)
        for a in range(self.risk.n_accounts):
            if self.risk.accounts[a].active:
                self._check_breakers(a, ts)

    def start_of_day(self, int64_t ts):
        cdef uint32_t a
        cdef account_t* acct
        for a in range(self.risk.n_accounts):
            acct = &self.risk.accounts[a]
            if acct.active:
                acct.day_start_pnl = acct.realized - acct.fees + acct.unrealized
                acct.day_start_ts = ts
        self.day_ids.clear()
        self.day_orders = 0
        self.day_first_order_id = self.orders.next_sequence << self.orders.slot_bits

    def day_start_ts(self):
        """When the current trading day began (the last start_of_day), 0 before the first."""
        cdef uint32_t a
        cdef int64_t ts = 0
        for a in range(self.risk.n_accounts):
            if self.risk.accounts[a].active and self.risk.accounts[a].day_start_ts > ts:
                ts = self.risk.accounts[a].day_start_ts
        return ts

    # ------------------------------------------------------------------ commands
    def submit(self, uint32_t account_id, uint32_t strategy_id, uint32_t instrument_id,
               uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
               int64_t trigger, int64_t qty, int flags, int64_t expire_ts, int64_t ts,
               int64_t trail_offset=0):
        """Check and insert one order. Return (Reject code, order id or 0)."""
        cdef uint64_t order_id = 0
        cdef int code = self.c_submit(account_id, strategy_id, instrument_id, cl_ord_id, side,
                                      order_type, tif, price, trigger, qty, flags, expire_ts,
                                      ts, trail_offset, &order_id)
        return code, order_id

    cdef int c_submit(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                      uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                      int64_t trigger, int64_t qty, int flags, int64_t expire_ts, int64_t ts,
                      int64_t trail_offset, uint64_t* order_id) except -1:
        cdef int64_t reserve_price = 0
        if tif == TIF_DAY and expire_ts == 0:
            expire_ts = _day_end(ts)
        if side == SIDE_SELL:
            qty = self._single_entry_qty(account, strategy, instrument, qty)
        cdef int code = self.risk.check_new(account, strategy, instrument, cl_ord_id, side,
                                            order_type, tif, price, trigger, qty, flags,
                                            expire_ts, ts, trail_offset, True, &reserve_price)
        order_id[0] = 0
        if code != R_OK:
            return self._rejected(account, code, ts)
        cdef order_t* o = self._insert(account, strategy, instrument, cl_ord_id, side,
                                       order_type, tif, price, trigger, qty, flags, expire_ts,
                                       ts, trail_offset, reserve_price, False, False)
        if o == NULL:
            return self._rejected(account, R_TABLE_FULL, ts)
        self._hold_or_send(o, ts)
        order_id[0] = o.order_id
        return R_OK

    def submit_oco(self, uint32_t account_id, uint32_t strategy_id, uint32_t instrument_id,
                   uint64_t cl_ord_id_1, uint64_t cl_ord_id_2, int side, int type_1,
                   int64_t price_1, int64_t trigger_1, int type_2, int64_t price_2,
                   int64_t trigger_2, int64_t qty, int tif, int64_t ts):
        """Two legs of one size; when one fills or ends the other is canceled.
        Return (code, leg 1 id, leg 2 id)."""
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            return R_UNKNOWN_ACCOUNT, 0, 0
        if cl_ord_id_1 == cl_ord_id_2:
            return self._rejected(account_id, R_DUPLICATE_CLIENT_ORDER_ID, ts), 0, 0
        if type_1 == TYPE_TRAILING_STOP or type_2 == TYPE_TRAILING_STOP:
            return self._rejected(account_id, R_INVALID_CONTINGENCY, ts), 0, 0
        cdef int64_t rp1 = 0, rp2 = 0
        cdef int64_t expire = _day_end(ts) if tif == TIF_DAY else 0
        cdef int code = self.risk.check_new(account_id, strategy_id, instrument_id,
                                            cl_ord_id_1, side, type_1, tif, price_1, trigger_1,
                                            qty, 0, expire, ts, 0, True, &rp1)
        if code != R_OK:
            return self._rejected(account_id, code, ts), 0, 0
        code = self.risk.check_new(account_id, strategy_id, instrument_id, cl_ord_id_2, side,
                                   type_2, tif, price_2, trigger_2, qty, 0, expire, ts, 0, False,
                                   &rp2)
        if code != R_OK:
            return self._rejected(account_id, code, ts), 0, 0
        if self.day_orders + 2 > self.day_ids.max_items or not self.orders.has_room(2):
            return self._rejected(account_id, R_TABLE_FULL, ts), 0, 0
        cdef order_t* a = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_1,
                                       side, type_1, tif, price_1, trigger_1, qty, 0, expire, ts,
                                       0, rp1, True, False)
        cdef order_t* b = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_2,
                                       side, type_2, tif, price_2, trigger_2, qty, 0, expire, ts,
                                       0, rp2, True, False)
        self._link_oco(a, b, qty)
        self._hold_or_send(a, ts)
        self._hold_or_send(b, ts)
        return R_OK, a.order_id, b.order_id

    def submit_bracket(self, uint32_t account_id, uint32_t strategy_id,
                       uint32_t instrument_id, uint64_t cl_ord_id, uint64_t tp_cl_ord_id,
                       uint64_t sl_cl_ord_id, int side, int entry_type, int64_t entry_price,
                       int64_t qty, int64_t tp_price, int64_t sl_trigger, int tif, int64_t ts,
                       int64_t anchor=0, int64_t expire_ts=0):
        """Entry plus take-profit (limit) and stop-loss (stop market) released when the entry
        ends with a fill, sized to what it filled; with both they form an OCO pair. A zero
        price leaves a leg out (one leg: a plain OTO). Return (code, entry, tp, sl ids).

        A GTD (``expire_ts``) or DAY (the end of the UTC day) bracket expires whole: the entry
        and its children carry the same expiry; otherwise the children are GTC.

        ``tp_price`` and ``sl_trigger`` state distances from ``anchor``, the price they were
        computed from (0: the limit price of a limit entry, the mid of a market entry's
        arrival, floored to the tick). When the entry ends, each child gets its price from
        that distance: measured from the entry's average fill price (limit PROTECT_ANCHOR =
        fill, the default) or from the anchor (arrival), never on the wrong side of the fill.
        """
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            return R_UNKNOWN_ACCOUNT, 0, 0, 0
        if instrument_id >= self.n_instruments or not self.instruments[instrument_id].active:
            return self._rejected(account_id, R_UNKNOWN_INSTRUMENT, ts), 0, 0, 0
        cdef instrument_t* inst = &self.instruments[instrument_id]
        cdef int64_t base = anchor
        if base == 0 and entry_type == TYPE_LIMIT:
            base = entry_price
        elif base == 0 and inst.bid > 0 and inst.ask >= inst.bid:
            base = (inst.bid + inst.ask) // 2
            base -= base % inst.tick
        elif base == 0:
            base = inst.last
        cdef int code = R_INVALID_CONTINGENCY
        if entry_type == TYPE_MARKET or entry_type == TYPE_LIMIT:
            code = self._check_bracket(account_id, instrument_id, cl_ord_id, tp_cl_ord_id,
                                       sl_cl_ord_id, side, base, tp_price, sl_trigger)
        if code != R_OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        cdef int64_t rp = 0
        if tif == TIF_DAY and expire_ts == 0:
            expire_ts = _day_end(ts)
        code = self.risk.check_new(account_id, strategy_id, instrument_id, cl_ord_id, side,
                                   entry_type, tif, entry_price, 0, qty, 0, expire_ts, ts, 0,
                                   True, &rp)
        if code != R_OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        cdef uint32_t needed = 1 + (tp_price > 0) + (sl_trigger > 0)
        if (self.day_orders + needed > self.day_ids.max_items
                or not self.orders.has_room(needed)):
            return self._rejected(account_id, R_TABLE_FULL, ts), 0, 0, 0
        cdef order_t* entry = self._insert(account_id, strategy_id, instrument_id, cl_ord_id,
                                           side, entry_type, tif, entry_price, 0, qty, 0,
                                           expire_ts, ts, 0, rp, False, False)
        cdef int child_tif = tif if tif == TIF_GTD or tif == TIF_DAY else TIF_GTC
        cdef int64_t child_expire = expire_ts if child_tif != TIF_GTC else 0
        entry.anchor = base
        if self.risk.accounts[account_id].limits[LIM_PROTECT_ANCHOR] == ANCHOR_FILL:
            entry.protect = PROTECT_ON_FILL
        cdef int exit_side = SIDE_SELL if side == SIDE_BUY else SIDE_BUY
        cdef order_t* tp = NULL
        cdef order_t* sl = NULL
        if tp_price > 0:
            tp = self._insert(account_id, strategy_id, instrument_id, tp_cl_ord_id, exit_side,
                              TYPE_LIMIT, child_tif, tp_price, 0, qty, FLAG_REDUCE_ONLY,
                              child_expire, ts, 0, tp_price, False, True)
            tp.exit_reason = EXIT_TAKE_PROFIT
            tp.anchor = tp_price - base
            tp.parent_id = entry.order_id
            tp.contingency = CONT_OTO
        if sl_trigger > 0:
            sl = self._insert(account_id, strategy_id, instrument_id, sl_cl_ord_id, exit_side,
                              TYPE_STOP_MARKET, child_tif, 0, sl_trigger, qty, FLAG_REDUCE_ONLY,
                              child_expire, ts, 0, sl_trigger, False, True)
            sl.anchor = sl_trigger - base
            sl.parent_id = entry.order_id
            sl.contingency = CONT_OTO
        if tp != NULL and sl != NULL:
            self._link_oco(tp, sl, qty)
        entry.child1_id = tp.order_id if tp != NULL else (sl.order_id if sl != NULL else 0)
        entry.child2_id = sl.order_id if (tp != NULL and sl != NULL) else 0
        if tp != NULL:
            self._sync(tp)
        if sl != NULL:
            self._sync(sl)
        self._hold_or_send(entry, ts)
        return (R_OK, entry.order_id, tp.order_id if tp != NULL else 0,
                sl.order_id if sl != NULL else 0)

    cdef int _check_bracket(self, uint32_t account, uint32_t instrument, uint64_t cl_ord_id,
                            uint64_t tp_cl, uint64_t sl_cl, int side, int64_t base,
                            int64_t tp_price, int64_t sl_trigger) except -1:
        """The legs' prices against the anchor ``base`` they are distances from: the
        take-profit beyond it, the stop-loss short of it (so each child, placed at the same
        distance from the fill, is on its side of the fill)."""
        cdef instrument_t* inst = &self.instruments[instrument]
        cdef bint buy = side == SIDE_BUY
        if (tp_price < 0 or sl_trigger < 0 or tp_price > MAX_RAW or sl_trigger > MAX_RAW
                or base < 0 or base > MAX_RAW):
            return R_INVALID_CONTINGENCY
        if tp_price % inst.tick or sl_trigger % inst.tick or base % inst.tick:
            return R_PRICE_NOT_TICK_MULTIPLE
        if base == 0 and (tp_price or sl_trigger):
            return R_NO_REFERENCE_PRICE
        if ((tp_price and (tp_price <= base) == buy)
                or (sl_trigger and (sl_trigger >= base) == buy)):
            return R_INVALID_CONTINGENCY
        if tp_price and tp_cl == cl_ord_id:
            return R_DUPLICATE_CLIENT_ORDER_ID
        if sl_trigger and (sl_cl == cl_ord_id or (tp_price and sl_cl == tp_cl)):
            return R_DUPLICATE_CLIENT_ORDER_ID
        if tp_price and (self.orders.client_slot(account, tp_cl) != NO_SLOT
                         or self.day_ids.get(tp_cl, account) != NO_SLOT):
            return R_DUPLICATE_CLIENT_ORDER_ID
        if sl_trigger and (self.orders.client_slot(account, sl_cl) != NO_SLOT
                           or self.day_ids.get(sl_cl, account) != NO_SLOT):
            return R_DUPLICATE_CLIENT_ORDER_ID
        return R_OK

    def cancel(self, uint32_t account_id, uint64_t order_id, int64_t ts):
        return self.c_cancel(account_id, order_id, ts)

    cdef int c_cancel(self, uint32_t account, uint64_t order_id, int64_t ts) except -1:
        if account >= self.risk.n_accounts or not self.risk.accounts[account].active:
            return R_UNKNOWN_ACCOUNT
        bucket_take(&self.risk.accounts[account].message_bucket, ts)  # counted, never refused
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL or o.account != account:
            return R_UNKNOWN_ORDER
        if _terminal(o.status):
            return R_ORDER_CLOSED
        if o.status == ST_PENDING_CANCEL:
            return R_CANCEL_PENDING
        if o.status == ST_PENDING_REPLACE:
            return R_REPLACE_PENDING
        self._request_cancel(o, ts)
        return R_OK

    def cancel_by_client_id(self, uint32_t account_id, uint64_t cl_ord_id, int64_t ts):
        cdef uint64_t order_id = 0
        if account_id < self.risk.n_accounts:
            order_id = self.orders.find_client_id(account_id, cl_ord_id)
        return self.c_cancel(account_id, order_id, ts)

    def mass_cancel(self, uint32_t account_id, uint32_t strategy_id, uint32_t instrument_id,
                    int64_t ts):
        """Cancel the account's live orders, filtered by strategy and instrument (ANY = all).
        Return how many cancels were started."""
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            return 0
        cdef uint32_t n = self.orders.collect_live(account_id, self.scratch)
        cdef uint32_t i, count = 0
        cdef order_t* o
        for i in range(n):
            self.scratch_ids[i] = self.orders.slots[self.scratch[i]].order_id
        for i in range(n):
            o = self.orders.find(self.scratch_ids[i])
            if o == NULL or _terminal(o.status) or o.status == ST_PENDING_CANCEL or (
                    o.status == ST_PENDING_REPLACE):
                continue
            if strategy_id != ANY_ID and o.strategy != strategy_id:
                continue
            if instrument_id != ANY_ID and o.instrument != instrument_id:
                continue
            self._request_cancel(o, ts)
            count += 1
        return count

    def replace(self, uint32_t account_id, uint64_t order_id, int64_t new_price,
                int64_t new_qty, int64_t ts):
        return self.c_replace(account_id, order_id, new_price, new_qty, ts)

    cdef int c_replace(self, uint32_t account, uint64_t order_id, int64_t new_price,
                       int64_t new_qty, int64_t ts) except -1:
        if account >= self.risk.n_accounts or not self.risk.accounts[account].active:
            return R_UNKNOWN_ACCOUNT
        cdef order_t* o = self.orders.find(order_id)
        if o != NULL and o.account != account:
            o = NULL
        cdef int code = self.risk.check_replace(&self.risk.accounts[account], o, new_price,
                                                new_qty, ts)
        if code != R_OK:
            return self._rejected(account, code, ts)
        o.pending_price = new_price
        o.pending_qty = new_qty
        self._set_status(o, ST_PENDING_REPLACE, ts)
        self._emit(EV_SEND_REPLACE, o, 0, new_price, new_qty, ts)
        return R_OK

    # ------------------------------------------------------------------ venue events
    def on_sent(self, uint64_t order_id, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        o.ts_sent = ts
        return R_OK

    def on_ack(self, uint64_t order_id, int64_t ts):
        return self.c_on_ack(order_id, ts)

    cdef int c_on_ack(self, uint64_t order_id, int64_t ts) except -1:
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if _terminal(o.status):
            return R_INVALID_TRANSITION
        if o.ts_ack == 0:
            o.ts_ack = ts
        if o.status == ST_PENDING_NEW or o.status == ST_UNKNOWN:
            self._set_status(o, ST_NEW, ts)
        if o.protect & PROTECT_RETRIED:  # a refused child's retry now rests at the venue
            self._mark_protected(o.account, o.strategy, o.instrument, o.order_id, False, ts)
        return R_OK

    def on_unknown(self, uint64_t order_id, int64_t ts):
        return self.c_on_unknown(order_id, ts)

    cdef int c_on_unknown(self, uint64_t order_id, int64_t ts) except -1:
        """The venue's answer to a submit is in doubt: UNKNOWN until the gateway's query (or
        a reconciliation) says what happened. Only an order never acknowledged nor filled."""
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if o.status == ST_UNKNOWN:
            return R_OK
        if o.status != ST_PENDING_NEW or o.ts_ack != 0 or o.filled != 0:
            return R_INVALID_TRANSITION
        self._set_status(o, ST_UNKNOWN, ts)
        return R_OK

    def on_reject(self, uint64_t order_id, int reason, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if o.ts_ack != 0 or o.filled != 0 or (o.status != ST_PENDING_NEW
                                               and o.status != ST_PENDING_CANCEL
                                               and o.status != ST_UNKNOWN):
            return R_INVALID_TRANSITION
        o.reason = reason
        # a released protective child the venue refused (not one being canceled anyway, nor
        # one whose fired partner now closes the pair)
        if (o.parent_id and o.hold != HOLD_PARENT and o.status == ST_PENDING_NEW
                and not self._partner_fired(o)):
            return self._protection_refused(o, reason, ts)
        self._set_status(o, ST_REJECTED, ts)
        return R_OK

    cdef int64_t _single_entry_qty(self, uint32_t account, uint32_t strategy,
                                   uint32_t instrument, int64_t qty) noexcept nogil:
        """A single-entry sell above the free position, cut to it when the account's
        LIM_CLAMP_SINGLE_ENTRY_SELL is on (else the check refuses it)."""
        if (account >= self.risk.n_accounts or not self.risk.accounts[account].active
                or strategy >= self.risk.n_strategies
                or not self.risk.strategy_single_entry[strategy]
                or not self.risk.accounts[account].limits[LIM_CLAMP_SINGLE_ENTRY_SELL]):
            return qty
        cdef uint32_t i = self.ledger.strategy_index.get(
            (<uint64_t>account << 32) | strategy, instrument)
        if i == NO_SLOT:
            return qty
        cdef position_t* spos = &self.ledger.strategy_pool[i]
        cdef int64_t free = spos.qty - spos.open_sell
        return free if 0 < free < qty else qty

    cdef int64_t _fee_value(self, instrument_t* inst, uint32_t fee_asset, int64_t fee,
                            int64_t price, int* overflow) noexcept nogil:
        """Quote value of a fee paid in another asset than the fill's quote asset: at the fill
        price for the base asset, at the last price of the instrument fee asset / quote asset
        for a third asset; 0 when there is no such price."""
        cdef uint32_t j
        if fee_asset != inst.base_asset:
            j = self.fee_pairs[fee_asset * self.n_assets + inst.quote_asset]
            if j == NO_SLOT or self.instruments[j].last <= 0:
                return 0
            inst = &self.instruments[j]
            price = inst.last
        return oms_fee_value(fee, price, inst.fee_mult, inst.fee_div, overflow)

    cdef int _protection_refused(self, order_t* o, int reason, int64_t ts) except -1:
        """The venue refused a bracket's protective child: raise an alert, mark the position
        unprotected and follow the account's LIM_PROTECT_ON_REJECT policy. Retry sends the
        child once more (a stop engine-held, so the venue cannot refuse it for its price) and
        keeps it paired with its partner; a refused retry, or the flatten policy, cancels the
        partner and closes the protected quantity with a reduce-only market order."""
        cdef account_t* acct = &self.risk.accounts[o.account]
        cdef instrument_t* inst = &self.instruments[o.instrument]
        cdef order_t* peer = NULL
        cdef order_t* n = NULL
        cdef int64_t qty = o.qty - o.filled
        cdef int action = PROTECT_ACTION_NONE
        if o.contingency == CONT_OCO and o.linked_id:
            peer = self.orders.find(o.linked_id)
            if peer != NULL and _terminal(peer.status):
                peer = NULL
            o.linked_id = 0  # the partner's fate is the policy's, not the OCO rule's
        self._set_status(o, ST_REJECTED, ts)
        # the slot of o may be reused by the inserts below: copy what they need first
        cdef uint32_t account = o.account, strategy = o.strategy, instrument = o.instrument
        cdef uint64_t refused_id = o.order_id, parent_id = o.parent_id
        cdef uint64_t refused_seq = refused_id >> self.orders.slot_bits  # the id, not the slot
        cdef int side = o.side, order_type = o.order_type, exit_reason = o.exit_reason
        cdef int64_t price = o.price, trigger = o.trigger, reserve = o.reserve_price
        cdef int64_t offset = o.anchor, group_qty = o.group_qty
        cdef uint64_t peer_id = peer.order_id if peer != NULL else 0
        if (acct.limits[LIM_PROTECT_ON_REJECT] == ON_REJECT_RETRY
                and not o.protect & PROTECT_RETRIED):
            n = self._insert(account, strategy, instrument, RETRY_CL | refused_seq, side,
                             order_type, TIF_GTC, price, trigger, qty, FLAG_REDUCE_ONLY, 0, ts,
                             0, reserve, False, True)
            if n != NULL:
                action = PROTECT_ACTION_RETRY
                n.exit_reason = exit_reason
                n.parent_id = parent_id
                n.contingency = CONT_OTO
                n.anchor = offset
                n.protect = PROTECT_RETRIED
                n.hold = HOLD_TRIGGER if _stop_type(order_type) else HOLD_NONE
                peer = self.orders.find(peer_id) if peer_id else NULL
                if peer != NULL:
                    self._link_oco(peer, n, group_qty)
                self._sync(n)
        cdef uint32_t si
        cdef int64_t held = 0
        if action == PROTECT_ACTION_NONE:
            peer = self.orders.find(peer_id) if peer_id else NULL
            if peer != NULL:
                self._request_cancel(peer, ts)
            # close no more than the strategy holds on the protected side
            si = self.ledger.strategy_index.get((<uint64_t>account << 32) | strategy,
                                                instrument)
            if si != NO_SLOT:
                held = self.ledger.strategy_pool[si].qty
                held = held if side == SIDE_SELL else -held
            if held < qty:
                qty = held
        if action == PROTECT_ACTION_NONE and qty > 0:
            n = self._insert(account, strategy, instrument, FLATTEN_CL | refused_seq, side,
                             TYPE_MARKET, TIF_GTC, 0, 0, qty, FLAG_REDUCE_ONLY, 0, ts, 0,
                             inst.last if inst.last > 0 else reserve, False, False)
            if n != NULL:
                action = PROTECT_ACTION_FLATTEN
                n.exit_reason = exit_reason
        self._emit_raw(EV_ALERT, ALERT_PROTECTION_REFUSED, account, instrument, strategy,
                       refused_id, reason, action, ts)
        if n != NULL:
            self._hold_or_send(n, ts)
        self._mark_protected(account, strategy, instrument, n.order_id if n != NULL else
                             refused_id, action != PROTECT_ACTION_RETRY or n.hold == HOLD_NONE,
                             ts)
        return R_OK

    cdef int _mark_protected(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                             uint64_t order_id, bint unprotected, int64_t ts) except -1:
        """Set the unprotected mark of a position and its strategy position; report a change."""
        cdef position_t* pos = self.ledger.position(account, instrument)
        cdef position_t* spos = self.ledger.strategy_position(account, strategy, instrument)
        if spos == NULL or (pos.unprotected == unprotected
                            and spos.unprotected == unprotected):
            return 0
        pos.unprotected = unprotected
        spos.unprotected = unprotected
        self._emit_raw(EV_POSITION_UPDATE, 0, account, instrument, strategy, order_id,
                       pos.qty, pos.realized, ts)
        return 0

    def on_canceled(self, uint64_t order_id, int64_t ts):
        return self.c_on_canceled(order_id, ts)

    cdef int c_on_canceled(self, uint64_t order_id, int64_t ts) except -1:
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if _terminal(o.status):
            return R_INVALID_TRANSITION
        self._set_status(o, ST_EXPIRED if o.expiring else ST_CANCELED, ts)
        return R_OK

    def on_cancel_reject(self, uint64_t order_id, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if o.status != ST_PENDING_CANCEL:
            return R_INVALID_TRANSITION
        o.expiring = 0
        self._set_status(o, _working_status(o), ts)
        return R_OK

    def on_replaced(self, uint64_t order_id, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if o.status != ST_PENDING_REPLACE:
            return R_INVALID_TRANSITION
        if o.pending_price:  # 0: a native stop leg resized at its trigger
            o.price = o.pending_price
            o.reserve_price = o.pending_price
        o.qty = o.pending_qty if o.pending_qty > o.filled else o.filled
        o.pending_price = 0
        o.pending_qty = 0
        self._set_status(o, ST_FILLED if o.filled >= o.qty else _working_status(o), ts)
        return R_OK

    def on_replace_reject(self, uint64_t order_id, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if o.status != ST_PENDING_REPLACE:
            return R_INVALID_TRANSITION
        o.pending_price = 0
        o.pending_qty = 0
        self._set_status(o, ST_FILLED if o.filled >= o.qty else _working_status(o), ts)
        return R_OK

    def on_expired(self, uint64_t order_id, int64_t ts):
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return R_UNKNOWN_ORDER
        if _terminal(o.status):
            return R_INVALID_TRANSITION
        self._set_status(o, ST_EXPIRED, ts)
        return R_OK

    def on_fill(self, uint64_t order_id, uint64_t trade_id, int64_t qty, int64_t price,
                int64_t fee, uint32_t fee_asset, int liquidity, int64_t ts):
        return self.c_on_fill(order_id, trade_id, qty, price, fee, fee_asset, liquidity, ts)

    cdef int c_on_fill(self, uint64_t order_id, uint64_t trade_id, int64_t qty, int64_t price,
                       int64_t fee, uint32_t fee_asset, int liquidity, int64_t ts) except -1:
        cdef order_t* o = self.orders.find(order_id)
        cdef int overflow = 0
        cdef int64_t notional
        if o == NULL:
            self._emit_raw(EV_ALERT, ALERT_UNKNOWN_ORDER_FILL, 0, 0, 0, order_id,
                           <int64_t>trade_id, qty, ts)
            return R_UNKNOWN_ORDER
        self.seen_trades.prefetch(trade_id, o.instrument)  # the duplicate check reads it
        cdef instrument_t* inst = &self.instruments[o.instrument]
        if (qty <= 0 or price <= 0 or qty > MAX_RAW or price > MAX_RAW
                or fee_asset >= self.n_assets or self.asset_precision[fee_asset] == 0xFFFFFFFFU):
            return R_INVALID_FILL
        notional = oms_mul3(price, qty, inst.notional_mult, MAX_NOTIONAL, &overflow)
        cdef int64_t fee_value = fee
        if fee_asset != inst.quote_asset:
            fee_value = self._fee_value(inst, fee_asset, fee, price, &overflow)
        if overflow:
            return R_INVALID_FILL
        cdef PairIndex seen = self.seen_trades
        if seen.get(trade_id, o.instrument) != NO_SLOT:
            self.duplicate_fills += 1
            return R_DUPLICATE_FILL
        cdef account_t* acct = &self.risk.accounts[o.account]
        if o.filled + qty > _live_qty(o):
            self.overfills += 1
            acct.kill = KILL_HALT
            self._emit_raw(EV_ALERT, ALERT_OVERFILL, o.account, o.instrument, o.strategy,
                           o.order_id, o.filled + qty, _live_qty(o), ts)
            return R_OVERFILL
        # remember the trade id, forgetting the oldest beyond the window
        cdef uint64_t at = self.seen_at
        if self.seen_next >= self.trade_window:
            seen.remove(self.seen_k1[at], self.seen_k2[at])
        self.seen_k1[at] = trade_id
        self.seen_k2[at] = o.instrument
        seen.put(trade_id, o.instrument, 0)
        self.seen_next += 1
        self.seen_at = at + 1 if at + 1 < self.trade_window else 0
        if self.seen_next >= self.trade_window:  # the next fill forgets this one: fetch it now
            seen.prefetch(self.seen_k1[self.seen_at], self.seen_k2[self.seen_at])
        if o.status == ST_REJECTED:
            self._emit_raw(EV_ALERT, ALERT_FILL_ON_REJECTED_ORDER, o.account, o.instrument,
                           o.strategy, o.order_id, <int64_t>trade_id, qty, ts)
        o.filled += qty
        o.fill_notional += price * qty
        o.ts_last_fill = ts
        # ledger
        cdef int64_t signed_qty = qty if o.side == SIDE_BUY else -qty
        cdef trip_t trip
        cdef position_t* pos = self.ledger.position(o.account, o.instrument)
        cdef int64_t realized = Ledger.apply_fill(pos, signed_qty, price, inst.notional_mult,
                                                  ts, &trip)
        if trip.closed:
            self._emit(EV_TRADE_CLOSED, o, EXIT_FLIP if trip.flipped else o.exit_reason,
                       trip.realized, trip.entry_ts, ts)
        acct.realized += realized
        self._revalue(acct, o.account, o.instrument, inst.last if inst.last > 0 else price)
        cdef position_t* spos = self.ledger.strategy_position(o.account, o.strategy,
                                                              o.instrument)
        Ledger.apply_fill(spos, signed_qty, price, inst.notional_mult, ts, &trip)
        self.ledger.asset_position(o.account, inst.base_asset)[0] += signed_qty * inst.base_mult
        # a fee is paid in the asset the venue charged and counted at its quote value
        pos.fees += fee_value
        spos.fees += fee_value
        acct.fees += fee_value
        if fee_asset != inst.quote_asset:
            self.ledger.asset_position(o.account, fee_asset)[0] -= fee
        if pos.unprotected and pos.qty == 0:
            pos.unprotected = 0
        if spos.unprotected and spos.qty == 0:
            spos.unprotected = 0
        if o.locks_funds:
            if o.side == SIDE_BUY:
                self.ledger.balance(o.account, inst.quote_asset).total -= notional
                self.ledger.balance(o.account, inst.base_asset).total += qty * inst.base_mult
            else:
                self.ledger.balance(o.account, inst.quote_asset).total += notional
                self.ledger.balance(o.account, inst.base_asset).total -= qty * inst.base_mult
        self.ledger.balance(o.account, fee_asset).total -= fee
        # order state
        if _terminal(o.status):
            if o.filled == o.qty and o.status != ST_FILLED:
                self._set_status(o, ST_FILLED, ts)
            else:
                self._sync(o)
                self._emit(EV_ORDER_UPDATE, o, o.status, o.filled, qty, ts)
        elif o.filled >= _live_qty(o):
            self._set_status(o, ST_FILLED, ts)
        elif o.status == ST_PENDING_NEW or o.status == ST_NEW or o.status == ST_UNKNOWN:
            self._set_status(o, ST_PARTIALLY_FILLED, ts)
        else:
            self._sync(o)
            self._emit(EV_ORDER_UPDATE, o, o.status, o.filled, qty, ts)
        self._emit(EV_POSITION_UPDATE, o, 0, pos.qty, pos.realized, ts)
        if o.locks_funds:
            _emit_balance(self, o, inst.quote_asset, ts)
            _emit_balance(self, o, inst.base_asset, ts)
        if not o.locks_funds or (fee_asset != inst.quote_asset
                                 and fee_asset != inst.base_asset):
            _emit_balance(self, o, fee_asset, ts)
        if o.contingency == CONT_OCO and not _terminal(o.status):
            self._resize_oco_peer(o, ts)
        self._check_breakers(o.account, ts)
        return R_OK

    def on_timer(self, int64_t ts):
        """Expire GTD/DAY orders whose time has come; return how many expiries were started."""
        cdef HeapSet h = self.expiries
        cdef uint32_t n = 0, i, slot, started = 0
        cdef order_t* o
        while h.size(0) and h.top(0).key <= ts:
            slot = h.top(0).slot
            h.remove(0, slot)
            self.scratch_ids[n] = self.orders.slots[slot].order_id
            n += 1
        for i in range(n):
            o = self.orders.find(self.scratch_ids[i])
            if o == NULL or _terminal(o.status) or o.status == ST_PENDING_CANCEL:
                continue
            o.expiring = 1
            self._request_cancel(o, ts)
            started += 1
        return started

    # ------------------------------------------------------------------ queries
    def order(self, uint64_t order_id):
        """The order as a dict of raw fields, or None when unknown or forgotten."""
        cdef order_t* o = self.orders.find(order_id)
        if o == NULL:
            return None
        cdef dict d = o[0]
        return {name: d[name] for name in ORDER_FIELDS}

    def order_id_by_client_id(self, uint32_t account_id, uint64_t cl_ord_id):
        if account_id >= self.risk.n_accounts:
            return 0
        return self.orders.find_client_id(account_id, cl_ord_id)

    def position(self, uint32_t account_id, uint32_t instrument_id):
        if account_id >= self.risk.n_accounts or instrument_id >= self.n_instruments:
            raise KeyError(f"position ({account_id}, {instrument_id}) out of range")
        cdef dict d = self.ledger.position(account_id, instrument_id)[0]
        return {name: d[name] for name in POSITION_FIELDS}

    def strategy_position(self, uint32_t account_id, uint32_t strategy_id,
                          uint32_t instrument_id):
        cdef uint64_t key = (<uint64_t>account_id << 32) | strategy_id
        cdef uint32_t i = self.ledger.strategy_index.get(key, instrument_id)
        if i == NO_SLOT:
            return {name: 0 for name in POSITION_FIELDS}
        cdef dict d = self.ledger.strategy_pool[i]
        return {name: d[name] for name in POSITION_FIELDS}

    def asset_position(self, uint32_t account_id, uint32_t asset_id):
        return self.ledger.asset_position(account_id, asset_id)[0]

    def balance(self, uint32_t account_id, uint32_t asset_id):
        """(total, locked) in asset units."""
        if account_id >= self.risk.n_accounts or asset_id >= self.n_assets:
            raise KeyError(f"balance ({account_id}, {asset_id}) out of range")
        cdef balance_t* b = self.ledger.balance(account_id, asset_id)
        return b.total, b.locked

    def unrealized(self, uint32_t account_id, uint32_t instrument_id, int64_t mark):
        cdef position_t* pos = self.ledger.position(account_id, instrument_id)
        return pos.qty * mark * self.instruments[instrument_id].notional_mult - pos.cost

    def account_state(self, uint32_t account_id):
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            raise KeyError(f"unknown account {account_id}")
        cdef account_t* a = &self.risk.accounts[account_id]
        return {
            "kill": a.kill, "open_orders": a.open_orders,
            "open_buy_notional": a.open_buy_notional,
            "open_sell_notional": a.open_sell_notional, "gross": a.gross, "net": a.net,
            "realized": a.realized, "fees": a.fees, "unrealized": a.unrealized,
            "day_start_pnl": a.day_start_pnl, "peak_pnl": a.peak_pnl,
            "day_start_ts": a.day_start_ts,
        }

    def open_order_count(self):
        return self.orders.live_count

    def live_orders(self, uint32_t account_id):
        """Ids of the account's live (not closed) orders, oldest first."""
        if account_id >= self.risk.n_accounts or not self.risk.accounts[account_id].active:
            raise KeyError(f"unknown account {account_id}")
        cdef uint32_t n = self.orders.collect_live(account_id, self.scratch)
        return [self.orders.slots[self.scratch[i]].order_id for i in range(n)]

    def drain_events(self):
        """Queued events as tuples (type, code, account, instrument, strategy, order_id, a, b,
        ts); the queue is emptied."""
        cdef list out = []
        cdef uint64_t i
        cdef event_t* e
        for i in range(self.n_events):
            e = &self.events[i]
            out.append((e.type, e.code, e.account, e.instrument, e.strategy, e.order_id, e.a,
                        e.b, e.ts))
        self.n_events = 0
        return out

    cdef void clear_events(self) noexcept nogil:
        self.n_events = 0

    # ------------------------------------------------------------------ snapshots
    def _capacities(self):
        return {
            "max_orders": self.orders.capacity, "max_accounts": self.risk.n_accounts,
            "max_instruments": self.n_instruments, "max_assets": self.n_assets,
            "max_strategies": self.risk.n_strategies, "max_exchanges": self.risk.n_exchanges,
            "trade_window": self.trade_window,
            "max_strategy_positions": self.ledger.strategy_capacity,
            "max_day_orders": self.day_ids.max_items,
            "order_t": sizeof(order_t), "account_t": sizeof(account_t),
        }

    def snapshot(self):
        """The whole state as bytes: a byte-exact copy of every array, restorable into a core
        built with the same capacities. Drain events first: queued events are not kept."""
        if self.n_events:
            raise RuntimeError("drain events before taking a snapshot")
        cdef uint64_t counters[5]
        counters[0] = self.seen_next
        counters[1] = self.overfills
        counters[2] = self.duplicate_fills
        counters[3] = self.day_orders
        counters[4] = self.day_first_order_id
        cdef list chunks = [
            raw_bytes(self.instruments, self.n_instruments * sizeof(instrument_t)),
            raw_bytes(self.asset_precision, self.n_assets * sizeof(uint32_t)),
            raw_bytes(self.seen_k1, self.trade_window * sizeof(uint64_t)),
            raw_bytes(self.seen_k2, self.trade_window * sizeof(uint32_t)),
            raw_bytes(counters, sizeof(counters)),
        ]
        chunks += self.seen_trades.dump()
        chunks += self.orders.dump() + self.ledger.dump() + self.risk.dump()
        chunks += self.resting.dump() + self.triggers.dump() + self.expiries.dump()
        chunks += self.day_ids.dump()
        header = json.dumps({"capacities": self._capacities(),
                             "symbols": {str(k): v for k, v in self.symbols.items()},
                             "chunks": [len(c) for c in chunks]}).encode()
        return b"".join([SNAPSHOT_MAGIC, struct.pack("<Q", len(header)), header] + chunks)

    def restore(self, bytes data):
        """Replace this core's state with a snapshot's. Raise ValueError when the snapshot is
        damaged or was taken from a core with other capacities."""
        if data[:8] != SNAPSHOT_MAGIC:
            raise ValueError("not an OMS core snapshot (bad magic)")
        (n,) = struct.unpack_from("<Q", data, 8)
        header = json.loads(data[16:16 + n])
        if header["capacities"] != self._capacities():
            raise ValueError(f"snapshot capacities {header['capacities']} differ from this "
                             f"core's {self._capacities()}")
        cdef list chunks = []
        cdef size_t offset = 16 + n
        for size in header["chunks"]:
            chunks.append(data[offset:offset + size])
            offset += size
        if offset != <size_t>len(data) or len(chunks) != 37:
            raise ValueError("snapshot is truncated or has extra bytes")
        cdef uint64_t counters[5]
        load_bytes(self.instruments, chunks[0], self.n_instruments * sizeof(instrument_t))
        load_bytes(self.asset_precision, chunks[1], self.n_assets * sizeof(uint32_t))
        load_bytes(self.seen_k1, chunks[2], self.trade_window * sizeof(uint64_t))
        load_bytes(self.seen_k2, chunks[3], self.trade_window * sizeof(uint32_t))
        load_bytes(counters, chunks[4], sizeof(counters))
        self.seen_next, self.overfills, self.duplicate_fills = counters[0], counters[1], counters[2]
        self.day_orders, self.day_first_order_id = counters[3], counters[4]
        self.seen_at = self.seen_next % self.trade_window
        self.seen_trades.load(chunks[5:7])
        self.orders.load(chunks[7:13])
        self.ledger.load(chunks[13:20])
        self.risk.load(chunks[20:26])
        self.resting.load(chunks[26:29])
        self.triggers.load(chunks[29:32])
        self.expiries.load(chunks[32:35])
        self.day_ids.load(chunks[35:37])
        self.symbols = {int(k): v for k, v in header["symbols"].items()}
        self._index_fee_pairs()
        self.n_events = 0
        self.unknown_orders = self._count_status(ST_UNKNOWN)
        return None

    cdef uint64_t _count_status(self, int status) except? 0:
        cdef uint64_t n = 0
        cdef uint32_t k, a
        for a in range(self.risk.n_accounts):
            if not self.risk.accounts[a].active:
                continue
            for k in range(self.orders.collect_live(a, self.scratch)):
                if self.orders.slots[self.scratch[k]].status == status:
                    n += 1
        return n

    # ------------------------------------------------------------------ internals
    cdef int _rejected(self, uint32_t account, int code, int64_t ts) except -1:
        """Count a reject against the account's reject-rate breaker; return the code."""
        if account >= self.risk.n_accounts or not self.risk.accounts[account].active:
            return code
        cdef account_t* acct = &self.risk.accounts[account]
        if acct.limits[LIM_REJECT_RATE] > 0:
            if not bucket_take(&acct.reject_bucket, ts) and acct.kill != KILL_HALT:
                acct.kill = KILL_HALT
                self._emit_raw(EV_ALERT, ALERT_REJECT_RATE_BREAKER, account, 0, 0, 0,
                               acct.limits[LIM_REJECT_RATE], 0, ts)
        return code

    cdef order_t* _insert(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                          uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                          int64_t trigger, int64_t qty, int flags, int64_t expire_ts,
                          int64_t ts, int64_t trail_offset, int64_t reserve_price, bint oco,
                          bint child) except? NULL:
        if self.day_orders >= self.day_ids.max_items:
            return NULL
        cdef order_t* gone = self.orders.next_forgotten()
        if gone != NULL and gone.order_id >= self.day_first_order_id:
            self.day_ids.put(gone.cl_ord_id, gone.account, 0)  # its id stays refused today
        cdef order_t* o = self.orders.allocate(account, cl_ord_id)
        if o == NULL:
            return NULL
        self.day_orders += 1
        cdef account_t* acct = &self.risk.accounts[account]
        cdef instrument_t* inst = &self.instruments[instrument]
        o.strategy = strategy
        o.instrument = instrument
        o.side = side
        o.order_type = order_type
        o.tif = tif
        o.flags = flags
        o.price = price
        o.trigger = trigger
        o.qty = qty
        o.expire_ts = expire_ts
        o.trail_offset = trail_offset
        o.ts_received = ts
        o.ts_risk = ts
        o.status = ST_PENDING_NEW
        o.reserve_price = reserve_price
        o.locks_funds = acct.limits[LIM_CHECK_BALANCE] != 0
        if order_type == TYPE_STOP_MARKET or order_type == TYPE_STOP_LIMIT:
            o.exit_reason = EXIT_STOP_LOSS
        elif order_type == TYPE_TAKE_PROFIT:
            o.exit_reason = EXIT_TAKE_PROFIT
        elif order_type == TYPE_TRAILING_STOP:
            o.exit_reason = EXIT_TRAILING_STOP
        else:
            o.exit_reason = EXIT_ORDER
        if child:
            o.hold = HOLD_PARENT
        elif _stop_type(order_type) and not inst.native_stops:
            o.hold = HOLD_TRIGGER
        if order_type == TYPE_TRAILING_STOP:
            o.trail_anchor = reserve_price
        if oco:
            o.contingency = CONT_OCO
        acct.open_orders += 1
        if not child:
            self._sync(o)
        return o

    cdef int _hold_or_send(self, order_t* o, int64_t ts) except -1:
        self._emit(EV_ORDER_UPDATE, o, o.status, 0, 0, ts)
        if o.hold == HOLD_NONE:
            self._emit(EV_SEND_ORDER, o, 0, 0, 0, ts)
        return 0

    cdef int _link_oco(self, order_t* a, order_t* b, int64_t qty) except -1:
        a.contingency = CONT_OCO
        b.contingency = CONT_OCO
        a.linked_id = b.order_id
        b.linked_id = a.order_id
        a.group_qty = qty
        b.group_qty = qty
        self._sync(b)  # the lower id carries the pair's reserve
        return 0

    cdef int _set_status(self, order_t* o, int status, int64_t ts) except -1:
        cdef bint was_terminal = _terminal(o.status)
        if (o.status == ST_UNKNOWN) != (status == ST_UNKNOWN):
            if status == ST_UNKNOWN:
                self.unknown_orders += 1
            else:
                self.unknown_orders -= 1
        o.status = status
        self._sync(o)
        self._emit(EV_ORDER_UPDATE, o, status, o.filled, 0, ts)
        if _terminal(status) and not was_terminal:
            o.ts_done = ts
            self.risk.accounts[o.account].open_orders -= 1
            self.orders.close(o)
            self._on_terminal(o, ts)
        return 0

    cdef int _on_terminal(self, order_t* o, int64_t ts) except -1:
        cdef order_t* peer
        cdef order_t* child
        cdef uint64_t child_ids[2]
        cdef int k
        cdef int64_t p
        if o.contingency == CONT_OCO and o.linked_id:
            peer = self.orders.find(o.linked_id)
            if peer != NULL and not _terminal(peer.status):
                self._sync(peer)  # the survivor now carries the reserve
                if peer.hold == HOLD_FIRED:
                    self._send_fired(peer, o, ts)
                else:
                    self._request_cancel(peer, ts)
        cdef int64_t size = o.filled, free
        cdef instrument_t* inst
        cdef balance_t* bal
        if o.child1_id and o.filled > 0 and o.locks_funds and o.side == SIDE_BUY:
            # a spot exit sells no more than is held: a fee in the base asset left less
            inst = &self.instruments[o.instrument]
            bal = self.ledger.balance(o.account, inst.base_asset)
            free = (bal.total - bal.locked) // inst.base_mult // inst.lot * inst.lot
            if 0 < free < size:
                size = free
        if o.child1_id:
            child_ids[0] = o.child1_id
            child_ids[1] = o.child2_id
            for k in range(2):
                child = self.orders.find(child_ids[k])
                if child == NULL or _terminal(child.status) or child.hold != HOLD_PARENT:
                    continue
                if o.filled > 0:
                    child.qty = size
                    child.group_qty = size
                    p = _protect_price(o, child.anchor,
                                       self.instruments[child.instrument].tick)
                    if child.order_type == TYPE_LIMIT:
                        child.price = p
                    else:
                        child.trigger = p
                    child.reserve_price = p
                    if _stop_type(child.order_type) and not self.instruments[
                            child.instrument].native_stops:
                        child.hold = HOLD_TRIGGER
                    else:
                        child.hold = HOLD_NONE
                    self._sync(child)
                    self._emit(EV_ORDER_UPDATE, child, child.status, 0, 0, ts)
                    if child.hold == HOLD_NONE:
                        self._emit(EV_SEND_ORDER, child, 0, 0, 0, ts)
                else:
                    self._set_status(child, ST_CANCELED, ts)
        return 0

    cdef int _request_cancel(self, order_t* o, int64_t ts) except -1:
        if o.hold != HOLD_NONE:
            self._set_status(o, ST_EXPIRED if o.expiring else ST_CANCELED, ts)
            return 0
        if o.status == ST_PENDING_CANCEL:
            return 0
        if o.status == ST_PENDING_REPLACE:
            o.pending_price = 0
            o.pending_qty = 0
        self._set_status(o, ST_PENDING_CANCEL, ts)
        self._emit(EV_SEND_CANCEL, o, 0, 0, 0, ts)
        return 0

    cdef int _resize_oco_peer(self, order_t* o, int64_t ts) except -1:
        """A partial fill of one leg shrinks the other to what is left of the pair."""
        cdef order_t* peer = self.orders.find(o.linked_id)
        if peer == NULL or _terminal(peer.status):
            return 0
        cdef int64_t left = o.group_qty - o.filled - peer.filled
        cdef int64_t target = peer.filled + left
        if target >= peer.qty:
            return 0
        if left <= 0:
            self._request_cancel(peer, ts)
        elif peer.hold != HOLD_NONE:
            peer.qty = target
            self._sync(peer)
            self._emit(EV_ORDER_UPDATE, peer, peer.status, peer.filled, 0, ts)
        elif (peer.status == ST_NEW or peer.status == ST_PARTIALLY_FILLED) and (
                peer.order_type != TYPE_MARKET):  # resting at the venue (native stops too)
            peer.pending_price = peer.price
            peer.pending_qty = target
            self._set_status(peer, ST_PENDING_REPLACE, ts)
            self._emit(EV_SEND_REPLACE, peer, 0, peer.price, target, ts)
        return 0

    cdef bint _partner_fired(self, order_t* o) noexcept nogil:
        cdef order_t* peer
        if o.contingency != CONT_OCO or not o.linked_id:
            return False
        peer = self.orders.find(o.linked_id)
        return peer != NULL and not _terminal(peer.status) and peer.hold == HOLD_FIRED

    cdef int _sync(self, order_t* o) except -1:
        self._sync_reserve(o)
        return self._sync_heaps(o)

    cdef bint _carries_pair(self, order_t* o) noexcept nogil:
        cdef order_t* peer = self.orders.find(o.linked_id)
        if peer == NULL or _terminal(peer.status) or peer.hold == HOLD_PARENT:
            return True
        return o.order_id < peer.order_id

    cdef void _sync_reserve(self, order_t* o) noexcept nogil:
        """Bring the order's share of open quantity, notional and locked funds up to date."""
        cdef instrument_t* inst = &self.instruments[o.instrument]
        cdef int64_t qty = 0, notional = 0, price, lock, old_lock, dq, dn
        if not (_terminal(o.status) or o.hold == HOLD_PARENT
                or (o.contingency == CONT_OCO and not self._carries_pair(o))):
            qty = _live_qty(o) - o.filled
            if qty < 0:
                qty = 0
            price = o.reserve_price
            if o.status == ST_PENDING_REPLACE and o.pending_price > price:
                price = o.pending_price
            notional = qty * price * inst.notional_mult
        dq = qty - o.reserved_qty
        dn = notional - o.reserved_notional
        if dq == 0 and dn == 0:
            return
        cdef account_t* acct = &self.risk.accounts[o.account]
        cdef position_t* pos = self.ledger.position(o.account, o.instrument)
        cdef position_t* spos = self.ledger.strategy_position(o.account, o.strategy,
                                                              o.instrument)
        if o.side == SIDE_BUY:
            pos.open_buy += dq
            spos.open_buy += dq
            acct.open_buy_notional += dn
            if o.locks_funds:
                self.ledger.balance(o.account, inst.quote_asset).locked += dn
        else:
            pos.open_sell += dq
            spos.open_sell += dq
            acct.open_sell_notional += dn
            if o.locks_funds:
                self.ledger.balance(o.account, inst.base_asset).locked += dq * inst.base_mult
        o.reserved_qty = qty
        o.reserved_notional = notional

    cdef int _sync_heaps(self, order_t* o) except -1:
        """Keep the order in exactly the heaps its state calls for."""
        cdef uint32_t slot = self.orders.slot_of(o.order_id)
        cdef bint live = not _terminal(o.status)
        cdef bint is_buy = o.side == SIDE_BUY
        cdef uint32_t heap = self.risk.resting_heap(o.account, o.instrument, is_buy)
        cdef int64_t key = -o.price if is_buy else o.price
        cdef bint want = live and o.hold == HOLD_NONE and _priced(o.order_type)
        if self.resting.contains(slot):
            if not want or self.resting.entry(heap, self.resting.position[slot]).key != key:
                self.resting.remove(heap, slot)
        if want and not self.resting.contains(slot):
            self.resting.push(heap, key, o.order_id, slot)
        # held stops
        if o.order_type == TYPE_TRAILING_STOP:
            heap = o.instrument * 3 + 2
            key = 0
        elif (o.order_type == TYPE_TAKE_PROFIT) != is_buy:
            heap = o.instrument * 3       # fires when last >= trigger
            key = o.trigger
        else:
            heap = o.instrument * 3 + 1   # fires when last <= trigger
            key = -o.trigger
        want = live and o.hold == HOLD_TRIGGER
        if want and not self.triggers.contains(slot):
            self.triggers.push(heap, key, o.order_id, slot)
        elif not want and self.triggers.contains(slot):
            self.triggers.remove(heap, slot)
        # expiry
        want = live and o.expire_ts != 0 and o.status != ST_PENDING_CANCEL
        if want and not self.expiries.contains(slot):
            self.expiries.push(0, o.expire_ts, o.order_id, slot)
        elif not want and self.expiries.contains(slot):
            self.expiries.remove(0, slot)
        return 0

    cdef void _revalue(self, account_t* acct, uint32_t account, uint32_t instrument,
                       int64_t mark) noexcept nogil:
        cdef position_t* pos = self.ledger.position(account, instrument)
        cdef int64_t exposure = pos.qty * mark * self.instruments[instrument].notional_mult
        cdef int64_t unrealized = exposure - pos.cost
        acct.gross += _abs(exposure) - _abs(pos.exposure)
        acct.net += exposure - pos.exposure
        acct.unrealized += unrealized - pos.unrealized
        pos.exposure = exposure
        pos.unrealized = unrealized

    cdef int _check_breakers(self, uint32_t account, int64_t ts) except -1:
        cdef account_t* acct = &self.risk.accounts[account]
        cdef int64_t pnl = acct.realized - acct.fees + acct.unrealized
        if pnl > acct.peak_pnl:
            acct.peak_pnl = pnl
        if acct.kill == KILL_HALT:
            return 0
        cdef int64_t* lim = acct.limits
        if lim[LIM_MAX_DAILY_LOSS] and acct.day_start_pnl - pnl > lim[LIM_MAX_DAILY_LOSS]:
            acct.kill = KILL_HALT
            self._emit_raw(EV_ALERT, ALERT_DAILY_LOSS_BREAKER, account, 0, 0, 0, pnl,
                           acct.day_start_pnl, ts)
        elif lim[LIM_MAX_DRAWDOWN] and acct.peak_pnl - pnl > lim[LIM_MAX_DRAWDOWN]:
            acct.kill = KILL_HALT
            self._emit_raw(EV_ALERT, ALERT_DRAWDOWN_BREAKER, account, 0, 0, 0, pnl,
                           acct.peak_pnl, ts)
        return 0

    cdef int _emit(self, int etype, order_t* o, int code, int64_t a, int64_t b,
                   int64_t ts) except -1:
        return self._emit_raw(etype, code, o.account, o.instrument, o.strategy, o.order_id, a,
                              b, ts)

    cdef int _emit_raw(self, int etype, int code, uint32_t account, uint32_t instrument,
                       uint32_t strategy, uint64_t order_id, int64_t a, int64_t b,
                       int64_t ts) except -1:
        cdef event_t* grown
        if self.n_events == self.events_capacity:
            # the engine drains after every command; growth only follows mass operations
            grown = <event_t*>PyMem_Realloc(self.events,
                                            2 * self.events_capacity * sizeof(event_t))
            if grown == NULL:
                raise MemoryError("OmsCore: cannot grow the event queue")
            self.events = grown
            self.events_capacity *= 2
        cdef event_t* e = &self.events[self.n_events]
        e.type = etype
        e.code = code
        e.account = account
        e.instrument = instrument
        e.strategy = strategy
        e.order_id = order_id
        e.a = a
        e.b = b
        e.ts = ts
        self.n_events += 1
        return 0


cdef int _emit_balance(OmsCore core, order_t* o, uint32_t asset, int64_t ts) except -1:
    cdef balance_t* bal = core.ledger.balance(o.account, asset)
    return core._emit(EV_BALANCE_UPDATE, o, asset, bal.total, bal.locked, ts)


def c_constants():
    """The C-side constant values, for the test that holds them equal to oms_core.enums."""
    return {
        "Side": {"BUY": SIDE_BUY, "SELL": SIDE_SELL},
        "OrderStatus": {"PENDING_NEW": ST_PENDING_NEW, "NEW": ST_NEW,
                        "PARTIALLY_FILLED": ST_PARTIALLY_FILLED, "FILLED": ST_FILLED,
                        "PENDING_CANCEL": ST_PENDING_CANCEL,
                        "PENDING_REPLACE": ST_PENDING_REPLACE, "CANCELED": ST_CANCELED,
                        "REJECTED": ST_REJECTED, "EXPIRED": ST_EXPIRED,
                        "UNKNOWN": ST_UNKNOWN},
        "OrderType": {"MARKET": TYPE_MARKET, "LIMIT": TYPE_LIMIT,
                      "STOP_MARKET": TYPE_STOP_MARKET, "STOP_LIMIT": TYPE_STOP_LIMIT,
                      "TAKE_PROFIT": TYPE_TAKE_PROFIT, "TRAILING_STOP": TYPE_TRAILING_STOP},
        "TimeInForce": {"GTC": TIF_GTC, "IOC": TIF_IOC, "FOK": TIF_FOK, "GTD": TIF_GTD,
                        "DAY": TIF_DAY},
        "Limit": {"MAX_ORDER_QTY": LIM_MAX_ORDER_QTY, "REJECT_BURST": LIM_REJECT_BURST,
                  "CHECK_BALANCE": LIM_CHECK_BALANCE, "COLLAR_BPS": LIM_COLLAR_BPS,
                  "PROTECT_ANCHOR": LIM_PROTECT_ANCHOR,
                  "PROTECT_ON_REJECT": LIM_PROTECT_ON_REJECT},
        "ProtectAnchor": {"FILL": ANCHOR_FILL, "ARRIVAL": ANCHOR_ARRIVAL},
        "ProtectOnReject": {"RETRY": ON_REJECT_RETRY, "FLATTEN": ON_REJECT_FLATTEN},
        "ProtectAction": {"NONE": PROTECT_ACTION_NONE, "RETRY": PROTECT_ACTION_RETRY,
                          "FLATTEN": PROTECT_ACTION_FLATTEN},
        "ExitReason": {"FLIP": EXIT_FLIP, "RECONCILIATION": EXIT_RECONCILIATION},
        "Reject": {"OK": R_OK, "UNKNOWN_ACCOUNT": R_UNKNOWN_ACCOUNT,
                   "SELF_TRADE": R_SELF_TRADE, "REDUCE_ONLY_VIOLATION": R_REDUCE_ONLY_VIOLATION,
                   "INVALID_TRANSITION": R_INVALID_TRANSITION, "TABLE_FULL": R_TABLE_FULL,
                   "OVERFILL": R_OVERFILL, "DUPLICATE_FILL": R_DUPLICATE_FILL,
                   "MAX_NET_EXPOSURE": R_MAX_NET_EXPOSURE},
        "EventType": {"SEND_ORDER": EV_SEND_ORDER, "ALERT": EV_ALERT,
                      "BALANCE_UPDATE": EV_BALANCE_UPDATE,
                      "TRADE_CLOSED": EV_TRADE_CLOSED},
        "Alert": {"OVERFILL": ALERT_OVERFILL, "REJECT_RATE_BREAKER": ALERT_REJECT_RATE_BREAKER,
                  "PROTECTION_REFUSED": ALERT_PROTECTION_REFUSED,
                  "RECONCILIATION_DIFFERENCE": ALERT_RECONCILIATION_DIFFERENCE},
        "sizes": {"order_t": sizeof(order_t), "event_t": sizeof(event_t)},
    }
