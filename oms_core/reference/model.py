"""Pure-Python reference model of the compiled core: the executable specification.

Same state machine, ledger and risk checks as ``oms_core.core.OmsCore``, written to be read:
dicts, plain loops and Python's arbitrary-precision integers on the same raw fixed-point units,
so every rounding rule is visible. Property tests drive both with the same calls and require the
same answers, states and events to the last unit. Speed is not a goal here.

Units: a price is an integer count of 10**-price_precision, a quantity of 10**-qty_precision, a
balance or notional of 10**-precision of its asset. ``notional = price * qty * notional_mult``
where ``notional_mult = 10**(quote_precision - price_precision - qty_precision)``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from oms_core.enums import (
    Alert,
    Contingency,
    EventType,
    ExitReason,
    Hold,
    KillMode,
    Limit,
    OrderFlag,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from oms_core.limits import (
    LIMIT_DEFAULTS,
    MAX_NOTIONAL,
    MAX_RAW,
    NANOS_PER_TOKEN,
    check_limit_value,
)

ANY = 0xFFFFFFFF
S = OrderStatus
TERMINAL = (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED)
PRICED_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)
TRIGGER_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT)
STOP_TYPES = TRIGGER_TYPES + (OrderType.TRAILING_STOP,)


def muldiv(a: int, b: int, c: int) -> int:
    """a*b/c for non-negative operands, truncated: the one rounding rule of the ledger."""
    return a * b // c


@dataclass
class Instrument:
    instrument_id: int
    symbol: str
    exchange_id: int
    base_asset: int
    quote_asset: int
    price_precision: int
    qty_precision: int
    tick: int
    lot: int
    min_qty: int
    max_qty: int
    min_notional: int
    notional_mult: int
    base_mult: int
    tradable: bool = True
    native_stops: bool = False
    last: int = 0
    bid: int = 0
    ask: int = 0
    price_ts: int = 0
    stale: bool = False


class TokenBucket:
    """Integer token bucket: tokens are kept in nano-tokens so refill is exact."""

    def __init__(self) -> None:
        self.rate = 0
        self.burst = 0
        self.nanotokens = 0
        self.last_ts = 0

    def configure(self, rate: int, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1) if rate > 0 else 0
        self.nanotokens = self.burst * NANOS_PER_TOKEN

    def take(self, ts: int) -> bool:
        """Take one token; False when empty. A bucket with rate 0 is off and always gives."""
        if self.rate == 0:
            return True
        elapsed = ts - self.last_ts
        if elapsed > 0:
            self.nanotokens = min(
                self.burst * NANOS_PER_TOKEN,
                self.nanotokens + min(elapsed, 10**10) * self.rate,
            )
            self.last_ts = ts
        if self.nanotokens >= NANOS_PER_TOKEN:
            self.nanotokens -= NANOS_PER_TOKEN
            return True
        return False


@dataclass
class Position:
    qty: int = 0  # signed qty units
    cost: int = 0  # signed quote units of the open quantity
    realized: int = 0
    fees: int = 0  # fees paid in the quote asset
    open_buy: int = 0  # qty units reserved by open buy orders
    open_sell: int = 0
    entry_ts: int = 0
    trip_realized: int = 0
    exposure: int = 0  # qty * mark * mult at the last valuation (signed)
    unrealized: int = 0  # at the last valuation


@dataclass
class Account:
    account_id: int
    limits: dict[int, int] = field(default_factory=lambda: dict(LIMIT_DEFAULTS))
    kill: int = KillMode.OFF
    open_orders: int = 0
    open_buy_notional: int = 0
    open_sell_notional: int = 0
    gross: int = 0
    net: int = 0
    realized: int = 0
    fees: int = 0
    unrealized: int = 0
    day_start_pnl: int = 0
    peak_pnl: int = 0
    message_bucket: TokenBucket = field(default_factory=TokenBucket)
    order_bucket: TokenBucket = field(default_factory=TokenBucket)
    reject_bucket: TokenBucket = field(default_factory=TokenBucket)
    exchange_buckets: dict[int, TokenBucket] = field(default_factory=dict)
    live_orders: dict[int, None] = field(default_factory=dict)  # insertion-ordered set

    def pnl(self) -> int:
        return self.realized - self.fees + self.unrealized


@dataclass
class Order:
    order_id: int
    cl_ord_id: int
    account: int
    strategy: int
    instrument: int
    side: int
    order_type: int
    tif: int
    flags: int
    price: int
    trigger: int
    qty: int
    expire_ts: int
    trail_offset: int
    ts_received: int
    status: int = S.PENDING_NEW
    reason: int = 0
    hold: int = Hold.NONE
    filled: int = 0
    fill_notional: int = 0  # sum of price * qty over fills (price units x qty units)
    reserve_price: int = 0
    pending_price: int = 0
    pending_qty: int = 0
    trail_anchor: int = 0
    contingency: int = Contingency.NONE
    linked_id: int = 0  # OCO: the other leg
    parent_id: int = 0  # OTO / bracket child: the entry
    child1_id: int = 0  # bracket entry: its children
    child2_id: int = 0
    group_qty: int = 0  # OCO: the size both legs protect together
    exit_reason: int = ExitReason.ORDER
    locks_funds: bool = False
    expiring: bool = False  # cancel was requested because the order expired
    reserved_qty: int = 0
    reserved_notional: int = 0
    locked: int = 0  # derived in the compiled core; kept here to make the rule visible
    ts_risk: int = 0
    ts_sent: int = 0
    ts_ack: int = 0
    ts_last_fill: int = 0
    ts_done: int = 0

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY


class ReferenceModel:
    """The reference OMS core. Method names and arguments are those of ``OmsCore``."""

    def __init__(
        self,
        max_orders: int = 1 << 16,
        max_accounts: int = 64,
        max_instruments: int = 256,
        max_assets: int = 64,
        max_strategies: int = 64,
        max_exchanges: int = 16,
        trade_window: int = 1 << 16,
    ) -> None:
        self.max_orders = max_orders
        self.max_accounts = max_accounts
        self.max_instruments = max_instruments
        self.max_assets = max_assets
        self.max_strategies = max_strategies
        self.max_exchanges = max_exchanges
        self.trade_window = trade_window
        self.assets: dict[int, int] = {}  # asset id -> precision
        self.instruments: dict[int, Instrument] = {}
        self.accounts: dict[int, Account] = {}
        self.strategies: dict[int, bool] = {0: False}  # id -> single_entry
        self.strategy_kill: dict[int, int] = {0: KillMode.OFF}
        self.global_kill = KillMode.OFF
        self.orders: dict[int, Order] = {}
        self.by_cl: dict[tuple[int, int], int] = {}
        self.terminal_fifo: OrderedDict[int, None] = OrderedDict()
        self.positions: dict[tuple[int, int], Position] = {}
        self.strategy_positions: dict[tuple[int, int, int], Position] = {}
        self.asset_positions: dict[tuple[int, int], int] = {}
        self.balances: dict[tuple[int, int], list[int]] = {}  # -> [total, locked]
        self.seen_trades: set[tuple[int, int]] = set()
        self.seen_fifo: deque[tuple[int, int]] = deque()
        self.next_order_id = 1
        self.events: list[tuple[int, int, int, int, int, int, int, int, int]] = []
        self.overfills = 0
        self.duplicate_fills = 0

    # ------------------------------------------------------------------ configuration
    def add_asset(self, asset_id: int, name: str, precision: int) -> None:
        if not 0 <= asset_id < self.max_assets or asset_id in self.assets:
            raise ValueError(f"asset id {asset_id} out of range or already added")
        if not 0 <= precision <= 18:
            raise ValueError(f"asset {name}: precision {precision} outside 0..18")
        self.assets[asset_id] = precision

    def add_instrument(
        self,
        instrument_id: int,
        symbol: str,
        exchange_id: int,
        base_asset: int,
        quote_asset: int,
        price_precision: int,
        qty_precision: int,
        tick: int,
        lot: int,
        min_qty: int,
        max_qty: int,
        min_notional: int,
        tradable: bool = True,
        native_stops: bool = False,
    ) -> None:
        if not 0 <= instrument_id < self.max_instruments or instrument_id in self.instruments:
            raise ValueError(f"instrument id {instrument_id} out of range or already added")
        if not 0 <= exchange_id < self.max_exchanges:
            raise ValueError(f"{symbol}: exchange id {exchange_id} out of range")
        if base_asset not in self.assets or quote_asset not in self.assets:
            raise ValueError(f"{symbol}: unknown base or quote asset")
        shift = self.assets[quote_asset] - price_precision - qty_precision
        if shift < 0:
            raise ValueError(
                f"{symbol}: quote asset precision must be >= price + quantity precision"
            )
        base_shift = self.assets[base_asset] - qty_precision
        if base_shift < 0:
            raise ValueError(f"{symbol}: base asset precision must be >= quantity precision")
        if tick <= 0 or lot <= 0 or min_qty < 0 or max_qty <= 0 or min_notional < 0:
            raise ValueError(f"{symbol}: tick, lot and max qty must be positive")
        self.instruments[instrument_id] = Instrument(
            instrument_id, symbol, exchange_id, base_asset, quote_asset, price_precision,
            qty_precision, tick, lot, min_qty, max_qty, min_notional, 10**shift,
            10**base_shift, tradable, native_stops,
        )

    def add_account(self, account_id: int) -> None:
        if not 0 <= account_id < self.max_accounts or account_id in self.accounts:
            raise ValueError(f"account id {account_id} out of range or already added")
        self.accounts[account_id] = Account(account_id)

    def add_strategy(self, strategy_id: int, single_entry: bool = False) -> None:
        if not 0 < strategy_id < self.max_strategies or strategy_id in self.strategies:
            raise ValueError(f"strategy id {strategy_id} out of range or already added")
        self.strategies[strategy_id] = single_entry
        self.strategy_kill[strategy_id] = KillMode.OFF

    def set_limit(self, account_id: int, limit: int, value: int) -> int:
        account = self.accounts.get(account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        check_limit_value(limit, value)
        account.limits[limit] = value
        lim = account.limits
        if limit in (Limit.ORDER_RATE, Limit.ORDER_BURST):
            account.order_bucket.configure(lim[Limit.ORDER_RATE], lim[Limit.ORDER_BURST])
        elif limit in (Limit.MESSAGE_RATE, Limit.MESSAGE_BURST):
            account.message_bucket.configure(lim[Limit.MESSAGE_RATE], lim[Limit.MESSAGE_BURST])
        elif limit in (Limit.REJECT_RATE, Limit.REJECT_BURST):
            account.reject_bucket.configure(lim[Limit.REJECT_RATE], lim[Limit.REJECT_BURST])
        elif limit in (Limit.EXCHANGE_RATE, Limit.EXCHANGE_BURST):
            for exchange_id in range(self.max_exchanges):
                bucket = account.exchange_buckets.setdefault(exchange_id, TokenBucket())
                bucket.configure(lim[Limit.EXCHANGE_RATE], lim[Limit.EXCHANGE_BURST])
        return Reject.OK

    def set_kill(self, level: int, target: int, mode: int) -> int:
        """Kill switch: level 0 global, 1 account, 2 strategy."""
        if level == 0:
            self.global_kill = mode
        elif level == 1:
            if target not in self.accounts:
                return Reject.UNKNOWN_ACCOUNT
            self.accounts[target].kill = mode
        elif level == 2:
            if target not in self.strategies:
                return Reject.UNKNOWN_STRATEGY
            self.strategy_kill[target] = mode
        else:
            raise ValueError(f"kill level {level} not 0, 1 or 2")
        return Reject.OK

    def deposit(self, account_id: int, asset_id: int, amount: int) -> int:
        if account_id not in self.accounts:
            return Reject.UNKNOWN_ACCOUNT
        if asset_id not in self.assets:
            raise ValueError(f"unknown asset {asset_id}")
        self._balance(account_id, asset_id)[0] += amount
        return Reject.OK

    # ------------------------------------------------------------------ market prices
    def set_price(
        self, instrument_id: int, last: int, bid: int, ask: int, ts: int, stale: bool = False
    ) -> int:
        """Record reference prices and trigger the held stop orders they reach. A ``last`` of 0
        means the update carries no trade price (a book-only update): the last trade stands."""
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return Reject.UNKNOWN_INSTRUMENT
        if last > 0:
            inst.last = last
        inst.bid, inst.ask, inst.price_ts, inst.stale = bid, ask, ts, stale
        if last > 0:
            self._trigger_stops(inst, last, ts)
        return Reject.OK

    def _trigger_stops(self, inst: Instrument, last: int, ts: int) -> None:
        fired = []
        for oid in sorted(self.orders):
            o = self.orders[oid]
            if o.instrument != inst.instrument_id or o.hold != Hold.TRIGGER:
                continue
            if o.status in TERMINAL:
                continue
            if o.order_type == OrderType.TRAILING_STOP:
                if o.is_buy:
                    o.trail_anchor = min(o.trail_anchor, last)
                    hit = last >= o.trail_anchor + o.trail_offset
                else:
                    o.trail_anchor = max(o.trail_anchor, last)
                    hit = last <= o.trail_anchor - o.trail_offset
            elif (o.order_type == OrderType.TAKE_PROFIT) != o.is_buy:
                hit = last >= o.trigger  # buy stop, sell take-profit
            else:
                hit = last <= o.trigger  # sell stop, buy take-profit
            if hit:
                fired.append(o)
        for o in fired:
            o.hold = Hold.NONE
            self._emit(EventType.SEND_ORDER, o, 0, 0, 0, ts)

    def mark_to_market(self, ts: int) -> None:
        """Revalue every position at its instrument's last price; run the loss breakers."""
        for (account_id, instrument_id), pos in self.positions.items():
            mark = self.instruments[instrument_id].last
            if mark > 0:
                self._revalue(self.accounts[account_id], pos, self.instruments[instrument_id],
                              mark)
        for account_id in sorted(self.accounts):
            self._check_breakers(self.accounts[account_id], ts)

    def start_of_day(self, ts: int) -> None:
        for account in self.accounts.values():
            account.day_start_pnl = account.pnl()

    # ------------------------------------------------------------------ commands
    def submit(
        self,
        account_id: int,
        strategy_id: int,
        instrument_id: int,
        cl_ord_id: int,
        side: int,
        order_type: int,
        tif: int,
        price: int,
        trigger: int,
        qty: int,
        flags: int,
        expire_ts: int,
        ts: int,
        trail_offset: int = 0,
    ) -> tuple[int, int]:
        """Check and insert one order. Return (Reject code, order id or 0)."""
        code, reserve_price = self._check_new(
            account_id, strategy_id, instrument_id, cl_ord_id, side, order_type, tif, price,
            trigger, qty, flags, expire_ts, ts, trail_offset, True,
        )
        if code != Reject.OK:
            return self._rejected(account_id, code, ts), 0
        o = self._insert(account_id, strategy_id, instrument_id, cl_ord_id, side, order_type,
                         tif, price, trigger, qty, flags, expire_ts, ts, trail_offset,
                         reserve_price)
        if o is None:
            return self._rejected(account_id, Reject.TABLE_FULL, ts), 0
        self._hold_or_send(o, ts)
        return Reject.OK, o.order_id

    def submit_oco(
        self,
        account_id: int,
        strategy_id: int,
        instrument_id: int,
        cl_ord_id_1: int,
        cl_ord_id_2: int,
        side: int,
        type_1: int,
        price_1: int,
        trigger_1: int,
        type_2: int,
        price_2: int,
        trigger_2: int,
        qty: int,
        tif: int,
        ts: int,
    ) -> tuple[int, int, int]:
        """Two legs of one size; when one fills or ends the other is canceled."""
        if account_id not in self.accounts:
            return Reject.UNKNOWN_ACCOUNT, 0, 0
        if cl_ord_id_1 == cl_ord_id_2:
            return self._rejected(account_id, Reject.DUPLICATE_CLIENT_ORDER_ID, ts), 0, 0
        if type_1 == OrderType.TRAILING_STOP or type_2 == OrderType.TRAILING_STOP:
            return self._rejected(account_id, Reject.INVALID_CONTINGENCY, ts), 0, 0
        legs = ((cl_ord_id_1, type_1, price_1, trigger_1), (cl_ord_id_2, type_2, price_2,
                                                            trigger_2))
        reserve_prices = []
        for i, (clid, otype, price, trigger) in enumerate(legs):
            code, reserve_price = self._check_new(
                account_id, strategy_id, instrument_id, clid, side, otype, tif, price, trigger,
                qty, 0, 0, ts, 0, i == 0,
            )
            if code != Reject.OK:
                return self._rejected(account_id, code, ts), 0, 0
            reserve_prices.append(reserve_price)
        if len(self.orders) + 2 > self.max_orders and not self._evict(2):
            return self._rejected(account_id, Reject.TABLE_FULL, ts), 0, 0
        a = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_1, side, type_1, tif,
                         price_1, trigger_1, qty, 0, 0, ts, 0, reserve_prices[0], oco=True)
        b = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_2, side, type_2, tif,
                         price_2, trigger_2, qty, 0, 0, ts, 0, reserve_prices[1], oco=True)
        assert a is not None and b is not None
        self._link_oco(a, b, qty)
        self._hold_or_send(a, ts)
        self._hold_or_send(b, ts)
        return Reject.OK, a.order_id, b.order_id

    def submit_bracket(
        self,
        account_id: int,
        strategy_id: int,
        instrument_id: int,
        cl_ord_id: int,
        tp_cl_ord_id: int,
        sl_cl_ord_id: int,
        side: int,
        entry_type: int,
        entry_price: int,
        qty: int,
        tp_price: int,
        sl_trigger: int,
        tif: int,
        ts: int,
    ) -> tuple[int, int, int, int]:
        """Entry plus take-profit (limit) and stop-loss (stop market) released when it ends
        with a fill, sized to what it filled; with both, they form an OCO pair. A zero price
        leaves a leg out (one leg: a plain OTO)."""
        if account_id not in self.accounts:
            return Reject.UNKNOWN_ACCOUNT, 0, 0, 0
        code = self._check_bracket(
            account_id, instrument_id, cl_ord_id, tp_cl_ord_id, sl_cl_ord_id, side, entry_type,
            entry_price, tp_price, sl_trigger,
        )
        if code != Reject.OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        code, reserve_price = self._check_new(
            account_id, strategy_id, instrument_id, cl_ord_id, side, entry_type, tif,
            entry_price, 0, qty, 0, 0, ts, 0, True,
        )
        if code != Reject.OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        needed = 1 + (tp_price > 0) + (sl_trigger > 0)
        if len(self.orders) + needed > self.max_orders and not self._evict(needed):
            return self._rejected(account_id, Reject.TABLE_FULL, ts), 0, 0, 0
        entry = self._insert(account_id, strategy_id, instrument_id, cl_ord_id, side,
                             entry_type, tif, entry_price, 0, qty, 0, 0, ts, 0, reserve_price)
        assert entry is not None
        exit_side = Side.SELL if side == Side.BUY else Side.BUY
        children = []
        if tp_price > 0:
            tp = self._insert(account_id, strategy_id, instrument_id, tp_cl_ord_id, exit_side,
                              OrderType.LIMIT, TimeInForce.GTC, tp_price, 0, qty,
                              OrderFlag.REDUCE_ONLY, 0, ts, 0, tp_price, child=True)
            assert tp is not None
            tp.exit_reason = ExitReason.TAKE_PROFIT
            children.append(tp)
        if sl_trigger > 0:
            sl = self._insert(account_id, strategy_id, instrument_id, sl_cl_ord_id, exit_side,
                              OrderType.STOP_MARKET, TimeInForce.GTC, 0, sl_trigger, qty,
                              OrderFlag.REDUCE_ONLY, 0, ts, 0, sl_trigger, child=True)
            assert sl is not None
            children.append(sl)
        for child in children:
            child.parent_id = entry.order_id
            child.contingency = Contingency.OTO
        if len(children) == 2:
            self._link_oco(children[0], children[1], qty)
        entry.child1_id = children[0].order_id if children else 0
        entry.child2_id = children[1].order_id if len(children) == 2 else 0
        for child in children:
            self._sync_reserve(child)
        self._hold_or_send(entry, ts)
        ids = [c.order_id for c in children]
        tp_id = ids[0] if tp_price > 0 else 0
        sl_id = ids[-1] if sl_trigger > 0 else 0
        return Reject.OK, entry.order_id, tp_id, sl_id

    def cancel(self, account_id: int, order_id: int, ts: int) -> int:
        account = self.accounts.get(account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        account.message_bucket.take(ts)  # counted, never refused: cancels must always go
        o = self.orders.get(order_id)
        if o is None or o.account != account_id:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.ORDER_CLOSED
        if o.status == S.PENDING_CANCEL:
            return Reject.CANCEL_PENDING
        if o.status == S.PENDING_REPLACE:
            return Reject.REPLACE_PENDING
        self._request_cancel(o, ts)
        return Reject.OK

    def cancel_by_client_id(self, account_id: int, cl_ord_id: int, ts: int) -> int:
        order_id = self.by_cl.get((account_id, cl_ord_id), 0)
        return self.cancel(account_id, order_id, ts)

    def mass_cancel(self, account_id: int, strategy_id: int, instrument_id: int, ts: int) -> int:
        """Cancel the account's live orders, filtered by strategy and instrument (ANY = all).
        Return how many cancels were started."""
        account = self.accounts.get(account_id)
        if account is None:
            return 0
        count = 0
        for oid in list(account.live_orders):
            o = self.orders[oid]
            if o.status in TERMINAL or o.status in (S.PENDING_CANCEL, S.PENDING_REPLACE):
                continue
            if strategy_id != ANY and o.strategy != strategy_id:
                continue
            if instrument_id != ANY and o.instrument != instrument_id:
                continue
            self._request_cancel(o, ts)
            count += 1
        return count

    def replace(self, account_id: int, order_id: int, new_price: int, new_qty: int,
                ts: int) -> int:
        account = self.accounts.get(account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        code = self._check_replace(account, order_id, new_price, new_qty, ts)
        if code != Reject.OK:
            return self._rejected(account_id, code, ts)
        o = self.orders[order_id]
        o.pending_price, o.pending_qty = new_price, new_qty
        self._set_status(o, S.PENDING_REPLACE, ts)
        self._emit(EventType.SEND_REPLACE, o, 0, new_price, new_qty, ts)
        return Reject.OK

    # ------------------------------------------------------------------ venue events
    def on_sent(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        o.ts_sent = ts
        return Reject.OK

    def on_ack(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        if o.ts_ack == 0:
            o.ts_ack = ts
        if o.status == S.PENDING_NEW:
            self._set_status(o, S.NEW, ts)
        return Reject.OK

    def on_reject(self, order_id: int, reason: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.ts_ack != 0 or o.filled != 0 or o.status not in (S.PENDING_NEW, S.PENDING_CANCEL):
            return Reject.INVALID_TRANSITION
        o.reason = reason
        self._set_status(o, S.REJECTED, ts)
        return Reject.OK

    def on_canceled(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        self._set_status(o, S.EXPIRED if o.expiring else S.CANCELED, ts)
        return Reject.OK

    def on_cancel_reject(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_CANCEL:
            return Reject.INVALID_TRANSITION
        o.expiring = False
        self._set_status(o, self._working_status(o), ts)
        return Reject.OK

    def on_replaced(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_REPLACE:
            return Reject.INVALID_TRANSITION
        o.price, o.reserve_price = o.pending_price, o.pending_price
        o.qty = max(o.pending_qty, o.filled)
        o.pending_price = o.pending_qty = 0
        self._set_status(o, S.FILLED if o.filled >= o.qty else self._working_status(o), ts)
        return Reject.OK

    def on_replace_reject(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_REPLACE:
            return Reject.INVALID_TRANSITION
        o.pending_price = o.pending_qty = 0
        self._set_status(o, S.FILLED if o.filled >= o.qty else self._working_status(o), ts)
        return Reject.OK

    def on_expired(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        self._set_status(o, S.EXPIRED, ts)
        return Reject.OK

    def on_fill(
        self,
        order_id: int,
        trade_id: int,
        qty: int,
        price: int,
        fee: int,
        fee_asset: int,
        liquidity: int,
        ts: int,
    ) -> int:
        o = self.orders.get(order_id)
        if o is None:
            self._alert(Alert.UNKNOWN_ORDER_FILL, 0, 0, 0, order_id, trade_id, qty, ts)
            return Reject.UNKNOWN_ORDER
        if qty <= 0 or price <= 0 or qty > MAX_RAW or price > MAX_RAW or fee_asset not in (
            self.assets
        ):
            return Reject.INVALID_FILL
        if price * qty * self.instruments[o.instrument].notional_mult > MAX_NOTIONAL:
            return Reject.INVALID_FILL
        key = (o.instrument, trade_id)
        if key in self.seen_trades:
            self.duplicate_fills += 1
            return Reject.DUPLICATE_FILL
        if o.filled + qty > self._live_qty(o):
            self.overfills += 1
            account = self.accounts[o.account]
            account.kill = KillMode.HALT
            self._alert(Alert.OVERFILL, o.account, o.instrument, o.strategy, order_id,
                        o.filled + qty, self._live_qty(o), ts)
            return Reject.OVERFILL
        self._remember_trade(key)
        if o.status == S.REJECTED:
            self._alert(Alert.FILL_ON_REJECTED_ORDER, o.account, o.instrument, o.strategy,
                        order_id, trade_id, qty, ts)
        inst = self.instruments[o.instrument]
        account = self.accounts[o.account]
        o.filled += qty
        o.fill_notional += price * qty
        o.ts_last_fill = ts
        # ledger
        signed = qty if o.is_buy else -qty
        exit_reason = o.exit_reason
        pos = self._position(o.account, o.instrument)
        self._apply_fill(account, pos, inst, signed, price, exit_reason, o, ts, True)
        spos = self._strategy_position(o.account, o.strategy, o.instrument)
        self._apply_fill(account, spos, inst, signed, price, exit_reason, o, ts, False)
        akey = (o.account, inst.base_asset)
        self.asset_positions[akey] = self.asset_positions.get(akey, 0) + signed * inst.base_mult
        if fee_asset == inst.quote_asset:
            pos.fees += fee
            spos.fees += fee
            account.fees += fee
        if o.locks_funds:
            notional = price * qty * inst.notional_mult
            base = qty * inst.base_mult
            quote_bal = self._balance(o.account, inst.quote_asset)
            base_bal = self._balance(o.account, inst.base_asset)
            if o.is_buy:
                quote_bal[0] -= notional
                base_bal[0] += base
            else:
                quote_bal[0] += notional
                base_bal[0] -= base
        self._balance(o.account, fee_asset)[0] -= fee
        # order state
        if o.status in TERMINAL:
            if o.filled == o.qty and o.status != S.FILLED:
                self._set_status(o, S.FILLED, ts)
            else:
                self._sync_reserve(o)
                self._emit(EventType.ORDER_UPDATE, o, o.status, o.filled, qty, ts)
        elif o.filled >= self._live_qty(o):
            self._set_status(o, S.FILLED, ts)
        elif o.status in (S.PENDING_NEW, S.NEW):
            self._set_status(o, S.PARTIALLY_FILLED, ts)
        else:
            self._sync_reserve(o)
            self._emit(EventType.ORDER_UPDATE, o, o.status, o.filled, qty, ts)
        self._emit(EventType.POSITION_UPDATE, o, 0, pos.qty, pos.realized, ts)
        moved = [inst.quote_asset, inst.base_asset] if o.locks_funds else []
        for asset in dict.fromkeys(moved + [fee_asset]):  # each asset once, in this order
            total, locked = self.balance(o.account, asset)
            self._emit(EventType.BALANCE_UPDATE, o, asset, total, locked, ts)
        if o.contingency == Contingency.OCO and o.status not in TERMINAL:
            self._resize_oco_peer(o, ts)
        self._check_breakers(account, ts)
        return Reject.OK

    def on_timer(self, ts: int) -> int:
        """Expire GTD/DAY orders whose time has come; return how many expiries were started."""
        due = sorted(
            (o.expire_ts, o.order_id)
            for o in self.orders.values()
            if o.expire_ts != 0 and o.expire_ts <= ts and o.status not in TERMINAL
            and o.status != S.PENDING_CANCEL
        )
        started = 0
        for _, oid in due:
            o = self.orders[oid]
            if o.status in TERMINAL or o.status == S.PENDING_CANCEL:
                continue  # a cascade from an earlier expiry already closed it
            o.expiring = True
            self._request_cancel(o, ts, internal=True)
            started += 1
        return started

    # ------------------------------------------------------------------ queries
    def order(self, order_id: int) -> dict | None:
        o = self.orders.get(order_id)
        if o is None:
            return None
        return {name: getattr(o, name) for name in ORDER_FIELDS}

    def order_id_by_client_id(self, account_id: int, cl_ord_id: int) -> int:
        return self.by_cl.get((account_id, cl_ord_id), 0)

    def position(self, account_id: int, instrument_id: int) -> dict:
        pos = self.positions.get((account_id, instrument_id), Position())
        return {name: getattr(pos, name) for name in POSITION_FIELDS}

    def strategy_position(self, account_id: int, strategy_id: int, instrument_id: int) -> dict:
        pos = self.strategy_positions.get((account_id, strategy_id, instrument_id), Position())
        return {name: getattr(pos, name) for name in POSITION_FIELDS}

    def asset_position(self, account_id: int, asset_id: int) -> int:
        return self.asset_positions.get((account_id, asset_id), 0)

    def balance(self, account_id: int, asset_id: int) -> tuple[int, int]:
        total, locked = self.balances.get((account_id, asset_id), [0, 0])
        return total, locked

    def unrealized(self, account_id: int, instrument_id: int, mark: int) -> int:
        pos = self.positions.get((account_id, instrument_id), Position())
        return pos.qty * mark * self.instruments[instrument_id].notional_mult - pos.cost

    def account_state(self, account_id: int) -> dict:
        a = self.accounts[account_id]
        return {name: getattr(a, name) for name in ACCOUNT_FIELDS}

    def live_orders(self, account_id: int) -> list[int]:
        return list(self.accounts[account_id].live_orders)

    def open_order_count(self) -> int:
        return sum(a.open_orders for a in self.accounts.values())

    def drain_events(self) -> list[tuple[int, int, int, int, int, int, int, int, int]]:
        events, self.events = self.events, []
        return events

    # ------------------------------------------------------------------ checks
    def _rejected(self, account_id: int, code: int, ts: int) -> int:
        account = self.accounts.get(account_id)
        if account is not None and account.limits[Limit.REJECT_RATE] > 0:
            if not account.reject_bucket.take(ts) and account.kill != KillMode.HALT:
                account.kill = KillMode.HALT
                self._alert(Alert.REJECT_RATE_BREAKER, account_id, 0, 0, 0,
                            account.limits[Limit.REJECT_RATE], 0, ts)
        return code

    def _check_new(
        self, account_id, strategy_id, instrument_id, cl_ord_id, side, order_type, tif, price,
        trigger, qty, flags, expire_ts, ts, trail_offset, count_message,
    ) -> tuple[int, int]:
        """All pre-trade checks, in their fixed order. Return (code, reserve price)."""
        R = Reject
        account = self.accounts.get(account_id)
        if account is None:
            return R.UNKNOWN_ACCOUNT, 0
        lim = account.limits
        if count_message and not account.message_bucket.take(ts):
            return R.MESSAGE_RATE_EXCEEDED, 0
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return R.UNKNOWN_INSTRUMENT, 0
        if not inst.tradable:
            return R.INSTRUMENT_NOT_TRADABLE, 0
        if strategy_id not in self.strategies:
            return R.UNKNOWN_STRATEGY, 0
        if side not in (Side.BUY, Side.SELL):
            return R.INVALID_SIDE, 0
        if not OrderType.MARKET <= order_type <= OrderType.TRAILING_STOP:
            return R.INVALID_ORDER_TYPE, 0
        if not TimeInForce.GTC <= tif <= TimeInForce.DAY:
            return R.INVALID_TIME_IN_FORCE, 0
        if flags & ~(OrderFlag.REDUCE_ONLY | OrderFlag.POST_ONLY):
            return R.INVALID_FLAGS, 0
        if flags & OrderFlag.POST_ONLY and (
            order_type != OrderType.LIMIT or tif in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            return R.INVALID_FLAGS, 0
        if qty <= 0 or qty > MAX_RAW:
            return R.INVALID_QUANTITY, 0
        if order_type in PRICED_TYPES:
            if price <= 0 or price > MAX_RAW:
                return R.INVALID_PRICE, 0
        elif price != 0:
            return R.INVALID_PRICE, 0
        if order_type in TRIGGER_TYPES:
            if trigger <= 0 or trigger > MAX_RAW or trail_offset != 0:
                return R.INVALID_TRIGGER_PRICE, 0
        elif order_type == OrderType.TRAILING_STOP:
            if trail_offset <= 0 or trail_offset > MAX_RAW or trigger != 0:
                return R.INVALID_TRIGGER_PRICE, 0
        elif trigger != 0 or trail_offset != 0:
            return R.INVALID_TRIGGER_PRICE, 0
        if tif in (TimeInForce.GTD, TimeInForce.DAY):
            if expire_ts <= ts:
                return R.INVALID_EXPIRY, 0
        elif expire_ts != 0:
            return R.INVALID_EXPIRY, 0
        if price % inst.tick or trigger % inst.tick or trail_offset % inst.tick:
            return R.PRICE_NOT_TICK_MULTIPLE, 0
        if qty % inst.lot:
            return R.QUANTITY_NOT_LOT_MULTIPLE, 0
        if qty < inst.min_qty:
            return R.BELOW_MIN_QUANTITY, 0
        if qty > inst.max_qty:
            return R.ABOVE_MAX_QUANTITY, 0
        collar_on = lim[Limit.COLLAR_BPS] > 0 or lim[Limit.COLLAR_TICKS] > 0
        needs_ref = order_type in (OrderType.MARKET, OrderType.TRAILING_STOP)
        use_mid = lim[Limit.COLLAR_USE_MID] != 0
        ref2 = (inst.bid + inst.ask) if use_mid else 2 * inst.last
        if use_mid and (inst.bid <= 0 or inst.ask <= 0):
            ref2 = 0
        if needs_ref or collar_on:
            if ref2 <= 0:
                return R.NO_REFERENCE_PRICE, 0
            max_age = lim[Limit.MAX_REFERENCE_AGE_NS]
            if inst.stale or (max_age > 0 and ts - inst.price_ts > max_age):
                return R.STALE_REFERENCE_PRICE, 0
        if order_type in PRICED_TYPES:
            reserve_price = price
        elif order_type in TRIGGER_TYPES:
            reserve_price = trigger
        else:
            reserve_price = ref2 // 2
        notional = reserve_price * qty * inst.notional_mult
        if notional > MAX_NOTIONAL:
            return R.NOTIONAL_OVERFLOW, 0
        if notional < inst.min_notional:
            return R.BELOW_MIN_NOTIONAL, 0
        code, reduce_mode = self._kill_switch(account, strategy_id)
        if code != R.OK:
            return code, 0
        pos = self.positions.get((account_id, instrument_id), Position())
        is_buy = side == Side.BUY
        if reduce_mode or flags & OrderFlag.REDUCE_ONLY:
            if is_buy:
                reduces = pos.qty + pos.open_buy + qty <= 0
            else:
                reduces = pos.qty - pos.open_sell - qty >= 0
            if not reduces:
                return (R.REDUCE_ONLY_MODE if reduce_mode else R.REDUCE_ONLY_VIOLATION), 0
        if (account_id, cl_ord_id) in self.by_cl:
            return R.DUPLICATE_CLIENT_ORDER_ID, 0
        if not account.order_bucket.take(ts):
            return R.ORDER_RATE_EXCEEDED, 0
        bucket = account.exchange_buckets.get(inst.exchange_id)
        if bucket is not None and not bucket.take(ts):
            return R.EXCHANGE_RATE_EXCEEDED, 0
        if lim[Limit.MAX_ORDER_QTY] and qty > lim[Limit.MAX_ORDER_QTY]:
            return R.MAX_ORDER_QUANTITY, 0
        if lim[Limit.MAX_ORDER_NOTIONAL] and notional > lim[Limit.MAX_ORDER_NOTIONAL]:
            return R.MAX_ORDER_NOTIONAL, 0
        if collar_on and order_type in PRICED_TYPES:
            bps, ticks = lim[Limit.COLLAR_BPS], lim[Limit.COLLAR_TICKS]
            if bps > 0:
                if is_buy:
                    outside = 2 * price * 10000 > ref2 * (10000 + bps)
                else:
                    outside = 2 * price * 10000 < ref2 * (10000 - bps)
            elif is_buy:
                outside = 2 * price > ref2 + 2 * ticks * inst.tick
            else:
                outside = 2 * price < ref2 - 2 * ticks * inst.tick
            if outside:
                return R.PRICE_COLLAR, 0
        if lim[Limit.LONG_ONLY] and not is_buy and pos.qty - pos.open_sell - qty < 0:
            return R.LONG_ONLY, 0
        if self.strategies[strategy_id]:
            spos = self.strategy_positions.get(
                (account_id, strategy_id, instrument_id), Position()
            )
            if is_buy and (spos.qty > 0 or spos.open_buy > 0):
                return R.SINGLE_ENTRY, 0
            if not is_buy and spos.qty - spos.open_sell <= 0:
                return R.SINGLE_ENTRY, 0
        code = self._position_limit(lim, pos, is_buy, qty)
        if code != R.OK:
            return code, 0
        if lim[Limit.MAX_OPEN_ORDERS] and account.open_orders + 1 > lim[Limit.MAX_OPEN_ORDERS]:
            return R.MAX_OPEN_ORDERS, 0
        code = self._exposure_limit(lim, account, is_buy, notional)
        if code != R.OK:
            return code, 0
        if lim[Limit.CHECK_BALANCE]:
            if is_buy:
                total, locked = self.balance(account_id, inst.quote_asset)
                if total - locked < notional:
                    return R.INSUFFICIENT_BALANCE, 0
            else:
                total, locked = self.balance(account_id, inst.base_asset)
                if total - locked < qty * inst.base_mult:
                    return R.INSUFFICIENT_BALANCE, 0
        goes_now = order_type in (OrderType.MARKET, OrderType.LIMIT) or inst.native_stops
        if goes_now and self._crosses_own(account_id, instrument_id, is_buy, order_type, price,
                                          0):
            return R.SELF_TRADE, 0
        return R.OK, reserve_price

    def _kill_switch(self, account: Account, strategy_id: int) -> tuple[int, bool]:
        """HALT at any level rejects; REDUCE_ONLY at any level means reduce-only mode."""
        if self.global_kill == KillMode.HALT:
            return Reject.GLOBAL_HALT, False
        if account.kill == KillMode.HALT:
            return Reject.ACCOUNT_HALTED, False
        if self.strategy_kill[strategy_id] == KillMode.HALT:
            return Reject.STRATEGY_HALTED, False
        return Reject.OK, KillMode.REDUCE_ONLY in (
            self.global_kill, account.kill, self.strategy_kill[strategy_id]
        )

    @staticmethod
    def _position_limit(lim: dict[int, int], pos: Position, is_buy: bool, add_qty: int) -> int:
        """Max position per instrument, counting open orders (worst case if all fill)."""
        max_pos = lim[Limit.MAX_POSITION]
        if max_pos:
            if is_buy and pos.qty + pos.open_buy + add_qty > max_pos:
                return Reject.MAX_POSITION
            if not is_buy and pos.open_sell + add_qty - pos.qty > max_pos:
                return Reject.MAX_POSITION
        return Reject.OK

    @staticmethod
    def _exposure_limit(lim: dict[int, int], account: Account, is_buy: bool, add: int) -> int:
        """Max gross and net exposure: positions at their last valuation plus open orders."""
        max_gross, max_net = lim[Limit.MAX_GROSS_EXPOSURE], lim[Limit.MAX_NET_EXPOSURE]
        if max_gross and (
            account.gross + account.open_buy_notional + account.open_sell_notional + add
            > max_gross
        ):
            return Reject.MAX_GROSS_EXPOSURE
        if max_net:
            if is_buy and account.net + account.open_buy_notional + add > max_net:
                return Reject.MAX_NET_EXPOSURE
            if not is_buy and account.open_sell_notional + add - account.net > max_net:
                return Reject.MAX_NET_EXPOSURE
        return Reject.OK

    def _crosses_own(self, account_id, instrument_id, is_buy, order_type, price,
                     exclude) -> bool:
        """True when the account rests an opposite order the new one would trade against."""
        for oid in self.accounts[account_id].live_orders:
            o = self.orders[oid]
            if oid == exclude or o.instrument != instrument_id or o.is_buy == is_buy:
                continue
            if not self._rests(o):
                continue
            if order_type == OrderType.MARKET:
                return True
            if (is_buy and price >= o.price) or (not is_buy and price <= o.price):
                return True
        return False

    @staticmethod
    def _rests(o: Order) -> bool:
        """An order resting at the venue at a limit price."""
        return (
            o.hold == Hold.NONE and o.status not in TERMINAL and o.order_type in PRICED_TYPES
        )

    def _check_bracket(self, account_id, instrument_id, cl_ord_id, tp_cl, sl_cl, side,
                       entry_type, entry_price, tp_price, sl_trigger) -> int:
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return Reject.UNKNOWN_INSTRUMENT
        if entry_type not in (OrderType.MARKET, OrderType.LIMIT):
            return Reject.INVALID_CONTINGENCY
        if tp_price < 0 or sl_trigger < 0 or tp_price > MAX_RAW or sl_trigger > MAX_RAW:
            return Reject.INVALID_CONTINGENCY
        if tp_price % inst.tick or sl_trigger % inst.tick:
            return Reject.PRICE_NOT_TICK_MULTIPLE
        if tp_price and sl_trigger and (
            (side == Side.BUY and tp_price <= sl_trigger)
            or (side == Side.SELL and tp_price >= sl_trigger)
        ):
            return Reject.INVALID_CONTINGENCY
        if entry_type == OrderType.LIMIT and (
            (tp_price and (tp_price <= entry_price) == (side == Side.BUY))
            or (sl_trigger and (sl_trigger >= entry_price) == (side == Side.BUY))
        ):
            return Reject.INVALID_CONTINGENCY
        clids = [cl_ord_id] + [c for c, p in ((tp_cl, tp_price), (sl_cl, sl_trigger)) if p]
        if len(set(clids)) != len(clids):
            return Reject.DUPLICATE_CLIENT_ORDER_ID
        for clid in clids[1:]:
            if (account_id, clid) in self.by_cl:
                return Reject.DUPLICATE_CLIENT_ORDER_ID
        return Reject.OK

    def _check_replace(self, account: Account, order_id, new_price, new_qty, ts) -> int:
        R = Reject
        lim = account.limits
        if not account.message_bucket.take(ts):
            return R.MESSAGE_RATE_EXCEEDED
        o = self.orders.get(order_id)
        if o is None or o.account != account.account_id:
            return R.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return R.ORDER_CLOSED
        if o.status == S.PENDING_CANCEL:
            return R.CANCEL_PENDING
        if o.status == S.PENDING_REPLACE:
            return R.REPLACE_PENDING
        if (
            o.order_type not in PRICED_TYPES
            or o.hold != Hold.NONE
            or o.status not in (S.NEW, S.PARTIALLY_FILLED)
        ):
            return R.NOT_REPLACEABLE
        if new_qty <= o.filled or new_qty > MAX_RAW:
            return R.INVALID_QUANTITY
        if new_price <= 0 or new_price > MAX_RAW:
            return R.INVALID_PRICE
        inst = self.instruments[o.instrument]
        if new_price % inst.tick:
            return R.PRICE_NOT_TICK_MULTIPLE
        if new_qty % inst.lot:
            return R.QUANTITY_NOT_LOT_MULTIPLE
        if new_qty < inst.min_qty:
            return R.BELOW_MIN_QUANTITY
        if new_qty > inst.max_qty:
            return R.ABOVE_MAX_QUANTITY
        notional = new_price * new_qty * inst.notional_mult
        if notional > MAX_NOTIONAL:
            return R.NOTIONAL_OVERFLOW
        if notional < inst.min_notional:
            return R.BELOW_MIN_NOTIONAL
        code, reduce_mode = self._kill_switch(account, o.strategy)
        if code != R.OK:
            return code
        if reduce_mode and new_qty > o.qty:
            return R.REDUCE_ONLY_MODE
        if lim[Limit.MAX_ORDER_QTY] and new_qty > lim[Limit.MAX_ORDER_QTY]:
            return R.MAX_ORDER_QUANTITY
        if lim[Limit.MAX_ORDER_NOTIONAL] and notional > lim[Limit.MAX_ORDER_NOTIONAL]:
            return R.MAX_ORDER_NOTIONAL
        bps, ticks = lim[Limit.COLLAR_BPS], lim[Limit.COLLAR_TICKS]
        if bps > 0 or ticks > 0:
            use_mid = lim[Limit.COLLAR_USE_MID] != 0
            ref2 = (inst.bid + inst.ask) if use_mid else 2 * inst.last
            if use_mid and (inst.bid <= 0 or inst.ask <= 0):
                ref2 = 0
            if ref2 <= 0:
                return R.NO_REFERENCE_PRICE
            max_age = lim[Limit.MAX_REFERENCE_AGE_NS]
            if inst.stale or (max_age > 0 and ts - inst.price_ts > max_age):
                return R.STALE_REFERENCE_PRICE
            if bps > 0:
                if o.is_buy:
                    outside = 2 * new_price * 10000 > ref2 * (10000 + bps)
                else:
                    outside = 2 * new_price * 10000 < ref2 * (10000 - bps)
            elif o.is_buy:
                outside = 2 * new_price > ref2 + 2 * ticks * inst.tick
            else:
                outside = 2 * new_price < ref2 - 2 * ticks * inst.tick
            if outside:
                return R.PRICE_COLLAR
        # what the replace adds to the worst case, while it is pending
        new_rem = max(o.qty, new_qty) - o.filled
        add_qty = new_rem - o.reserved_qty
        add_notional = new_rem * max(o.reserve_price, new_price) * inst.notional_mult - (
            o.reserved_notional
        )
        pos = self.positions.get((account.account_id, o.instrument), Position())
        if (o.contingency != Contingency.OCO or o.reserved_qty > 0) and add_qty > 0:
            if lim[Limit.LONG_ONLY] and not o.is_buy and pos.qty - pos.open_sell - add_qty < 0:
                return R.LONG_ONLY
            code = self._position_limit(lim, pos, o.is_buy, add_qty)
            if code != R.OK:
                return code
        if (o.contingency != Contingency.OCO or o.reserved_qty > 0) and add_notional > 0:
            code = self._exposure_limit(lim, account, o.is_buy, add_notional)
            if code != R.OK:
                return code
        if o.locks_funds and (o.contingency != Contingency.OCO or o.reserved_qty > 0):
            if o.is_buy:
                need = add_notional
                total, locked = self.balance(account.account_id, inst.quote_asset)
            else:
                need = add_qty * inst.base_mult
                total, locked = self.balance(account.account_id, inst.base_asset)
            if need > 0 and total - locked < need:
                return R.INSUFFICIENT_BALANCE
        if self._crosses_own(account.account_id, o.instrument, o.is_buy, OrderType.LIMIT,
                             new_price, o.order_id):
            return R.SELF_TRADE
        return R.OK

    # ------------------------------------------------------------------ state changes
    def _insert(self, account_id, strategy_id, instrument_id, cl_ord_id, side, order_type, tif,
                price, trigger, qty, flags, expire_ts, ts, trail_offset, reserve_price,
                oco=False, child=False) -> Order | None:
        if len(self.orders) >= self.max_orders and not self._evict(1):
            return None
        account = self.accounts[account_id]
        o = Order(self.next_order_id, cl_ord_id, account_id, strategy_id, instrument_id, side,
                  order_type, tif, flags, price, trigger, qty, expire_ts, trail_offset, ts)
        self.next_order_id += 1
        o.reserve_price = reserve_price
        o.ts_risk = ts
        o.locks_funds = account.limits[Limit.CHECK_BALANCE] != 0
        o.exit_reason = {
            OrderType.STOP_MARKET: ExitReason.STOP_LOSS,
            OrderType.STOP_LIMIT: ExitReason.STOP_LOSS,
            OrderType.TAKE_PROFIT: ExitReason.TAKE_PROFIT,
            OrderType.TRAILING_STOP: ExitReason.TRAILING_STOP,
        }.get(order_type, ExitReason.ORDER)
        if child:
            o.hold = Hold.PARENT
        elif order_type in STOP_TYPES and not (
            self.instruments[instrument_id].native_stops
            and order_type != OrderType.TRAILING_STOP
        ):
            o.hold = Hold.TRIGGER
        if order_type == OrderType.TRAILING_STOP:
            o.trail_anchor = reserve_price
        if oco:
            o.contingency = Contingency.OCO
        self.orders[o.order_id] = o
        self.by_cl[(account_id, cl_ord_id)] = o.order_id
        account.live_orders[o.order_id] = None
        account.open_orders += 1
        if not child:
            self._sync_reserve(o)
        return o

    def _hold_or_send(self, o: Order, ts: int) -> None:
        self._emit(EventType.ORDER_UPDATE, o, o.status, 0, 0, ts)
        if o.hold == Hold.NONE:
            self._emit(EventType.SEND_ORDER, o, 0, 0, 0, ts)

    def _evict(self, needed: int) -> bool:
        """Free slots by forgetting the oldest closed orders; forget none when that cannot
        make room (a rejected command changes nothing)."""
        if len(self.orders) - len(self.terminal_fifo) + needed > self.max_orders:
            return False
        while len(self.orders) + needed > self.max_orders:
            if not self.terminal_fifo:
                return False
            oid, _ = self.terminal_fifo.popitem(last=False)
            o = self.orders.pop(oid)
            del self.by_cl[(o.account, o.cl_ord_id)]
        return True

    def _link_oco(self, a: Order, b: Order, qty: int) -> None:
        a.contingency = b.contingency = Contingency.OCO
        a.linked_id, b.linked_id = b.order_id, a.order_id
        a.group_qty = b.group_qty = qty
        self._sync_reserve(b)  # the lower id carries the pair's reserve

    @staticmethod
    def _working_status(o: Order) -> int:
        if o.filled > 0:
            return S.PARTIALLY_FILLED
        return S.NEW if o.ts_ack else S.PENDING_NEW

    @staticmethod
    def _live_qty(o: Order) -> int:
        if o.status == S.PENDING_REPLACE:
            return max(o.qty, o.pending_qty)
        return o.qty

    def _set_status(self, o: Order, status: int, ts: int) -> None:
        was_terminal = o.status in TERMINAL
        o.status = status
        self._sync_reserve(o)
        self._emit(EventType.ORDER_UPDATE, o, status, o.filled, 0, ts)
        if status in TERMINAL and not was_terminal:
            o.ts_done = ts
            account = self.accounts[o.account]
            account.open_orders -= 1
            del account.live_orders[o.order_id]
            self.terminal_fifo[o.order_id] = None
            self._on_terminal(o, ts)

    def _on_terminal(self, o: Order, ts: int) -> None:
        if o.contingency == Contingency.OCO and o.linked_id:
            peer = self.orders.get(o.linked_id)
            if peer is not None and peer.status not in TERMINAL:
                self._sync_reserve(peer)  # the survivor now carries the reserve
                self._request_cancel(peer, ts, internal=True)
        if o.child1_id:
            children = [self.orders.get(o.child1_id), self.orders.get(o.child2_id)]
            for child in children:
                if child is None or child.status in TERMINAL or child.hold != Hold.PARENT:
                    continue
                if o.filled > 0:
                    child.qty = o.filled
                    child.group_qty = o.filled
                    inst = self.instruments[child.instrument]
                    child.hold = Hold.TRIGGER if (
                        child.order_type in STOP_TYPES and not inst.native_stops
                    ) else Hold.NONE
                    self._sync_reserve(child)
                    self._emit(EventType.ORDER_UPDATE, child, child.status, 0, 0, ts)
                    if child.hold == Hold.NONE:
                        self._emit(EventType.SEND_ORDER, child, 0, 0, 0, ts)
                else:
                    self._set_status(child, S.CANCELED, ts)

    def _request_cancel(self, o: Order, ts: int, internal: bool = False) -> None:
        if o.hold != Hold.NONE:
            self._set_status(o, S.EXPIRED if o.expiring else S.CANCELED, ts)
            return
        if o.status == S.PENDING_CANCEL:
            return
        if o.status == S.PENDING_REPLACE:
            o.pending_price = o.pending_qty = 0
        self._set_status(o, S.PENDING_CANCEL, ts)
        self._emit(EventType.SEND_CANCEL, o, 0, 0, 0, ts)

    def _resize_oco_peer(self, o: Order, ts: int) -> None:
        """A partial fill of one leg shrinks the other to what is left of the pair."""
        peer = self.orders.get(o.linked_id)
        if peer is None or peer.status in TERMINAL:
            return
        left = o.group_qty - o.filled - peer.filled
        target = peer.filled + left
        if target >= peer.qty:
            return
        if left <= 0:
            self._request_cancel(peer, ts, internal=True)
        elif peer.hold != Hold.NONE:
            peer.qty = target
            self._sync_reserve(peer)
            self._emit(EventType.ORDER_UPDATE, peer, peer.status, peer.filled, 0, ts)
        elif peer.status in (S.NEW, S.PARTIALLY_FILLED) and peer.order_type in PRICED_TYPES:
            peer.pending_price, peer.pending_qty = peer.price, target
            self._set_status(peer, S.PENDING_REPLACE, ts)
            self._emit(EventType.SEND_REPLACE, peer, 0, peer.price, target, ts)

    def _sync_reserve(self, o: Order) -> None:
        """Bring the order's share of open quantity, notional and locked funds up to date."""
        inst = self.instruments[o.instrument]
        if o.status in TERMINAL or o.hold == Hold.PARENT or (
            o.contingency == Contingency.OCO and not self._carries_pair(o)
        ):
            qty = notional = 0
        else:
            qty = max(0, self._live_qty(o) - o.filled)
            price = o.reserve_price
            if o.status == S.PENDING_REPLACE:
                price = max(price, o.pending_price)
            notional = qty * price * inst.notional_mult
        lock = 0
        if o.locks_funds:
            lock = notional if o.is_buy else qty * inst.base_mult
        dq, dn, dl = qty - o.reserved_qty, notional - o.reserved_notional, lock - o.locked
        if dq == 0 and dn == 0 and dl == 0:
            return
        o.reserved_qty, o.reserved_notional, o.locked = qty, notional, lock
        account = self.accounts[o.account]
        pos = self._position(o.account, o.instrument)
        spos = self._strategy_position(o.account, o.strategy, o.instrument)
        if o.is_buy:
            pos.open_buy += dq
            spos.open_buy += dq
            account.open_buy_notional += dn
            self._balance(o.account, inst.quote_asset)[1] += dl
        else:
            pos.open_sell += dq
            spos.open_sell += dq
            account.open_sell_notional += dn
            self._balance(o.account, inst.base_asset)[1] += dl

    def _carries_pair(self, o: Order) -> bool:
        peer = self.orders.get(o.linked_id)
        if peer is None or peer.status in TERMINAL or peer.hold == Hold.PARENT:
            return True
        return o.order_id < peer.order_id

    def _apply_fill(self, account, pos: Position, inst: Instrument, signed: int, price: int,
                    exit_reason: int, o: Order, ts: int, main: bool) -> None:
        """Netting position update; main=True also drives account totals and trip events."""
        mult = inst.notional_mult
        qty = abs(signed)
        realized = 0
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            if pos.qty == 0:
                pos.entry_ts = ts
                pos.trip_realized = 0
            pos.qty += signed
            pos.cost += signed * price * mult
        else:
            close = min(qty, abs(pos.qty))
            removed = muldiv(abs(pos.cost), close, abs(pos.qty))
            exit_value = close * price * mult
            realized = exit_value - removed if pos.qty > 0 else removed - exit_value
            pos.cost -= removed if pos.qty > 0 else -removed
            pos.qty += close if signed > 0 else -close
            pos.realized += realized
            pos.trip_realized += realized
            rest = qty - close
            if pos.qty == 0:
                if main:
                    reason = ExitReason.FLIP if rest > 0 else exit_reason
                    self._emit(EventType.TRADE_CLOSED, o, reason, pos.trip_realized,
                               pos.entry_ts, ts)
                if rest > 0:
                    pos.entry_ts = ts
                    pos.trip_realized = 0
                    pos.qty = rest if signed > 0 else -rest
                    pos.cost = pos.qty * price * mult
        if main:
            account.realized += realized
            mark = inst.last if inst.last > 0 else price
            self._revalue(account, pos, inst, mark)

    def _revalue(self, account: Account, pos: Position, inst: Instrument, mark: int) -> None:
        exposure = pos.qty * mark * inst.notional_mult
        unrealized = exposure - pos.cost
        account.gross += abs(exposure) - abs(pos.exposure)
        account.net += exposure - pos.exposure
        account.unrealized += unrealized - pos.unrealized
        pos.exposure, pos.unrealized = exposure, unrealized

    def _check_breakers(self, account: Account, ts: int) -> None:
        pnl = account.pnl()
        account.peak_pnl = max(account.peak_pnl, pnl)
        if account.kill == KillMode.HALT:
            return
        lim = account.limits
        if lim[Limit.MAX_DAILY_LOSS] and account.day_start_pnl - pnl > lim[Limit.MAX_DAILY_LOSS]:
            account.kill = KillMode.HALT
            self._alert(Alert.DAILY_LOSS_BREAKER, account.account_id, 0, 0, 0, pnl,
                        account.day_start_pnl, ts)
        elif lim[Limit.MAX_DRAWDOWN] and account.peak_pnl - pnl > lim[Limit.MAX_DRAWDOWN]:
            account.kill = KillMode.HALT
            self._alert(Alert.DRAWDOWN_BREAKER, account.account_id, 0, 0, 0, pnl,
                        account.peak_pnl, ts)

    # ------------------------------------------------------------------ helpers
    def _remember_trade(self, key: tuple[int, int]) -> None:
        self.seen_trades.add(key)
        self.seen_fifo.append(key)
        if len(self.seen_fifo) > self.trade_window:
            self.seen_trades.discard(self.seen_fifo.popleft())

    def _position(self, account_id: int, instrument_id: int) -> Position:
        return self.positions.setdefault((account_id, instrument_id), Position())

    def _strategy_position(self, account_id, strategy_id, instrument_id) -> Position:
        return self.strategy_positions.setdefault(
            (account_id, strategy_id, instrument_id), Position()
        )

    def _balance(self, account_id: int, asset_id: int) -> list[int]:
        return self.balances.setdefault((account_id, asset_id), [0, 0])

    def _emit(self, etype: int, o: Order, code: int, a: int, b: int, ts: int) -> None:
        self.events.append(
            (etype, code, o.account, o.instrument, o.strategy, o.order_id, a, b, ts)
        )

    def _alert(self, alert: int, account, instrument, strategy, order_id, a, b, ts) -> None:
        self.events.append(
            (EventType.ALERT, alert, account, instrument, strategy, order_id, a, b, ts)
        )


ORDER_FIELDS = (
    "order_id", "cl_ord_id", "account", "strategy", "instrument", "side", "order_type", "tif",
    "flags", "price", "trigger", "qty", "expire_ts", "trail_offset", "status", "reason", "hold",
    "filled", "fill_notional", "reserve_price", "pending_price", "pending_qty",
    "trail_anchor", "contingency", "linked_id", "parent_id", "child1_id", "child2_id",
    "group_qty", "exit_reason", "locks_funds", "expiring", "reserved_qty",
    "reserved_notional", "ts_received", "ts_risk", "ts_sent", "ts_ack",
    "ts_last_fill", "ts_done",
)
POSITION_FIELDS = (
    "qty", "cost", "realized", "fees", "open_buy", "open_sell", "entry_ts", "trip_realized",
    "exposure", "unrealized",
)
ACCOUNT_FIELDS = (
    "kill", "open_orders", "open_buy_notional", "open_sell_notional", "gross", "net",
    "realized", "fees", "unrealized", "day_start_pnl", "peak_pnl",
)
