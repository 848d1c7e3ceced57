"""Pure-Python reference model of the compiled core: the executable specification.

Same state machine, ledger and risk checks as ``oms_core.core.OmsCore``, written to be read:
dicts, plain loops, and money and quantities as ``decimal.Decimal`` amounts in real units (1.5
BTC is ``Decimal("1.5")``, not ``150000`` lots of 10**-5). Property tests drive both with the
same calls and require the same answers, states and events to the last unit, so this model is
an independent check of the compiled core's fixed-point scaling (``notional_mult``,
``base_mult``, the precisions) as well as of its logic. Speed is not a goal here.

The API is the core's: arguments and results are raw integer counts of fixed units (docs/core.md
"Units"): a price counts 10**-price_precision, a quantity 10**-qty_precision, a balance,
notional, fee or P&L 10**-precision of its asset. Raw counts become Decimal amounts at the API
edge (``to_amount``: ``raw * 10**-precision``, exact) and become raw counts again only when a
view or an event is produced (``to_raw``), which raises ``UnitError`` when an amount is not a
whole number of its unit: a non-exact value is a bug in one of the two models, never rounded
away.

Decimal (real units): prices, trigger prices, trail offsets, ticks, quantities, lots, filled and
pending quantities, average-price sums (``fill_notional``), positions, cost, realized and
unrealized P&L, fees, exposures, open notionals, balances and locked funds, asset positions. The
base-asset amount of a quantity is the quantity itself (``qty * base_mult`` in the core), and a
notional is ``price * qty`` (``price * qty * notional_mult`` in the core).

int (not amounts): ids, client order ids, sequences, timestamps, counts (open orders), codes and
flags, token buckets (whole nano-tokens, an exact integer refill), and the per-account limits as
``set_limit`` receives them: a limit is a raw count whose unit depends on the instrument it is
applied to, so it becomes an amount at the check (``MAX_ORDER_QTY`` and ``MAX_POSITION`` in the
instrument's quantity unit, ``MAX_ORDER_NOTIONAL`` in its quote asset, the account-wide money
limits in the account's money unit, see ``ReferenceModel.money_precision``).

Representation bounds are the core's, in the same units: a price or quantity above ``MAX_RAW``
raw units, or a notional above ``MAX_NOTIONAL`` quote units, is refused (``Instrument.price_cap``,
``qty_cap``, ``notional_cap`` are those bounds as amounts).

Arithmetic runs in one context, ``EXACT`` (60 significant digits, ``Inexact`` trapped): a sum or
product of amounts that could not be held exactly raises instead of rounding. Every rounding rule
is a call to ``rounded`` with its rounding mode written at the call site; there are two:

- reducing a position removes cost in proportion, ``|cost| * closed / |qty|``, truncated toward
  zero (``ROUND_DOWN``) to the quote asset's unit (``_apply_fill``);
- the mid price used as a market order's reserve price, ``(bid + ask) / 2``, truncated toward
  zero to the price unit (``_check_new``; bid + ask > 0 there);
- a fee paid in another asset than the quote asset is valued at ``fee * price``, truncated
  toward zero to the quote asset's unit (``_fee_value``);
- a bracket's arrival mid is floored to the tick (``submit_bracket``), and a released child's
  price, anchor + distance, is rounded away from the anchor to the tick (``_away_from``).
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any, TypeVar

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
    ProtectAction,
    ProtectAnchor,
    ProtectOnReject,
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
# client order ids of the orders the model places when a protective child is refused
RETRY_CL = 1 << 63
FLATTEN_CL = 3 << 62
PROTECT_ON_FILL, PROTECT_RETRIED = 1, 2  # Order.protect bits
NS_PER_DAY = 86_400 * 10**9


def day_end(ts: int) -> int:
    """Expiry of a DAY order: the end of the UTC day of ``ts``."""
    return (ts // NS_PER_DAY + 1) * NS_PER_DAY

# ---------------------------------------------------------------------- Decimal arithmetic
# 60 digits hold every product of two amounts the core can hold (each < 2**63 units, 19 digits)
# with room to spare; Inexact is trapped, so an operation that would round raises instead.
EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# Used by ``rounded`` only (which ``quotient`` ends with): where digits are dropped on purpose.
ROUNDING = Context(prec=60, rounding=ROUND_DOWN, traps=[InvalidOperation, DivisionByZero,
                                                        Overflow])
ZERO = Decimal(0)


class UnitError(ArithmeticError):
    """An amount that is not a whole number of the unit it must be reported in: a bug."""


def to_amount(raw: int, precision: int) -> Decimal:
    """The amount that ``raw`` counts of 10**-precision stand for (exact)."""
    return Decimal(raw).scaleb(-precision, EXACT)


def to_raw(value: Decimal, precision: int) -> int:
    """The raw count of 10**-precision that is ``value``; UnitError unless it is whole."""
    scaled = value.scaleb(precision, EXACT)
    raw = int(scaled)
    if raw != scaled:
        raise UnitError(f"{value} is not a whole number of 1e-{precision}")
    return raw


def rounded(value: Decimal, precision: int, rounding: str) -> Decimal:
    """``value`` rounded to a whole number of 10**-precision with ``rounding``."""
    return value.quantize(Decimal(1).scaleb(-precision), rounding=rounding, context=ROUNDING)


def quotient(a: Decimal, b: Decimal, precision: int, rounding: str) -> Decimal:
    """``a / b`` rounded to a whole number of 10**-precision with ``rounding``.

    The quotient is taken to 60 significant digits, cut toward zero. When it does not end
    there, a sticky digit 1 is appended to the cut digits: the value then lies strictly between
    the cut and the next 60-digit step, like the exact quotient, and no unit or half-unit lies
    in that open interval (they are on the 60-digit grid, checked below). So every rounding
    mode picks the same unit for it as for the exact quotient.
    """
    ctx = Context(prec=60, rounding=ROUND_DOWN, traps=[InvalidOperation, DivisionByZero,
                                                       Overflow])
    q = ctx.divide(a, b)
    if ctx.flags[Inexact]:
        sign, digits, exponent = q.as_tuple()
        q = Decimal((sign, digits + (1,), exponent - 1))
    if q.adjusted() + precision > 58:
        raise UnitError(f"{a} / {b}: 60 digits cannot resolve 1e-{precision}")
    return rounded(q, precision, rounding)


F = TypeVar("F", bound=Callable[..., Any])


def exact(method: F) -> F:
    """Run ``method`` with ``EXACT`` as the decimal context, whatever the caller's context."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with localcontext(EXACT):
            return method(*args, **kwargs)

    return run  # type: ignore[return-value]


# ---------------------------------------------------------------------- state
@dataclass
class Instrument:
    """An instrument, its amounts in real units. ``precision`` gives the decimal places of each
    kind of raw count the API carries for it: ``price``, ``qty``, ``quote`` (its quote asset),
    ``base`` (its base asset) and ``price_qty`` (price units times quantity units: the unit of
    an order's ``fill_notional``)."""

    instrument_id: int
    symbol: str
    exchange_id: int
    base_asset: int
    quote_asset: int
    precision: dict[str, int]
    tick: Decimal
    lot: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    price_cap: Decimal  # MAX_RAW price units: larger prices are invalid
    qty_cap: Decimal  # MAX_RAW quantity units
    notional_cap: Decimal  # MAX_NOTIONAL quote units: larger notionals overflow in the core
    tradable: bool = True
    native_stops: bool = False
    last: Decimal = ZERO
    bid: Decimal = ZERO
    ask: Decimal = ZERO
    price_ts: int = 0
    stale: bool = False

    def amount(self, raw: int, unit: str) -> Decimal:
        """A raw count of this instrument's ``unit`` as an amount (the API edge)."""
        return to_amount(raw, self.precision[unit])

    def raw(self, value: Decimal, unit: str) -> int:
        """An amount as a raw count of this instrument's ``unit`` (views and events)."""
        return to_raw(value, self.precision[unit])


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
    qty: Decimal = ZERO  # signed quantity
    cost: Decimal = ZERO  # signed quote amount paid for the open quantity
    realized: Decimal = ZERO
    fees: Decimal = ZERO  # fees at their quote value, whatever asset they were paid in
    open_buy: Decimal = ZERO  # quantity reserved by open buy orders
    open_sell: Decimal = ZERO
    entry_ts: int = 0
    trip_realized: Decimal = ZERO
    exposure: Decimal = ZERO  # qty * mark at the last valuation (signed)
    unrealized: Decimal = ZERO  # at the last valuation
    unprotected: int = 0  # 1: a protective child was refused and nothing protects it yet


