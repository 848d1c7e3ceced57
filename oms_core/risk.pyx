"""Pre-trade risk checks (see risk.pxd). The order of the checks is part of the contract: the
reference model (oms_core/reference/model.py) runs them in the same order."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memset

from oms_core.heaps cimport HeapSet, heap_entry_t
from oms_core.ledger cimport Ledger
from oms_core.orders cimport OrderTable
from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport *


cdef bint bucket_take(bucket_t* b, int64_t ts) noexcept nogil:
    """Take one token; False when empty. A bucket with rate 0 is off."""
    cdef int64_t elapsed, full
    if b.rate == 0:
        return True
    elapsed = ts - b.last_ts
    if elapsed > 0:
        if elapsed > 10000000000LL:
            elapsed = 10000000000LL
        full = b.burst * NANOS_PER_TOKEN
        # elapsed * rate can pass int64 at high rates: compare exactly before adding
        if oms_prod_gt(elapsed, b.rate, full - b.nanotokens, 1):
            b.nanotokens = full
        else:
            b.nanotokens += elapsed * b.rate
        b.last_ts = ts
    if b.nanotokens >= NANOS_PER_TOKEN:
        b.nanotokens -= NANOS_PER_TOKEN
        return True
    return False


cdef void bucket_configure(bucket_t* b, int64_t rate, int64_t burst) noexcept nogil:
    b.rate = rate
    b.burst = (burst if burst > 1 else 1) if rate > 0 else 0
    b.nanotokens = b.burst * NANOS_PER_TOKEN


cdef inline bint _priced(int order_type) noexcept nogil:
    return order_type == TYPE_LIMIT or order_type == TYPE_STOP_LIMIT


cdef inline bint _triggered(int order_type) noexcept nogil:
    return (order_type == TYPE_STOP_MARKET or order_type == TYPE_STOP_LIMIT
            or order_type == TYPE_TAKE_PROFIT)


cdef inline bint _outside_collar(int64_t* lim, bint is_buy, int64_t price, int64_t ref2,
                                 int64_t tick) noexcept nogil:
    cdef int64_t bps = lim[LIM_COLLAR_BPS]
    cdef int64_t ticks = lim[LIM_COLLAR_TICKS]
    if bps > 0:
        if is_buy:
            return oms_prod_gt(2 * price, 10000, ref2, 10000 + bps)
        return oms_prod_gt(ref2, 10000 - bps, 2 * price, 10000)
    if is_buy:
        return 2 * price > ref2 + 2 * ticks * tick
    return 2 * price < ref2 - 2 * ticks * tick


cdef inline int64_t _reference2(int64_t* lim, instrument_t* inst) noexcept nogil:
    """Twice the reference price (mid, or last with the mid until a first trade is seen), or
    0 when there is none."""
    if lim[LIM_COLLAR_USE_MID] == 0 and inst.last > 0:
        return 2 * inst.last
    if inst.bid <= 0 or inst.ask <= 0:
        return 0
    return inst.bid + inst.ask


cdef inline int _reference_state(int64_t* lim, instrument_t* inst, int64_t ref2,
                                 int64_t ts) noexcept nogil:
    cdef int64_t max_age = lim[LIM_MAX_REFERENCE_AGE_NS]
    if ref2 <= 0:
        return R_NO_REFERENCE_PRICE
    if inst.stale or (max_age > 0 and ts - inst.price_ts > max_age):
        return R_STALE_REFERENCE_PRICE
    return R_OK


cdef inline int _position_limit(int64_t* lim, position_t* pos, bint is_buy,
                                int64_t add_qty) noexcept nogil:
    """Max position per instrument, counting open orders (worst case if all fill)."""
    cdef int64_t max_pos = lim[LIM_MAX_POSITION]
    if max_pos:
        if is_buy and pos.qty + pos.open_buy + add_qty > max_pos:
            return R_MAX_POSITION
        if not is_buy and pos.open_sell + add_qty - pos.qty > max_pos:
            return R_MAX_POSITION
    return R_OK


cdef inline int _exposure_limit(int64_t* lim, account_t* acct, bint is_buy,
                                int64_t add_notional) noexcept nogil:
    """Max gross and net exposure: positions at their last valuation plus open orders."""
    cdef int64_t max_gross = lim[LIM_MAX_GROSS_EXPOSURE]
    cdef int64_t max_net = lim[LIM_MAX_NET_EXPOSURE]
    if max_gross and (acct.gross + acct.open_buy_notional + acct.open_sell_notional
                      + add_notional > max_gross):
        return R_MAX_GROSS_EXPOSURE
    if max_net:
        if is_buy and acct.net + acct.open_buy_notional + add_notional > max_net:
            return R_MAX_NET_EXPOSURE
        if not is_buy and acct.open_sell_notional + add_notional - acct.net > max_net:
            return R_MAX_NET_EXPOSURE
    return R_OK


cdef class RiskChecker:
    """Per-account risk state and the checks. Built by OmsCore, not by users."""

    def __cinit__(self, uint32_t n_accounts, uint32_t n_strategies, uint32_t n_exchanges):
        self.n_accounts = n_accounts
        self.n_strategies = n_strategies
        self.n_exchanges = n_exchanges
        self.accounts = <account_t*>PyMem_Malloc(n_accounts * sizeof(account_t))
        self.exchange_buckets = <bucket_t*>PyMem_Malloc(
            n_accounts * n_exchanges * sizeof(bucket_t))
        self.strategy_kill = <uint8_t*>PyMem_Malloc(n_strategies)
        self.strategy_single_entry = <uint8_t*>PyMem_Malloc(n_strategies)
        self.strategy_active = <uint8_t*>PyMem_Malloc(n_strategies)
        if (not self.accounts or not self.exchange_buckets or not self.strategy_kill
                or not self.strategy_single_entry or not self.strategy_active):
            raise MemoryError("RiskChecker: allocation failed")
        memset(self.accounts, 0, n_accounts * sizeof(account_t))
        memset(self.exchange_buckets, 0, n_accounts * n_exchanges * sizeof(bucket_t))
        memset(self.strategy_kill, 0, n_strategies)
        memset(self.strategy_single_entry, 0, n_strategies)
        memset(self.strategy_active, 0, n_strategies)
        self.strategy_active[0] = 1  # strategy 0: manual orders

    def __dealloc__(self):
        PyMem_Free(self.accounts)
        PyMem_Free(self.exchange_buckets)
        PyMem_Free(self.strategy_kill)
        PyMem_Free(self.strategy_single_entry)
        PyMem_Free(self.strategy_active)


    cdef list dump(self):
        return [raw_bytes(self.accounts, self.n_accounts * sizeof(account_t)),
                raw_bytes(self.exchange_buckets,
                          self.n_accounts * self.n_exchanges * sizeof(bucket_t)),
                raw_bytes(self.strategy_kill, self.n_strategies),
                raw_bytes(self.strategy_single_entry, self.n_strategies),
                raw_bytes(self.strategy_active, self.n_strategies),
                raw_bytes(&self.global_kill, 1)]

    cdef int load(self, list chunks) except -1:
        load_bytes(self.accounts, chunks[0], self.n_accounts * sizeof(account_t))
        load_bytes(self.exchange_buckets, chunks[1],
                   self.n_accounts * self.n_exchanges * sizeof(bucket_t))
        load_bytes(self.strategy_kill, chunks[2], self.n_strategies)
        load_bytes(self.strategy_single_entry, chunks[3], self.n_strategies)
        load_bytes(self.strategy_active, chunks[4], self.n_strategies)
        load_bytes(&self.global_kill, chunks[5], 1)
        return 0

    cdef int kill_switch(self, account_t* acct, uint32_t strategy,
                         bint* reduce_mode) noexcept nogil:
        """HALT at any level rejects; REDUCE_ONLY at any level sets reduce_mode."""
        if self.global_kill == KILL_HALT:
            return R_GLOBAL_HALT
        if acct.kill == KILL_HALT:
            return R_ACCOUNT_HALTED
        if self.strategy_kill[strategy] == KILL_HALT:
            return R_STRATEGY_HALTED
        reduce_mode[0] = (self.global_kill == KILL_REDUCE_ONLY or acct.kill == KILL_REDUCE_ONLY
                          or self.strategy_kill[strategy] == KILL_REDUCE_ONLY)
        return R_OK

    cdef bint crosses_own(self, uint32_t account, uint32_t instrument, bint is_buy,
                          int order_type, int64_t price) noexcept nogil:
        """True when the account rests an opposite order the new one would trade against."""
        cdef uint32_t heap = self.resting_heap(account, instrument, not is_buy)
        if self.resting.size(heap) == 0:
            return False
        if order_type == TYPE_MARKET:
            return True
        cdef int64_t best = self.resting.top(heap).key
        if is_buy:
            return price >= best            # sells are keyed by price: lowest on top
        return price <= -best               # buys are keyed by -price: highest on top

    cdef int check_new(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                       uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                       int64_t trigger, int64_t qty, int flags, int64_t expire_ts, int64_t ts,
                       int64_t trail_offset, bint count_message,
                       int64_t* reserve_price) noexcept nogil:
        cdef account_t* acct
        cdef instrument_t* inst
        cdef int64_t* lim
        cdef int overflow = 0
        cdef int code
        cdef int64_t ref2, notional, rprice
        cdef bint is_buy, reduce_mode, collar_on
        cdef position_t* pos
        cdef position_t* spos
        cdef bucket_t* bucket
        cdef balance_t* bal
        # the duplicate check below reads a random line of a large index: start it now
        self.orders.prefetch_client(account, cl_ord_id)
        if account >= self.n_accounts or not self.accounts[account].active:
            return R_UNKNOWN_ACCOUNT
        acct = &self.accounts[account]
        lim = acct.limits
        if count_message and not bucket_take(&acct.message_bucket, ts):
            return R_MESSAGE_RATE_EXCEEDED
        if instrument >= self.n_instruments or not self.instruments[instrument].active:
            return R_UNKNOWN_INSTRUMENT
        inst = &self.instruments[instrument]
        if not inst.tradable:
            return R_INSTRUMENT_NOT_TRADABLE
        if strategy >= self.n_strategies or not self.strategy_active[strategy]:
            return R_UNKNOWN_STRATEGY
        if side != SIDE_BUY and side != SIDE_SELL:
            return R_INVALID_SIDE
        if order_type < TYPE_MARKET or order_type > TYPE_TRAILING_STOP:
            return R_INVALID_ORDER_TYPE
        if tif < TIF_GTC or tif > TIF_DAY:
            return R_INVALID_TIME_IN_FORCE
        if flags & ~(FLAG_REDUCE_ONLY | FLAG_POST_ONLY):
            return R_INVALID_FLAGS
        if flags & FLAG_POST_ONLY and (order_type != TYPE_LIMIT or tif == TIF_IOC
                                       or tif == TIF_FOK):
            return R_INVALID_FLAGS
        if qty <= 0 or qty > MAX_RAW:
            return R_INVALID_QUANTITY
        if _priced(order_type):
            if price <= 0 or price > MAX_RAW:
                return R_INVALID_PRICE
        elif price != 0:
            return R_INVALID_PRICE
        if _triggered(order_type):
            if trigger <= 0 or trigger > MAX_RAW or trail_offset != 0:
                return R_INVALID_TRIGGER_PRICE
        elif order_type == TYPE_TRAILING_STOP:
            if trail_offset <= 0 or trail_offset > MAX_RAW or trigger != 0:
                return R_INVALID_TRIGGER_PRICE
        elif trigger != 0 or trail_offset != 0:
            return R_INVALID_TRIGGER_PRICE
        if tif == TIF_GTD or tif == TIF_DAY:
            if expire_ts <= ts:
                return R_INVALID_EXPIRY
        elif expire_ts != 0:
            return R_INVALID_EXPIRY
        # (a zero is a multiple of anything: skip its division)
        if ((price != 0 and price % inst.tick) or (trigger != 0 and trigger % inst.tick)
                or (trail_offset != 0 and trail_offset % inst.tick)):
            return R_PRICE_NOT_TICK_MULTIPLE
        if qty % inst.lot:
            return R_QUANTITY_NOT_LOT_MULTIPLE
        if qty < inst.min_qty:
            return R_BELOW_MIN_QUANTITY
        if qty > inst.max_qty:
            return R_ABOVE_MAX_QUANTITY
        collar_on = lim[LIM_COLLAR_BPS] > 0 or lim[LIM_COLLAR_TICKS] > 0
        ref2 = _reference2(lim, inst)
        if order_type == TYPE_MARKET or order_type == TYPE_TRAILING_STOP or collar_on:
            code = _reference_state(lim, inst, ref2, ts)
            if code != R_OK:
                return code
        if _priced(order_type):
            rprice = price
        elif _triggered(order_type):
            rprice = trigger
        else:
            rprice = ref2 // 2
        notional = oms_mul3(rprice, qty, inst.notional_mult, MAX_NOTIONAL, &overflow)
        if overflow:
            return R_NOTIONAL_OVERFLOW
        if notional < inst.min_notional:
            return R_BELOW_MIN_NOTIONAL
        code = self.kill_switch(acct, strategy, &reduce_mode)
        if code != R_OK:
            return code
        pos = self.ledger.position(account, instrument)
        is_buy = side == SIDE_BUY
        if reduce_mode or flags & FLAG_REDUCE_ONLY:
            if (is_buy and pos.qty + pos.open_buy + qty > 0) or (
                    not is_buy and pos.qty - pos.open_sell - qty < 0):
                return R_REDUCE_ONLY_MODE if reduce_mode else R_REDUCE_ONLY_VIOLATION
        if (self.orders.client_slot(account, cl_ord_id) != NO_SLOT
                or self.day_ids.get(cl_ord_id, account) != NO_SLOT):
            return R_DUPLICATE_CLIENT_ORDER_ID  # also once its order left the table
        if not bucket_take(&acct.order_bucket, ts):
            return R_ORDER_RATE_EXCEEDED
        bucket = &self.exchange_buckets[account * self.n_exchanges + inst.exchange_id]
        if not bucket_take(bucket, ts):
            return R_EXCHANGE_RATE_EXCEEDED
        if lim[LIM_MAX_ORDER_QTY] and qty > lim[LIM_MAX_ORDER_QTY]:
            return R_MAX_ORDER_QUANTITY
        if lim[LIM_MAX_ORDER_NOTIONAL] and notional > lim[LIM_MAX_ORDER_NOTIONAL]:
            return R_MAX_ORDER_NOTIONAL
        if collar_on and _priced(order_type) and _outside_collar(lim, is_buy, price, ref2,
                                                                 inst.tick):
            return R_PRICE_COLLAR
        if lim[LIM_LONG_ONLY] and not is_buy and pos.qty - pos.open_sell - qty < 0:
            return R_LONG_ONLY
        if self.strategy_single_entry[strategy]:
            spos = self.ledger.strategy_position(account, strategy, instrument)
            if spos == NULL:
                return R_TABLE_FULL
            if is_buy and (spos.qty > 0 or spos.open_buy > 0):
                return R_SINGLE_ENTRY
            if not is_buy and spos.qty - spos.open_sell < qty:  # sells only what is held
                return R_SINGLE_ENTRY
        code = _position_limit(lim, pos, is_buy, qty)
        if code != R_OK:
            return code
        if lim[LIM_MAX_OPEN_ORDERS] and acct.open_orders + 1 > lim[LIM_MAX_OPEN_ORDERS]:
            return R_MAX_OPEN_ORDERS
        code = _exposure_limit(lim, acct, is_buy, notional)
        if code != R_OK:
            return code
        if lim[LIM_CHECK_BALANCE]:
            if is_buy:
                bal = self.ledger.balance(account, inst.quote_asset)
                if bal.total - bal.locked < notional:
                    return R_INSUFFICIENT_BALANCE
            else:
                bal = self.ledger.balance(account, inst.base_asset)
                if bal.total - bal.locked < qty * inst.base_mult:
                    return R_INSUFFICIENT_BALANCE
        if ((order_type == TYPE_MARKET or order_type == TYPE_LIMIT or inst.native_stops)
                and self.crosses_own(account, instrument, is_buy, order_type, price)):
            return R_SELF_TRADE
        if self.ledger.strategy_position(account, strategy, instrument) == NULL:
            return R_TABLE_FULL
        reserve_price[0] = rprice
        return R_OK

    cdef int check_replace(self, account_t* acct, order_t* o, int64_t new_price,
                           int64_t new_qty, int64_t ts) noexcept nogil:
        cdef int64_t* lim = acct.limits
        cdef instrument_t* inst
        cdef int overflow = 0
        cdef int code
        cdef int64_t notional, ref2, new_rem, add_qty, add_notional, need, rprice
        cdef bint is_buy, reduce_mode, carries
        cdef position_t* pos
        cdef balance_t* bal
        if not bucket_take(&acct.message_bucket, ts):
            return R_MESSAGE_RATE_EXCEEDED
        if o == NULL:
            return R_UNKNOWN_ORDER
        is_buy = o.side == SIDE_BUY
        if o.status == ST_FILLED or o.status == ST_CANCELED or o.status == ST_REJECTED or (
                o.status == ST_EXPIRED):
            return R_ORDER_CLOSED
        if o.status == ST_PENDING_CANCEL:
            return R_CANCEL_PENDING
        if o.status == ST_PENDING_REPLACE:
            return R_REPLACE_PENDING
        if (not _priced(o.order_type) or o.hold != HOLD_NONE
                or (o.status != ST_NEW and o.status != ST_PARTIALLY_FILLED)):
            return R_NOT_REPLACEABLE
        if new_qty <= o.filled or new_qty > MAX_RAW:
            return R_INVALID_QUANTITY
        if new_price <= 0 or new_price > MAX_RAW:
            return R_INVALID_PRICE
        inst = &self.instruments[o.instrument]
        if new_price % inst.tick:
            return R_PRICE_NOT_TICK_MULTIPLE
        if new_qty % inst.lot:
            return R_QUANTITY_NOT_LOT_MULTIPLE
        if new_qty < inst.min_qty:
            return R_BELOW_MIN_QUANTITY
        if new_qty > inst.max_qty:
            return R_ABOVE_MAX_QUANTITY
        notional = oms_mul3(new_price, new_qty, inst.notional_mult, MAX_NOTIONAL, &overflow)
        if overflow:
            return R_NOTIONAL_OVERFLOW
        if notional < inst.min_notional:
            return R_BELOW_MIN_NOTIONAL
        code = self.kill_switch(acct, o.strategy, &reduce_mode)
        if code != R_OK:
            return code
        if reduce_mode and new_qty > o.qty:
            return R_REDUCE_ONLY_MODE
        if lim[LIM_MAX_ORDER_QTY] and new_qty > lim[LIM_MAX_ORDER_QTY]:
            return R_MAX_ORDER_QUANTITY
        if lim[LIM_MAX_ORDER_NOTIONAL] and notional > lim[LIM_MAX_ORDER_NOTIONAL]:
            return R_MAX_ORDER_NOTIONAL
        if lim[LIM_COLLAR_BPS] > 0 or lim[LIM_COLLAR_TICKS] > 0:
            ref2 = _reference2(lim, inst)
            code = _reference_state(lim, inst, ref2, ts)
            if code != R_OK:
                return code
            if _outside_collar(lim, is_buy, new_price, ref2, inst.tick):
                return R_PRICE_COLLAR
        # what the replace adds to the worst case while it is pending
        new_rem = (o.qty if o.qty > new_qty else new_qty) - o.filled
        add_qty = new_rem - o.reserved_qty
        rprice = o.reserve_price if o.reserve_price > new_price else new_price
        add_notional = new_rem * rprice * inst.notional_mult - o.reserved_notional
        pos = self.ledger.position(o.account, o.instrument)
        carries = o.contingency != CONT_OCO or o.reserved_qty > 0
        if carries and add_qty > 0:
            if lim[LIM_LONG_ONLY] and not is_buy and pos.qty - pos.open_sell - add_qty < 0:
                return R_LONG_ONLY
            code = _position_limit(lim, pos, is_buy, add_qty)
            if code != R_OK:
                return code
        if carries and add_notional > 0:
            code = _exposure_limit(lim, acct, is_buy, add_notional)
            if code != R_OK:
                return code
        if o.locks_funds and carries:
            if is_buy:
                need = add_notional
                bal = self.ledger.balance(o.account, inst.quote_asset)
            else:
                need = add_qty * inst.base_mult
                bal = self.ledger.balance(o.account, inst.base_asset)
            if need > 0 and bal.total - bal.locked < need:
                return R_INSUFFICIENT_BALANCE
        if self.crosses_own(o.account, o.instrument, is_buy, TYPE_LIMIT, new_price):
            return R_SELF_TRADE
        return R_OK