@dataclass
class Account:
    """Money totals are in the account's money unit (``ReferenceModel.money_precision``)."""

    account_id: int
    limits: dict[int, int] = field(default_factory=lambda: dict(LIMIT_DEFAULTS))  # raw
    kill: int = KillMode.OFF
    open_orders: int = 0
    open_buy_notional: Decimal = ZERO
    open_sell_notional: Decimal = ZERO
    gross: Decimal = ZERO
    net: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    unrealized: Decimal = ZERO
    day_start_pnl: Decimal = ZERO
    day_start_ts: int = 0  # when the trading day of day_start_pnl began
    peak_pnl: Decimal = ZERO
    message_bucket: TokenBucket = field(default_factory=TokenBucket)
    order_bucket: TokenBucket = field(default_factory=TokenBucket)
    reject_bucket: TokenBucket = field(default_factory=TokenBucket)
    exchange_buckets: dict[int, TokenBucket] = field(default_factory=dict)
    live_orders: dict[int, None] = field(default_factory=dict)  # insertion-ordered set

    def pnl(self) -> Decimal:
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
    price: Decimal
    trigger: Decimal
    qty: Decimal
    expire_ts: int
    trail_offset: Decimal
    ts_received: int
    status: int = S.PENDING_NEW
    reason: int = 0
    hold: int = Hold.NONE
    filled: Decimal = ZERO
    fill_notional: Decimal = ZERO  # sum of price * qty over fills (a quote amount)
    reserve_price: Decimal = ZERO
    pending_price: Decimal = ZERO
    pending_qty: Decimal = ZERO
    trail_anchor: Decimal = ZERO
    contingency: int = Contingency.NONE
    linked_id: int = 0  # OCO: the other leg
    parent_id: int = 0  # OTO / bracket child: the entry
    child1_id: int = 0  # bracket entry: its children
    child2_id: int = 0
    group_qty: Decimal = ZERO  # OCO: the size both legs protect together
    exit_reason: int = ExitReason.ORDER
    locks_funds: bool = False
    expiring: bool = False  # cancel was requested because the order expired
    reserved_qty: Decimal = ZERO
    reserved_notional: Decimal = ZERO
    locked: Decimal = ZERO  # derived in the compiled core; kept here to make the rule visible
    ts_risk: int = 0
    ts_sent: int = 0
    ts_ack: int = 0
    ts_last_fill: int = 0
    ts_done: int = 0
    # bracket entry: the price its children's distances were measured from; bracket child:
    # the signed distance of its price from the entry's fill (or anchor) when released
    anchor: Decimal = ZERO
    protect: int = 0  # PROTECT_ON_FILL (entry), PROTECT_RETRIED (child)

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY


class ReferenceModel:
    """The reference OMS core. Method names, arguments and results are those of ``OmsCore``:
    raw integer counts in, raw integer counts out; Decimal amounts inside."""

    def __init__(
        self,
        max_orders: int = 1 << 16,
        max_accounts: int = 64,
        max_instruments: int = 256,
        max_assets: int = 64,
        max_strategies: int = 64,
        max_exchanges: int = 16,
        trade_window: int = 1 << 16,
        max_day_orders: int = 0,
    ) -> None:
        self.max_orders = max_orders
        # client order ids used this trading day (a retry is refused after its order left
        # the table too); at most max_day_orders, then new orders are refused TABLE_FULL
        self.max_day_orders = max_day_orders or 4 * max_orders
        self.day_ids: set[tuple[int, int]] = set()
        self.max_accounts = max_accounts
        self.max_instruments = max_instruments
        self.max_assets = max_assets
        self.max_strategies = max_strategies
        self.max_exchanges = max_exchanges
        self.trade_window = trade_window
        self.assets: dict[int, int] = {}  # asset id -> precision
        self.instruments: dict[int, Instrument] = {}
        self.quote_precisions: set[int] = set()  # of the instruments' quote assets
        self.accounts: dict[int, Account] = {}
        self.strategies: dict[int, bool] = {0: False}  # id -> single_entry
        self.strategy_kill: dict[int, int] = {0: KillMode.OFF}
        self.global_kill = KillMode.OFF
        self.orders: dict[int, Order] = {}
        self.by_cl: dict[tuple[int, int], int] = {}
        self.terminal_fifo: OrderedDict[int, None] = OrderedDict()
        self.positions: dict[tuple[int, int], Position] = {}
        self.strategy_positions: dict[tuple[int, int, int], Position] = {}
        self.asset_positions: dict[tuple[int, int], Decimal] = {}  # base asset amounts
        self.balances: dict[tuple[int, int], list[Decimal]] = {}  # -> [total, locked]
        self.seen_trades: set[tuple[int, int]] = set()
        self.seen_fifo: deque[tuple[int, int]] = deque()
        self.next_order_id = 1
        self.events: list[tuple[int, int, int, int, int, int, int, int, int]] = []
        self.overfills = 0
        self.duplicate_fills = 0

    # ------------------------------------------------------------------ units
    def money_precision(self) -> int:
        """Decimal places of the account-wide money totals (exposure, P&L, open notionals) and
        of the money limits on them: those of the instruments' quote asset.

        The core adds raw quote counts of every instrument into one account total, which is a
        real amount only when all quote assets have the same precision; with several, this
        model has no unit to report such a sum in and raises UnitError rather than guess.
        """
        if len(self.quote_precisions) > 1:
            raise UnitError(
                f"quote assets of precisions {sorted(self.quote_precisions)}: account totals "
                "that add them have no single unit"
            )
        return next(iter(self.quote_precisions), 0)

    def _money(self, raw: int) -> Decimal:
        return to_amount(raw, self.money_precision())

    def _money_raw(self, value: Decimal) -> int:
        return to_raw(value, self.money_precision())

    # ------------------------------------------------------------------ configuration
    def add_asset(self, asset_id: int, name: str, precision: int) -> None:
        if not 0 <= asset_id < self.max_assets or asset_id in self.assets:
            raise ValueError(f"asset id {asset_id} out of range or already added")
        if not 0 <= precision <= 18:
            raise ValueError(f"asset {name}: precision {precision} outside 0..18")
        self.assets[asset_id] = precision

    @exact
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
        # the core's own limits of representation: every notional (price units x quantity
        # units) and every base amount must be a whole number of its asset's unit
        if self.assets[quote_asset] < price_precision + qty_precision:
            raise ValueError(
                f"{symbol}: quote asset precision must be >= price + quantity precision"
            )
        if self.assets[base_asset] < qty_precision:
            raise ValueError(f"{symbol}: base asset precision must be >= quantity precision")
        if tick <= 0 or lot <= 0 or min_qty < 0 or max_qty <= 0 or min_notional < 0:
            raise ValueError(f"{symbol}: tick, lot and max qty must be positive")
        precision = {
            "price": price_precision,
            "qty": qty_precision,
            "quote": self.assets[quote_asset],
            "base": self.assets[base_asset],
            "price_qty": price_precision + qty_precision,
        }
        self.instruments[instrument_id] = Instrument(
            instrument_id, symbol, exchange_id, base_asset, quote_asset, precision,
            tick=to_amount(tick, price_precision),
            lot=to_amount(lot, qty_precision),
            min_qty=to_amount(min_qty, qty_precision),
            max_qty=to_amount(max_qty, qty_precision),
            min_notional=to_amount(min_notional, precision["quote"]),
            price_cap=to_amount(MAX_RAW, price_precision),
            qty_cap=to_amount(MAX_RAW, qty_precision),
            notional_cap=to_amount(MAX_NOTIONAL, precision["quote"]),
            tradable=tradable,
            native_stops=native_stops,
        )
        self.quote_precisions.add(precision["quote"])

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
        """Set one limit; ``value`` is kept raw (its unit is fixed where it is applied)."""
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

    @exact
    def deposit(self, account_id: int, asset_id: int, amount: int) -> int:
        if account_id not in self.accounts:
            return Reject.UNKNOWN_ACCOUNT
        if asset_id not in self.assets:
            raise ValueError(f"unknown asset {asset_id}")
        self._balance(account_id, asset_id)[0] += to_amount(amount, self.assets[asset_id])
        return Reject.OK

    # ------------------------------------------------------------------ market prices
    @exact
    def set_price(
        self, instrument_id: int, last: int, bid: int, ask: int, ts: int, stale: bool = False
    ) -> int:
        """Record reference prices and trigger the held stop orders they reach. A ``last`` of 0
        means the update carries no trade price (a book-only update): the last trade stands."""
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return Reject.UNKNOWN_INSTRUMENT
        last_price = inst.amount(last, "price")
        if last_price > 0:
            inst.last = last_price
        inst.bid, inst.ask = inst.amount(bid, "price"), inst.amount(ask, "price")
        inst.price_ts, inst.stale = ts, stale
        if last_price > 0:
            self._trigger_stops(inst, last_price, ts)
        return Reject.OK

    def _trigger_stops(self, inst: Instrument, last: Decimal, ts: int) -> None:
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
            if o.status in TERMINAL:  # refused above, its held partner went with it
                continue
            partner = self._venue_partner(o)
            if partner is not None:
                # the partner could fill at the venue while o is on its way and both would
                # close the pair: o waits, visibly, until the partner's cancel is confirmed
                o.hold = Hold.FIRED
                self._emit(EventType.ORDER_UPDATE, o, o.status,
                           inst.raw(o.filled, "qty"), 0, ts)
                self._request_cancel(partner, ts, internal=True)
            else:
                o.hold = Hold.NONE
                self._send_checked(o, ts)

    def _fired_check(self, o: Order) -> int:
        """The checks a fired order still passes as it goes out: under a kill switch (HALT or
        REDUCE_ONLY, any level) only one that reduces the position, so protection still
        works; never one that would trade with the account's own resting orders at or through
        its price (a market order's is the last trade price, where it fired: an own order
        far from the market does not block a stop)."""
        code, reduce_mode = self._kill_switch(self.accounts[o.account], o.strategy)
        held = self._position(o.account, o.instrument).qty
        qty = o.qty - o.filled
        if code == Reject.OK and reduce_mode:
            code = Reject.REDUCE_ONLY_MODE
        if code != Reject.OK and not (-held >= qty if o.is_buy else held >= qty):
            return code
        price = (o.price if o.order_type == OrderType.STOP_LIMIT
                 else self.instruments[o.instrument].last)
        if self._crosses_own(o.account, o.instrument, o.is_buy, OrderType.LIMIT, price,
                             o.order_id):
            return Reject.SELF_TRADE
        return Reject.OK

    def _send_checked(self, o: Order, ts: int) -> None:
        """Send a fired order, or end it REJECTED with the reason a check gives; a bracket's
        protective order refused so raises PROTECTION_REFUSED (nothing placed instead) and
        marks a position still held unprotected."""
        code = self._fired_check(o)
        if code == Reject.OK:
            self._emit(EventType.SEND_ORDER, o, 0, 0, 0, ts)
            return
        o.reason = code
        self._set_status(o, S.REJECTED, ts)
        if o.parent_id:
            self._alert(Alert.PROTECTION_REFUSED, o.account, o.instrument, o.strategy,
                        o.order_id, code, ProtectAction.NONE, ts)
            if self._position(o.account, o.instrument).qty != 0:
                self._mark_protected(o.account, o.strategy, o.instrument, o.order_id, True, ts)

    def _venue_partner(self, o: Order) -> Order | None:
        """The live OCO partner of ``o`` that is at the venue (or on its way there)."""
        if o.contingency != Contingency.OCO or not o.linked_id:
            return None
        partner = self.orders.get(o.linked_id)
        if partner is None or partner.status in TERMINAL or partner.hold != Hold.NONE:
            return None
        return partner

    def _partner_fired(self, o: Order) -> bool:
        if o.contingency != Contingency.OCO or not o.linked_id:
            return False
        peer = self.orders.get(o.linked_id)
        return peer is not None and peer.status not in TERMINAL and peer.hold == Hold.FIRED

    def _send_fired(self, fired: Order, partner: Order, ts: int) -> None:
        """The partner of a fired leg is closed at the venue: send the fired leg for what the
        pair has left, or close it when the partner filled (the pair is done)."""
        left = fired.group_qty - partner.filled - fired.filled
        if partner.status == S.FILLED or left <= 0:
            self._request_cancel(fired, ts, internal=True)
            return
        fired.qty = min(fired.qty, fired.filled + left)
        fired.hold = Hold.NONE
        self._sync_reserve(fired)
        inst = self.instruments[fired.instrument]
        self._emit(EventType.ORDER_UPDATE, fired, fired.status, inst.raw(fired.filled, "qty"),
                   0, ts)
        self._send_checked(fired, ts)

    @exact
    def mark_to_market(self, ts: int) -> None:
        """Revalue every position at its instrument's last price; run the loss breakers."""
        for (account_id, instrument_id), pos in self.positions.items():
            inst = self.instruments[instrument_id]
            if inst.last > 0:
                self._revalue(self.accounts[account_id], pos, inst.last)
        for account_id in sorted(self.accounts):
            self._check_breakers(self.accounts[account_id], ts)

    @exact
    def start_of_day(self, ts: int) -> None:
        for account in self.accounts.values():
            account.day_start_pnl = account.pnl()
            account.day_start_ts = ts
        self.day_ids.clear()

    def day_start_ts(self) -> int:
        """When the current trading day began (the last start_of_day), 0 before the first."""
        return max((a.day_start_ts for a in self.accounts.values()), default=0)

    # ------------------------------------------------------------------ commands
    @exact
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
        if tif == TimeInForce.DAY and expire_ts == 0:
            expire_ts = day_end(ts)
        qty = self._single_entry_qty(account_id, strategy_id, instrument_id, side, qty)
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

    def _single_entry_qty(self, account_id, strategy_id, instrument_id, side, qty: int) -> int:
        """A single-entry sell above the free position, cut to it when the account's
        CLAMP_SINGLE_ENTRY_SELL is on (else the check refuses it)."""
        account = self.accounts.get(account_id)
        spos = self.strategy_positions.get((account_id, strategy_id, instrument_id))
        if (side != Side.SELL or account is None or spos is None
                or not self.strategies.get(strategy_id, False)
                or not account.limits[Limit.CLAMP_SINGLE_ENTRY_SELL]):
            return qty
        free = self.instruments[instrument_id].raw(spos.qty - spos.open_sell, "qty")
        return free if 0 < free < qty else qty

    @exact
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
        expire = day_end(ts) if tif == TimeInForce.DAY else 0
        for i, (clid, otype, price, trigger) in enumerate(legs):
            code, reserve_price = self._check_new(
                account_id, strategy_id, instrument_id, clid, side, otype, tif, price, trigger,
                qty, 0, expire, ts, 0, i == 0,
            )
            if code != Reject.OK:
                return self._rejected(account_id, code, ts), 0, 0
            reserve_prices.append(reserve_price)
        if len(self.day_ids) + 2 > self.max_day_orders or (
                len(self.orders) + 2 > self.max_orders and not self._evict(2)):
            return self._rejected(account_id, Reject.TABLE_FULL, ts), 0, 0
        a = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_1, side, type_1, tif,
                         price_1, trigger_1, qty, 0, expire, ts, 0, reserve_prices[0], oco=True)
        b = self._insert(account_id, strategy_id, instrument_id, cl_ord_id_2, side, type_2, tif,
                         price_2, trigger_2, qty, 0, expire, ts, 0, reserve_prices[1], oco=True)
        assert a is not None and b is not None
        self._link_oco(a, b, a.qty)
        self._hold_or_send(a, ts)
        self._hold_or_send(b, ts)
        return Reject.OK, a.order_id, b.order_id

    @exact
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
        anchor: int = 0,
        expire_ts: int = 0,
    ) -> tuple[int, int, int, int]:
        """Entry plus take-profit (limit) and stop-loss (stop market) released when it ends
        with a fill, sized to what it filled; with both, they form an OCO pair. A zero price
        leaves a leg out (one leg: a plain OTO). The legs' prices are distances from
        ``anchor`` (0: the limit price, or the arrival mid floored to the tick); a released
        child keeps its distance from the entry's first fill (``Limit.PROTECT_ANCHOR`` FILL)
        or from the anchor (ARRIVAL), never on the wrong side of the first fill."""
        if account_id not in self.accounts:
            return Reject.UNKNOWN_ACCOUNT, 0, 0, 0
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return self._rejected(account_id, Reject.UNKNOWN_INSTRUMENT, ts), 0, 0, 0
        base = inst.amount(anchor, "price")
        if base == 0 and entry_type == OrderType.LIMIT:
            base = inst.amount(entry_price, "price")
        elif base == 0 and inst.bid > 0 and inst.ask >= inst.bid:
            base = quotient((inst.bid + inst.ask) / 2, inst.tick, 0, ROUND_FLOOR) * inst.tick
        elif base == 0:
            base = inst.last
        code = Reject.INVALID_CONTINGENCY
        if entry_type in (OrderType.MARKET, OrderType.LIMIT):
            code = self._check_bracket(account_id, inst, cl_ord_id, tp_cl_ord_id, sl_cl_ord_id,
                                       side, base, tp_price, sl_trigger)
        if code != Reject.OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        if tif == TimeInForce.DAY and expire_ts == 0:
            expire_ts = day_end(ts)
        code, reserve_price = self._check_new(
            account_id, strategy_id, instrument_id, cl_ord_id, side, entry_type, tif,
            entry_price, 0, qty, 0, expire_ts, ts, 0, True,
        )
        if code != Reject.OK:
            return self._rejected(account_id, code, ts), 0, 0, 0
        needed = 1 + (tp_price > 0) + (sl_trigger > 0)
        if len(self.day_ids) + needed > self.max_day_orders or (
                len(self.orders) + needed > self.max_orders and not self._evict(needed)):
            return self._rejected(account_id, Reject.TABLE_FULL, ts), 0, 0, 0
        entry = self._insert(account_id, strategy_id, instrument_id, cl_ord_id, side,
                             entry_type, tif, entry_price, 0, qty, 0, expire_ts, ts, 0,
                             reserve_price)
        assert entry is not None
        # a GTD / DAY bracket expires whole; otherwise the children are GTC
        child_tif = tif if tif in (TimeInForce.GTD, TimeInForce.DAY) else TimeInForce.GTC
        child_expire = expire_ts if child_tif != TimeInForce.GTC else 0
        entry.anchor = base
        if self.accounts[account_id].limits[Limit.PROTECT_ANCHOR] == ProtectAnchor.FILL:
            entry.protect = PROTECT_ON_FILL
        exit_side = Side.SELL if side == Side.BUY else Side.BUY
        children = []
        if tp_price > 0:
            tp = self._insert(account_id, strategy_id, instrument_id, tp_cl_ord_id, exit_side,
                              OrderType.LIMIT, child_tif, tp_price, 0, qty,
                              OrderFlag.REDUCE_ONLY, child_expire, ts, 0,
                              inst.amount(tp_price, "price"), child=True)
            assert tp is not None
            tp.exit_reason = ExitReason.TAKE_PROFIT
            tp.anchor = tp.price - base
            children.append(tp)
        if sl_trigger > 0:
            sl = self._insert(account_id, strategy_id, instrument_id, sl_cl_ord_id, exit_side,
                              OrderType.STOP_MARKET, child_tif, 0, sl_trigger, qty,
                              OrderFlag.REDUCE_ONLY, child_expire, ts, 0,
                              inst.amount(sl_trigger, "price"), child=True)
            assert sl is not None
            sl.anchor = sl.trigger - base
            children.append(sl)
        for child in children:
            child.parent_id = entry.order_id
            child.contingency = Contingency.OTO
        if len(children) == 2:
            self._link_oco(children[0], children[1], entry.qty)
        entry.child1_id = children[0].order_id if children else 0
        entry.child2_id = children[1].order_id if len(children) == 2 else 0
        for child in children:
            self._sync_reserve(child)
        self._hold_or_send(entry, ts)
        ids = [c.order_id for c in children]
        tp_id = ids[0] if tp_price > 0 else 0
        sl_id = ids[-1] if sl_trigger > 0 else 0
        return Reject.OK, entry.order_id, tp_id, sl_id

    @exact
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

    @exact
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

    @exact
    def replace(self, account_id: int, order_id: int, new_price: int, new_qty: int,
                ts: int) -> int:
        account = self.accounts.get(account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        code = self._check_replace(account, order_id, new_price, new_qty, ts)
        if code != Reject.OK:
            return self._rejected(account_id, code, ts)
        o = self.orders[order_id]
        inst = self.instruments[o.instrument]
        o.pending_price = inst.amount(new_price, "price")
        o.pending_qty = inst.amount(new_qty, "qty")
        self._set_status(o, S.PENDING_REPLACE, ts)
        self._emit(EventType.SEND_REPLACE, o, 0, inst.raw(o.pending_price, "price"),
                   inst.raw(o.pending_qty, "qty"), ts)
        return Reject.OK

    # ------------------------------------------------------------------ venue events
    def on_sent(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        o.ts_sent = ts
        return Reject.OK

    @exact
    def on_ack(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        if o.ts_ack == 0:
            o.ts_ack = ts
        if o.status in (S.PENDING_NEW, S.UNKNOWN):
            self._set_status(o, S.NEW, ts)
        if o.protect & PROTECT_RETRIED:  # a refused child's retry now rests at the venue
            self._mark_protected(o.account, o.strategy, o.instrument, o.order_id, False, ts)
        return Reject.OK

    @exact
    def on_unknown(self, order_id: int, ts: int) -> int:
        """The venue's answer to a submit is in doubt: UNKNOWN until a query resolves it."""
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status == S.UNKNOWN:
            return Reject.OK
        if o.status != S.PENDING_NEW or o.ts_ack != 0 or o.filled != 0:
            return Reject.INVALID_TRANSITION
        self._set_status(o, S.UNKNOWN, ts)
        return Reject.OK

    @property
    def unknown_orders(self) -> int:
        """Live orders in status UNKNOWN."""
        return sum(1 for o in self.orders.values() if o.status == S.UNKNOWN)

    @exact
    def on_reject(self, order_id: int, reason: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.ts_ack != 0 or o.filled != 0 or o.status not in (S.PENDING_NEW, S.PENDING_CANCEL,
                                                                S.UNKNOWN):
            return Reject.INVALID_TRANSITION
        o.reason = reason
        # a released protective child the venue refused (not one being canceled anyway, nor
        # one whose fired partner now closes the pair)
        if (o.parent_id and o.hold != Hold.PARENT and o.status == S.PENDING_NEW
                and not self._partner_fired(o)):
            self._protection_refused(o, reason, ts)
            return Reject.OK
        self._set_status(o, S.REJECTED, ts)
        return Reject.OK

    def _protection_refused(self, o: Order, reason: int, ts: int) -> None:
        """The venue refused a bracket's protective child: alert, mark the position
        unprotected, then retry (once; a stop engine-held, paired again with its partner) or
        flatten (cancel the partner, close the protected quantity with a reduce-only market
        order), as ``Limit.PROTECT_ON_REJECT`` says."""
        account = self.accounts[o.account]
        inst = self.instruments[o.instrument]
        qty = inst.raw(o.qty - o.filled, "qty")
        peer = None
        if o.contingency == Contingency.OCO and o.linked_id:
            peer = self.orders.get(o.linked_id)
            if peer is not None and peer.status in TERMINAL:
                peer = None
            o.linked_id = 0  # the partner's fate is the policy's, not the OCO rule's
        self._set_status(o, S.REJECTED, ts)
        new = None
        action = ProtectAction.NONE
        if (account.limits[Limit.PROTECT_ON_REJECT] == ProtectOnReject.RETRY
                and not o.protect & PROTECT_RETRIED):
            new = self._insert(o.account, o.strategy, o.instrument, RETRY_CL | o.order_id,
                               o.side, o.order_type, TimeInForce.GTC, inst.raw(o.price, "price"),
                               inst.raw(o.trigger, "price"), qty, OrderFlag.REDUCE_ONLY, 0, ts,
                               0, o.reserve_price, child=True)
            if new is not None:
                action = ProtectAction.RETRY
                new.exit_reason = o.exit_reason
                new.parent_id = o.parent_id
                new.contingency = Contingency.OTO
                new.anchor = o.anchor
                new.protect = PROTECT_RETRIED
                new.hold = Hold.TRIGGER if o.order_type in STOP_TYPES else Hold.NONE
                if peer is not None and peer.order_id in self.orders:
                    self._link_oco(peer, new, o.group_qty)
                self._sync_reserve(new)
        if action == ProtectAction.NONE:
            if peer is not None and peer.order_id in self.orders:
                self._request_cancel(peer, ts, internal=True)
            # close no more than the strategy holds on the protected side
            spos = self.strategy_positions.get((o.account, o.strategy, o.instrument))
            held = inst.raw(spos.qty, "qty") if spos is not None else 0
            qty = min(qty, held if o.side == Side.SELL else -held)
        if action == ProtectAction.NONE and qty > 0:
            reserve = inst.last if inst.last > 0 else o.reserve_price
            new = self._insert(o.account, o.strategy, o.instrument, FLATTEN_CL | o.order_id,
                               o.side, OrderType.MARKET, TimeInForce.GTC, 0, 0, qty,
                               OrderFlag.REDUCE_ONLY, 0, ts, 0, reserve)
            if new is not None:
                action = ProtectAction.FLATTEN
                new.exit_reason = o.exit_reason
        self._alert(Alert.PROTECTION_REFUSED, o.account, o.instrument, o.strategy, o.order_id,
                    reason, action, ts)
        if new is not None:
            self._hold_or_send(new, ts)
        unprotected = action != ProtectAction.RETRY or new.hold == Hold.NONE
        self._mark_protected(o.account, o.strategy, o.instrument,
                             new.order_id if new is not None else o.order_id, unprotected, ts)

    def _mark_protected(self, account_id, strategy_id, instrument_id, order_id,
                        unprotected: bool, ts: int) -> None:
        pos = self._position(account_id, instrument_id)
        spos = self._strategy_position(account_id, strategy_id, instrument_id)
        if pos.unprotected == unprotected and spos.unprotected == unprotected:
            return
        pos.unprotected = spos.unprotected = int(unprotected)
        inst = self.instruments[instrument_id]
        self.events.append((EventType.POSITION_UPDATE, 0, account_id, instrument_id,
                            strategy_id, order_id, inst.raw(pos.qty, "qty"),
                            inst.raw(pos.realized, "quote"), ts))

    @exact
    def on_canceled(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        self._set_status(o, S.EXPIRED if o.expiring else S.CANCELED, ts)
        return Reject.OK

    @exact
    def on_cancel_reject(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_CANCEL:
            return Reject.INVALID_TRANSITION
        o.expiring = False
        self._set_status(o, self._working_status(o), ts)
        return Reject.OK

    @exact
    def on_replaced(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_REPLACE:
            return Reject.INVALID_TRANSITION
        if o.pending_price:  # 0: a native stop leg resized at its trigger
            o.price, o.reserve_price = o.pending_price, o.pending_price
        o.qty = max(o.pending_qty, o.filled)
        o.pending_price = o.pending_qty = ZERO
        self._set_status(o, S.FILLED if o.filled >= o.qty else self._working_status(o), ts)
        return Reject.OK

    @exact
    def on_replace_reject(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status != S.PENDING_REPLACE:
            return Reject.INVALID_TRANSITION
        o.pending_price = o.pending_qty = ZERO
        self._set_status(o, S.FILLED if o.filled >= o.qty else self._working_status(o), ts)
        return Reject.OK

    @exact
    def on_expired(self, order_id: int, ts: int) -> int:
        o = self.orders.get(order_id)
        if o is None:
            return Reject.UNKNOWN_ORDER
        if o.status in TERMINAL:
            return Reject.INVALID_TRANSITION
        self._set_status(o, S.EXPIRED, ts)
        return Reject.OK

    @exact
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
        inst = self.instruments[o.instrument]
        fill_qty, fill_price = inst.amount(qty, "qty"), inst.amount(price, "price")
        if (
            fill_qty <= 0 or fill_price <= 0 or fill_qty > inst.qty_cap
            or fill_price > inst.price_cap or fee_asset not in self.assets
        ):
            return Reject.INVALID_FILL
        notional = fill_price * fill_qty
        if notional > inst.notional_cap:
            return Reject.INVALID_FILL
        fee_amount = to_amount(fee, self.assets[fee_asset])
        fee_value = fee_amount
        if fee_asset != inst.quote_asset:
            fee_value = self._fee_value(inst, fee_asset, fee, fill_price)
            if fee_value is None:
                return Reject.INVALID_FILL
        key = (o.instrument, trade_id)
        if key in self.seen_trades:
            self.duplicate_fills += 1
            return Reject.DUPLICATE_FILL
        if o.filled + fill_qty > self._live_qty(o):
            self.overfills += 1
            account = self.accounts[o.account]
            account.kill = KillMode.HALT
            self._alert(Alert.OVERFILL, o.account, o.instrument, o.strategy, order_id,
                        inst.raw(o.filled + fill_qty, "qty"), inst.raw(self._live_qty(o), "qty"),
                        ts)
            return Reject.OVERFILL
        self._remember_trade(key)
        if o.status == S.REJECTED:
            self._alert(Alert.FILL_ON_REJECTED_ORDER, o.account, o.instrument, o.strategy,
                        order_id, trade_id, inst.raw(fill_qty, "qty"), ts)
        account = self.accounts[o.account]
        o.filled += fill_qty
        o.fill_notional += notional
        o.ts_last_fill = ts
        # ledger
        signed = fill_qty if o.is_buy else -fill_qty
        exit_reason = o.exit_reason
        pos = self._position(o.account, o.instrument)
        self._apply_fill(account, pos, inst, signed, fill_price, exit_reason, o, ts, True)
        spos = self._strategy_position(o.account, o.strategy, o.instrument)
        self._apply_fill(account, spos, inst, signed, fill_price, exit_reason, o, ts, False)
        akey = (o.account, inst.base_asset)
        self.asset_positions[akey] = self.asset_positions.get(akey, ZERO) + signed
        # a fee is paid in the asset the venue charged and counted at its quote value
        pos.fees += fee_value
        spos.fees += fee_value
        account.fees += fee_value
        if fee_asset != inst.quote_asset:
            fkey = (o.account, fee_asset)
            self.asset_positions[fkey] = self.asset_positions.get(fkey, ZERO) - fee_amount
        for p in (pos, spos):
            if p.unprotected and p.qty == 0:
                p.unprotected = 0
        if o.locks_funds:
            quote_bal = self._balance(o.account, inst.quote_asset)
            base_bal = self._balance(o.account, inst.base_asset)
            if o.is_buy:
                quote_bal[0] -= notional
                base_bal[0] += fill_qty
            else:
                quote_bal[0] += notional
                base_bal[0] -= fill_qty
        self._balance(o.account, fee_asset)[0] -= fee_amount
        # order state
        if o.status in TERMINAL:
            if o.filled == o.qty and o.status != S.FILLED:
                self._set_status(o, S.FILLED, ts)
            else:
                self._sync_reserve(o)
                self._emit(EventType.ORDER_UPDATE, o, o.status, inst.raw(o.filled, "qty"),
                           inst.raw(fill_qty, "qty"), ts)
        elif o.filled >= self._live_qty(o):
            self._set_status(o, S.FILLED, ts)
        elif o.status in (S.PENDING_NEW, S.NEW, S.UNKNOWN):
            self._set_status(o, S.PARTIALLY_FILLED, ts)
        else:
            self._sync_reserve(o)
            self._emit(EventType.ORDER_UPDATE, o, o.status, inst.raw(o.filled, "qty"),
                       inst.raw(fill_qty, "qty"), ts)
        self._emit(EventType.POSITION_UPDATE, o, 0, inst.raw(pos.qty, "qty"),
                   inst.raw(pos.realized, "quote"), ts)
        moved = [inst.quote_asset, inst.base_asset] if o.locks_funds else []
        for asset in dict.fromkeys(moved + [fee_asset]):  # each asset once, in this order
            total, locked = self.balance(o.account, asset)
            self._emit(EventType.BALANCE_UPDATE, o, asset, total, locked, ts)
        if o.contingency == Contingency.OCO and o.status not in TERMINAL:
            self._resize_oco_peer(o, ts)
        self._check_breakers(account, ts)
        return Reject.OK

    def _fee_value(self, inst: Instrument, fee_asset: int, fee: int,
                   fill_price: Decimal) -> Decimal | None:
        """Quote value of a fee paid in another asset: at the fill price for the base asset,
        at the last price of the lowest-id instrument fee asset / quote asset for a third one
        (0 without such a price); None when the fee or its value is beyond the core's bounds."""
        price, unit = fill_price, inst
        if fee_asset != inst.base_asset:
            pairs = [i for i in sorted(self.instruments)
                     if self.instruments[i].base_asset == fee_asset
                     and self.instruments[i].quote_asset == inst.quote_asset]
            if not pairs or self.instruments[pairs[0]].last <= 0:
                return ZERO
            unit = self.instruments[pairs[0]]
            price = unit.last
        if abs(fee) > MAX_RAW:
            return None
        value = rounded(to_amount(fee, self.assets[fee_asset]) * price,
                        unit.precision["quote"], ROUND_DOWN)
        return None if abs(value) > unit.notional_cap else value

    @exact
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
    # Views do no arithmetic, only ``to_raw`` (which names its context): no ``@exact`` needed.
    def order(self, order_id: int) -> dict | None:
        o = self.orders.get(order_id)
        if o is None:
            return None
        precision = self.instruments[o.instrument].precision
        view = {name: getattr(o, name) for name in ORDER_FIELDS}
        for name, unit in ORDER_UNITS.items():
            value = view[name]
            view[name] = to_raw(value, precision[unit]) if value else 0
        return view

    def order_id_by_client_id(self, account_id: int, cl_ord_id: int) -> int:
        return self.by_cl.get((account_id, cl_ord_id), 0)

    def position(self, account_id: int, instrument_id: int) -> dict:
        pos = self.positions.get((account_id, instrument_id))
        return self._position_view(pos, instrument_id)

    def strategy_position(self, account_id: int, strategy_id: int, instrument_id: int) -> dict:
        pos = self.strategy_positions.get((account_id, strategy_id, instrument_id))
        return self._position_view(pos, instrument_id)

    def _position_view(self, pos: Position | None, instrument_id: int) -> dict:
        if pos is None:
            return {name: 0 for name in POSITION_FIELDS}
        precision = self.instruments[instrument_id].precision
        view = {name: getattr(pos, name) for name in POSITION_FIELDS}
        for name, unit in POSITION_UNITS.items():
            value = view[name]
            view[name] = to_raw(value, precision[unit]) if value else 0
        return view

    def asset_position(self, account_id: int, asset_id: int) -> int:
        value = self.asset_positions.get((account_id, asset_id))
        return 0 if value is None else to_raw(value, self.assets[asset_id])

    def balance(self, account_id: int, asset_id: int) -> tuple[int, int]:
        entry = self.balances.get((account_id, asset_id))
        if entry is None:
            return 0, 0
        total, locked = entry
        return to_raw(total, self.assets[asset_id]), to_raw(locked, self.assets[asset_id])

    @exact
    def unrealized(self, account_id: int, instrument_id: int, mark: int) -> int:
        inst = self.instruments[instrument_id]
        pos = self.positions.get((account_id, instrument_id), Position())
        return inst.raw(pos.qty * inst.amount(mark, "price") - pos.cost, "quote")

    def account_state(self, account_id: int) -> dict:
        a = self.accounts[account_id]
        return {name: self._money_raw(getattr(a, name)) if name in ACCOUNT_MONEY
                else getattr(a, name) for name in ACCOUNT_FIELDS}

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
        self, account_id, strategy_id, instrument_id, cl_ord_id, side, order_type, tif,
        price_raw, trigger_raw, qty_raw, flags, expire_ts, ts, offset_raw, count_message,
    ) -> tuple[int, Decimal]:
        """All pre-trade checks, in their fixed order. Return (code, reserve price)."""
        R = Reject
        account = self.accounts.get(account_id)
        if account is None:
            return R.UNKNOWN_ACCOUNT, ZERO
        lim = account.limits
        if count_message and not account.message_bucket.take(ts):
            return R.MESSAGE_RATE_EXCEEDED, ZERO
        inst = self.instruments.get(instrument_id)
        if inst is None:
            return R.UNKNOWN_INSTRUMENT, ZERO
        if not inst.tradable:
            return R.INSTRUMENT_NOT_TRADABLE, ZERO
        if strategy_id not in self.strategies:
            return R.UNKNOWN_STRATEGY, ZERO
        if side not in (Side.BUY, Side.SELL):
            return R.INVALID_SIDE, ZERO
        if not OrderType.MARKET <= order_type <= OrderType.TRAILING_STOP:
            return R.INVALID_ORDER_TYPE, ZERO
        if not TimeInForce.GTC <= tif <= TimeInForce.DAY:
            return R.INVALID_TIME_IN_FORCE, ZERO
        if flags & ~(OrderFlag.REDUCE_ONLY | OrderFlag.POST_ONLY):
            return R.INVALID_FLAGS, ZERO
        if flags & OrderFlag.POST_ONLY and (
            order_type != OrderType.LIMIT or tif in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            return R.INVALID_FLAGS, ZERO
        price, trigger = inst.amount(price_raw, "price"), inst.amount(trigger_raw, "price")
        trail_offset, qty = inst.amount(offset_raw, "price"), inst.amount(qty_raw, "qty")
        if qty <= 0 or qty > inst.qty_cap:
            return R.INVALID_QUANTITY, ZERO
        if order_type in PRICED_TYPES:
            if price <= 0 or price > inst.price_cap:
                return R.INVALID_PRICE, ZERO
        elif price != 0:
            return R.INVALID_PRICE, ZERO
        if order_type in TRIGGER_TYPES:
            if trigger <= 0 or trigger > inst.price_cap or trail_offset != 0:
                return R.INVALID_TRIGGER_PRICE, ZERO
        elif order_type == OrderType.TRAILING_STOP:
            if trail_offset <= 0 or trail_offset > inst.price_cap or trigger != 0:
                return R.INVALID_TRIGGER_PRICE, ZERO
        elif trigger != 0 or trail_offset != 0:
            return R.INVALID_TRIGGER_PRICE, ZERO
        if tif in (TimeInForce.GTD, TimeInForce.DAY):
            if expire_ts <= ts:
                return R.INVALID_EXPIRY, ZERO
        elif expire_ts != 0:
            return R.INVALID_EXPIRY, ZERO
        if price % inst.tick or trigger % inst.tick or trail_offset % inst.tick:
            return R.PRICE_NOT_TICK_MULTIPLE, ZERO
        if qty % inst.lot:
            return R.QUANTITY_NOT_LOT_MULTIPLE, ZERO
        if qty < inst.min_qty:
            return R.BELOW_MIN_QUANTITY, ZERO
        if qty > inst.max_qty:
            return R.ABOVE_MAX_QUANTITY, ZERO
        collar_on = lim[Limit.COLLAR_BPS] > 0 or lim[Limit.COLLAR_TICKS] > 0
        needs_ref = order_type in (OrderType.MARKET, OrderType.TRAILING_STOP)
        ref2 = self._reference_x2(inst, lim)
        if needs_ref or collar_on:
            if ref2 <= 0:
                return R.NO_REFERENCE_PRICE, ZERO
            max_age = lim[Limit.MAX_REFERENCE_AGE_NS]
            if inst.stale or (max_age > 0 and ts - inst.price_ts > max_age):
                return R.STALE_REFERENCE_PRICE, ZERO
        if order_type in PRICED_TYPES:
            reserve_price = price
        elif order_type in TRIGGER_TYPES:
            reserve_price = trigger
        else:
            # market and trailing orders reserve at the reference (ref2 > 0 here); a mid
            # between two price units is truncated to the lower one
            reserve_price = rounded(ref2 / 2, inst.precision["price"], ROUND_DOWN)
        notional = reserve_price * qty
        if notional > inst.notional_cap:
            return R.NOTIONAL_OVERFLOW, ZERO
        if notional < inst.min_notional:
            return R.BELOW_MIN_NOTIONAL, ZERO
        code, reduce_mode = self._kill_switch(account, strategy_id)
        if code != R.OK:
            return code, ZERO
        pos = self.positions.get((account_id, instrument_id), Position())
        is_buy = side == Side.BUY
        if reduce_mode or flags & OrderFlag.REDUCE_ONLY:
            if is_buy:
                reduces = pos.qty + pos.open_buy + qty <= 0
            else:
                reduces = pos.qty - pos.open_sell - qty >= 0
            if not reduces:
                return (R.REDUCE_ONLY_MODE if reduce_mode else R.REDUCE_ONLY_VIOLATION), ZERO
        if (account_id, cl_ord_id) in self.by_cl or (account_id, cl_ord_id) in self.day_ids:
            return R.DUPLICATE_CLIENT_ORDER_ID, ZERO
        if not account.order_bucket.take(ts):
            return R.ORDER_RATE_EXCEEDED, ZERO
        bucket = account.exchange_buckets.get(inst.exchange_id)
        if bucket is not None and not bucket.take(ts):
            return R.EXCHANGE_RATE_EXCEEDED, ZERO
        if lim[Limit.MAX_ORDER_QTY] and qty > inst.amount(lim[Limit.MAX_ORDER_QTY], "qty"):
            return R.MAX_ORDER_QUANTITY, ZERO
        if lim[Limit.MAX_ORDER_NOTIONAL] and notional > inst.amount(
            lim[Limit.MAX_ORDER_NOTIONAL], "quote"
        ):
            return R.MAX_ORDER_NOTIONAL, ZERO
        if collar_on and order_type in PRICED_TYPES and self._outside_collar(
            inst, lim, is_buy, price, ref2
        ):
            return R.PRICE_COLLAR, ZERO
        if lim[Limit.LONG_ONLY] and not is_buy and pos.qty - pos.open_sell - qty < 0:
            return R.LONG_ONLY, ZERO
        if self.strategies[strategy_id]:
            spos = self.strategy_positions.get(
                (account_id, strategy_id, instrument_id), Position()
            )
            if is_buy and (spos.qty > 0 or spos.open_buy > 0):
                return R.SINGLE_ENTRY, ZERO
            if not is_buy and spos.qty - spos.open_sell < qty:  # sells only what is held
                return R.SINGLE_ENTRY, ZERO
        code = self._position_limit(lim, inst, pos, is_buy, qty)
        if code != R.OK:
            return code, ZERO
        if lim[Limit.MAX_OPEN_ORDERS] and account.open_orders + 1 > lim[Limit.MAX_OPEN_ORDERS]:
            return R.MAX_OPEN_ORDERS, ZERO
        code = self._exposure_limit(lim, account, is_buy, notional)
        if code != R.OK:
            return code, ZERO
        if lim[Limit.CHECK_BALANCE]:
            if is_buy:
                if self._free(account_id, inst.quote_asset) < notional:
                    return R.INSUFFICIENT_BALANCE, ZERO
            elif self._free(account_id, inst.base_asset) < qty:
                return R.INSUFFICIENT_BALANCE, ZERO
        goes_now = order_type in (OrderType.MARKET, OrderType.LIMIT) or inst.native_stops
        if goes_now and self._crosses_own(account_id, instrument_id, is_buy, order_type, price,
                                          0):
            return R.SELF_TRADE, ZERO
        return R.OK, reserve_price

    @staticmethod
    def _reference_x2(inst: Instrument, lim: dict[int, int]) -> Decimal:
        """Twice the reference price (bid + ask, or 2 x last with bid + ask until a first
        trade is seen); 0 when there is none."""
        if lim[Limit.COLLAR_USE_MID] == 0 and inst.last > 0:
            return 2 * inst.last
        if inst.bid <= 0 or inst.ask <= 0:
            return ZERO
        return inst.bid + inst.ask

    @staticmethod
    def _outside_collar(inst: Instrument, lim: dict[int, int], is_buy: bool, price: Decimal,
                        ref2: Decimal) -> bool:
        """Price collar around the reference: ``bps`` basis points, else ``ticks`` ticks."""
        bps, ticks = lim[Limit.COLLAR_BPS], lim[Limit.COLLAR_TICKS]
        if bps > 0:
            if is_buy:
                return 2 * price * 10000 > ref2 * (10000 + bps)
            return 2 * price * 10000 < ref2 * (10000 - bps)
        if is_buy:
            return 2 * price > ref2 + 2 * ticks * inst.tick
        return 2 * price < ref2 - 2 * ticks * inst.tick

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
    def _position_limit(lim: dict[int, int], inst: Instrument, pos: Position, is_buy: bool,
                        add_qty: Decimal) -> int:
        """Max position per instrument, counting open orders (worst case if all fill)."""
        if lim[Limit.MAX_POSITION]:
            max_pos = inst.amount(lim[Limit.MAX_POSITION], "qty")
            if is_buy and pos.qty + pos.open_buy + add_qty > max_pos:
                return Reject.MAX_POSITION
            if not is_buy and pos.open_sell + add_qty - pos.qty > max_pos:
                return Reject.MAX_POSITION
        return Reject.OK

    def _exposure_limit(self, lim: dict[int, int], account: Account, is_buy: bool,
                        add: Decimal) -> int:
        """Max gross and net exposure: positions at their last valuation plus open orders."""
        if lim[Limit.MAX_GROSS_EXPOSURE] and (
            account.gross + account.open_buy_notional + account.open_sell_notional + add
            > self._money(lim[Limit.MAX_GROSS_EXPOSURE])
        ):
            return Reject.MAX_GROSS_EXPOSURE
        if lim[Limit.MAX_NET_EXPOSURE]:
            max_net = self._money(lim[Limit.MAX_NET_EXPOSURE])
            if is_buy and account.net + account.open_buy_notional + add > max_net:
                return Reject.MAX_NET_EXPOSURE
            if not is_buy and account.open_sell_notional + add - account.net > max_net:
                return Reject.MAX_NET_EXPOSURE
        return Reject.OK

    def _crosses_own(self, account_id, instrument_id, is_buy, order_type, price: Decimal,
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

    def _check_bracket(self, account_id, inst: Instrument, cl_ord_id, tp_cl, sl_cl, side,
                       base: Decimal, tp_raw, sl_raw) -> int:
        """The legs against the anchor ``base`` they are distances from: the take-profit
        beyond it, the stop-loss short of it."""
        tp_price, sl_trigger = inst.amount(tp_raw, "price"), inst.amount(sl_raw, "price")
        if (tp_price < 0 or sl_trigger < 0 or tp_price > inst.price_cap
                or sl_trigger > inst.price_cap or base < 0 or base > inst.price_cap):
            return Reject.INVALID_CONTINGENCY
        if tp_price % inst.tick or sl_trigger % inst.tick or base % inst.tick:
            return Reject.PRICE_NOT_TICK_MULTIPLE
        if base == 0 and (tp_price or sl_trigger):
            return Reject.NO_REFERENCE_PRICE
        buy = side == Side.BUY
        if (tp_price and (tp_price <= base) == buy) or (sl_trigger and (sl_trigger >= base) == buy):
            return Reject.INVALID_CONTINGENCY
        clids = [cl_ord_id] + [c for c, p in ((tp_cl, tp_price), (sl_cl, sl_trigger)) if p]
        if len(set(clids)) != len(clids):
            return Reject.DUPLICATE_CLIENT_ORDER_ID
        for clid in clids[1:]:
            if (account_id, clid) in self.by_cl or (account_id, clid) in self.day_ids:
                return Reject.DUPLICATE_CLIENT_ORDER_ID
        return Reject.OK

    def _check_replace(self, account: Account, order_id, price_raw, qty_raw, ts) -> int:
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
        inst = self.instruments[o.instrument]
        new_price, new_qty = inst.amount(price_raw, "price"), inst.amount(qty_raw, "qty")
        if new_qty <= o.filled or new_qty > inst.qty_cap:
            return R.INVALID_QUANTITY
        if new_price <= 0 or new_price > inst.price_cap:
            return R.INVALID_PRICE
        if new_price % inst.tick:
            return R.PRICE_NOT_TICK_MULTIPLE
        if new_qty % inst.lot:
            return R.QUANTITY_NOT_LOT_MULTIPLE
        if new_qty < inst.min_qty:
            return R.BELOW_MIN_QUANTITY
        if new_qty > inst.max_qty:
            return R.ABOVE_MAX_QUANTITY
        notional = new_price * new_qty
        if notional > inst.notional_cap:
            return R.NOTIONAL_OVERFLOW
        if notional < inst.min_notional:
            return R.BELOW_MIN_NOTIONAL
        code, reduce_mode = self._kill_switch(account, o.strategy)
        if code != R.OK:
            return code
        if reduce_mode and new_qty > o.qty:
            return R.REDUCE_ONLY_MODE
        if lim[Limit.MAX_ORDER_QTY] and new_qty > inst.amount(lim[Limit.MAX_ORDER_QTY], "qty"):
            return R.MAX_ORDER_QUANTITY
        if lim[Limit.MAX_ORDER_NOTIONAL] and notional > inst.amount(
            lim[Limit.MAX_ORDER_NOTIONAL], "quote"
        ):
            return R.MAX_ORDER_NOTIONAL
        if lim[Limit.COLLAR_BPS] > 0 or lim[Limit.COLLAR_TICKS] > 0:
            ref2 = self._reference_x2(inst, lim)
            if ref2 <= 0:
                return R.NO_REFERENCE_PRICE
            max_age = lim[Limit.MAX_REFERENCE_AGE_NS]
            if inst.stale or (max_age > 0 and ts - inst.price_ts > max_age):
                return R.STALE_REFERENCE_PRICE
            if self._outside_collar(inst, lim, o.is_buy, new_price, ref2):
                return R.PRICE_COLLAR
        # what the replace adds to the worst case, while it is pending
        new_rem = max(o.qty, new_qty) - o.filled
        add_qty = new_rem - o.reserved_qty
        add_notional = new_rem * max(o.reserve_price, new_price) - o.reserved_notional
        pos = self.positions.get((account.account_id, o.instrument), Position())
        carries = o.contingency != Contingency.OCO or o.reserved_qty > 0
        if carries and add_qty > 0:
            if lim[Limit.LONG_ONLY] and not o.is_buy and pos.qty - pos.open_sell - add_qty < 0:
                return R.LONG_ONLY
            code = self._position_limit(lim, inst, pos, o.is_buy, add_qty)
            if code != R.OK:
                return code
        if carries and add_notional > 0:
            code = self._exposure_limit(lim, account, o.is_buy, add_notional)
            if code != R.OK:
                return code
        if o.locks_funds and carries:
            if o.is_buy:
                need, free = add_notional, self._free(account.account_id, inst.quote_asset)
            else:
                need, free = add_qty, self._free(account.account_id, inst.base_asset)
            if need > 0 and free < need:
                return R.INSUFFICIENT_BALANCE
        if self._crosses_own(account.account_id, o.instrument, o.is_buy, OrderType.LIMIT,
                             new_price, o.order_id):
            return R.SELF_TRADE
        return R.OK

    # ------------------------------------------------------------------ state changes
    def _insert(self, account_id, strategy_id, instrument_id, cl_ord_id, side, order_type, tif,
                price, trigger, qty, flags, expire_ts, ts, trail_offset,
                reserve_price: Decimal, oco=False, child=False) -> Order | None:
        """Insert a checked order; ``price``, ``trigger``, ``qty`` and ``trail_offset`` are the
        raw API arguments, converted here."""
        if len(self.day_ids) >= self.max_day_orders:
            return None
        if len(self.orders) >= self.max_orders and not self._evict(1):
            return None
        account = self.accounts[account_id]
        inst = self.instruments[instrument_id]
        o = Order(self.next_order_id, cl_ord_id, account_id, strategy_id, instrument_id, side,
                  order_type, tif, flags, inst.amount(price, "price"),
                  inst.amount(trigger, "price"), inst.amount(qty, "qty"), expire_ts,
                  inst.amount(trail_offset, "price"), ts)
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
        elif order_type in STOP_TYPES and not inst.native_stops:
            o.hold = Hold.TRIGGER
        if order_type == OrderType.TRAILING_STOP:
            o.trail_anchor = reserve_price
        if oco:
            o.contingency = Contingency.OCO
        self.orders[o.order_id] = o
        self.by_cl[(account_id, cl_ord_id)] = o.order_id
        self.day_ids.add((account_id, cl_ord_id))
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

    def _link_oco(self, a: Order, b: Order, qty: Decimal) -> None:
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
    def _live_qty(o: Order) -> Decimal:
        if o.status == S.PENDING_REPLACE:
            return max(o.qty, o.pending_qty)
        return o.qty

    def _set_status(self, o: Order, status: int, ts: int) -> None:
        was_terminal = o.status in TERMINAL
        o.status = status
        self._sync_reserve(o)
        filled = self.instruments[o.instrument].raw(o.filled, "qty")
        self._emit(EventType.ORDER_UPDATE, o, status, filled, 0, ts)
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
                if peer.hold == Hold.FIRED:
                    self._send_fired(peer, o, ts)
                else:
                    self._request_cancel(peer, ts, internal=True)
        size = o.filled
        if o.child1_id and o.filled > 0 and o.locks_funds and o.is_buy:
            # a spot exit sells no more than is held: a fee in the base asset left less
            inst = self.instruments[o.instrument]
            total, locked = self._balance(o.account, inst.base_asset)
            free = total - locked
            free = quotient(free, inst.lot, 0, ROUND_FLOOR) * inst.lot if free > 0 else ZERO
            if 0 < free < size:
                size = free
        if o.child1_id:
            children = [self.orders.get(o.child1_id), self.orders.get(o.child2_id)]
            for child in children:
                if child is None or child.status in TERMINAL or child.hold != Hold.PARENT:
                    continue
                if o.filled > 0:
                    child.qty = size
                    child.group_qty = size
                    inst = self.instruments[child.instrument]
                    price = self._protect_price(o, child.anchor, inst)
                    if child.order_type == OrderType.LIMIT:
                        child.price = price
                    else:
                        child.trigger = price
                    child.reserve_price = price
                    child.hold = Hold.TRIGGER if (
                        child.order_type in STOP_TYPES and not inst.native_stops
                    ) else Hold.NONE
                    self._sync_reserve(child)
                    self._emit(EventType.ORDER_UPDATE, child, child.status, 0, 0, ts)
                    if child.hold == Hold.NONE:
                        self._emit(EventType.SEND_ORDER, child, 0, 0, 0, ts)
                else:
                    self._set_status(child, S.CANCELED, ts)

    @staticmethod
    def _away_from(anchor: Decimal, offset: Decimal, inst: Instrument) -> Decimal:
        """anchor + offset on the tick grid, rounded away from the anchor, within one tick ..
        the price cap."""
        cap = inst.price_cap
        p = min(anchor + offset, cap)
        if p < inst.tick:
            return inst.tick
        p = quotient(p, inst.tick, 0, ROUND_CEILING if offset > 0 else ROUND_FLOOR) * inst.tick
        return p - inst.tick if p > cap else p

    def _protect_price(self, entry: Order, offset: Decimal, inst: Instrument) -> Decimal:
        """A released child's price: its distance from the entry's average fill price
        (truncated to the price unit) or from the entry's anchor, and never on the wrong side
        of that fill price."""
        fill = quotient(entry.fill_notional, entry.filled, inst.precision["price"], ROUND_DOWN)
        anchor = fill if entry.protect & PROTECT_ON_FILL else entry.anchor
        p = self._away_from(anchor, offset, inst)
        if (offset > 0 and p <= fill) or (offset < 0 and p >= fill):
            p = self._away_from(fill, offset, inst)
        return p

    def _request_cancel(self, o: Order, ts: int, internal: bool = False) -> None:
        if o.hold != Hold.NONE:
            self._set_status(o, S.EXPIRED if o.expiring else S.CANCELED, ts)
            return
        if o.status == S.PENDING_CANCEL:
            return
        if o.status == S.PENDING_REPLACE:
            o.pending_price = o.pending_qty = ZERO
        self._set_status(o, S.PENDING_CANCEL, ts)
        self._emit(EventType.SEND_CANCEL, o, 0, 0, 0, ts)

    def _resize_oco_peer(self, o: Order, ts: int) -> None:
        """A partial fill of one leg shrinks the other to what is left of the pair."""
        peer = self.orders.get(o.linked_id)
        if peer is None or peer.status in TERMINAL:
            return
        inst = self.instruments[peer.instrument]
        left = o.group_qty - o.filled - peer.filled
        target = peer.filled + left
        if target >= peer.qty:
            return
        if left <= 0:
            self._request_cancel(peer, ts, internal=True)
        elif peer.hold != Hold.NONE:
            peer.qty = target
            self._sync_reserve(peer)
            self._emit(EventType.ORDER_UPDATE, peer, peer.status, inst.raw(peer.filled, "qty"),
                       0, ts)
        elif peer.status in (S.NEW, S.PARTIALLY_FILLED) and peer.order_type != OrderType.MARKET:
            peer.pending_price, peer.pending_qty = peer.price, target
            self._set_status(peer, S.PENDING_REPLACE, ts)
            self._emit(EventType.SEND_REPLACE, peer, 0, inst.raw(peer.price, "price"),
                       inst.raw(target, "qty"), ts)

    def _sync_reserve(self, o: Order) -> None:
        """Bring the order's share of open quantity, notional and locked funds up to date."""
        if o.status in TERMINAL or o.hold == Hold.PARENT or (
            o.contingency == Contingency.OCO and not self._carries_pair(o)
        ):
            qty = notional = ZERO
        else:
            qty = max(ZERO, self._live_qty(o) - o.filled)
            price = o.reserve_price
            if o.status == S.PENDING_REPLACE:
                price = max(price, o.pending_price)
            notional = qty * price
        lock = ZERO
        if o.locks_funds:
            lock = notional if o.is_buy else qty  # quote for a buy, base for a sell
        dq, dn, dl = qty - o.reserved_qty, notional - o.reserved_notional, lock - o.locked
        if dq == 0 and dn == 0 and dl == 0:
            return
        o.reserved_qty, o.reserved_notional, o.locked = qty, notional, lock
        inst = self.instruments[o.instrument]
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

    def _apply_fill(self, account, pos: Position, inst: Instrument, signed: Decimal,
                    price: Decimal, exit_reason: int, o: Order, ts: int, main: bool) -> None:
        """Netting position update; main=True also drives account totals and trip events."""
        qty = abs(signed)
        realized = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            if pos.qty == 0:
                pos.entry_ts = ts
                pos.trip_realized = ZERO
            pos.qty += signed
            pos.cost += signed * price
        else:
            close = min(qty, abs(pos.qty))
            # THE rounding rule of the ledger: the cost removed with a partial close is in
            # proportion, truncated toward zero to the quote asset's unit
            removed = quotient(abs(pos.cost) * close, abs(pos.qty), inst.precision["quote"],
                               ROUND_DOWN)
            exit_value = close * price
            realized = exit_value - removed if pos.qty > 0 else removed - exit_value
            pos.cost -= removed if pos.qty > 0 else -removed
            pos.qty += close if signed > 0 else -close
            pos.realized += realized
            pos.trip_realized += realized
            rest = qty - close
            if pos.qty == 0:
                if main:
                    reason = ExitReason.FLIP if rest > 0 else exit_reason
                    self._emit(EventType.TRADE_CLOSED, o, reason,
                               inst.raw(pos.trip_realized, "quote"), pos.entry_ts, ts)
                if rest > 0:
                    pos.entry_ts = ts
                    pos.trip_realized = ZERO
                    pos.qty = rest if signed > 0 else -rest
                    pos.cost = pos.qty * price
        if main:
            account.realized += realized
            self._revalue(account, pos, inst.last if inst.last > 0 else price)

    @staticmethod
    def _revalue(account: Account, pos: Position, mark: Decimal) -> None:
        exposure = pos.qty * mark
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
        if lim[Limit.MAX_DAILY_LOSS] and (
            account.day_start_pnl - pnl > self._money(lim[Limit.MAX_DAILY_LOSS])
        ):
            account.kill = KillMode.HALT
            self._alert(Alert.DAILY_LOSS_BREAKER, account.account_id, 0, 0, 0,
                        self._money_raw(pnl), self._money_raw(account.day_start_pnl), ts)
        elif lim[Limit.MAX_DRAWDOWN] and (
            account.peak_pnl - pnl > self._money(lim[Limit.MAX_DRAWDOWN])
        ):
            account.kill = KillMode.HALT
            self._alert(Alert.DRAWDOWN_BREAKER, account.account_id, 0, 0, 0,
                        self._money_raw(pnl), self._money_raw(account.peak_pnl), ts)

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

    def _balance(self, account_id: int, asset_id: int) -> list[Decimal]:
        return self.balances.setdefault((account_id, asset_id), [ZERO, ZERO])

    def _free(self, account_id: int, asset_id: int) -> Decimal:
        """Total minus locked, as an amount (no entry is created)."""
        total, locked = self.balances.get((account_id, asset_id), (ZERO, ZERO))
        return total - locked

    def _emit(self, etype: int, o: Order, code: int, a: int, b: int, ts: int) -> None:
        """Queue an event; ``a`` and ``b`` are raw counts (converted by the caller)."""
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
    "ts_last_fill", "ts_done", "anchor", "protect",
)
POSITION_FIELDS = (
    "qty", "cost", "realized", "fees", "open_buy", "open_sell", "entry_ts", "trip_realized",
    "exposure", "unrealized", "unprotected",
)
ACCOUNT_FIELDS = (
    "kill", "open_orders", "open_buy_notional", "open_sell_notional", "gross", "net",
    "realized", "fees", "unrealized", "day_start_pnl", "peak_pnl", "day_start_ts",
)
# The unit each Decimal field is reported in (a key of ``Instrument.precision``); the other
# fields are ints and flags, reported as they are.
ORDER_UNITS = {
    "price": "price", "trigger": "price", "trail_offset": "price", "reserve_price": "price",
    "pending_price": "price", "trail_anchor": "price", "anchor": "price",
    "qty": "qty", "filled": "qty", "pending_qty": "qty", "group_qty": "qty",
    "reserved_qty": "qty",
    "fill_notional": "price_qty", "reserved_notional": "quote",
}
POSITION_UNITS = {
    "qty": "qty", "open_buy": "qty", "open_sell": "qty",
    "cost": "quote", "realized": "quote", "fees": "quote", "trip_realized": "quote",
    "exposure": "quote", "unrealized": "quote",
}
# Account fields in the account's money unit (ReferenceModel.money_precision).
ACCOUNT_MONEY = frozenset(ACCOUNT_FIELDS) - {"kill", "open_orders", "day_start_ts"}
