"""Turn a strategy's signal into orders for every client that follows the strategy.

A signal names a strategy and an instrument and carries one of: a direction (-1, 0, 1), a
target quantity (raw), or a target weight (parts per million of the client's balance, signed).
Each following client turns it into orders with its own :class:`~oms_core.config.OrderParams`
(long-only or long/short, market or limit entry with an offset in ticks or bps from the open of
the current bar or the close of the previous one, fixed / balance-share / volatility-targeted
size, take-profit and stop-loss as a multiple of recent volatility or a fixed fraction placed as
a bracket, time in force) and its own limits, which the core checks.

Two layers:

* :func:`plan_signal` is pure: raw integers in, a :class:`Plan` of :class:`OrderIntent` out.
  The only non-integer is the volatility estimate (a statistic, computed with numpy and carried
  as an integer in parts per billion); every price and quantity is an integer rounded to the
  instrument's tick and lot.
* :func:`apply_signal` runs the plans of all followers against an ``OmsCore`` and returns one
  :class:`ClientAnswer` per client: accepted with the order ids, or rejected with the
  :class:`~oms_core.enums.Reject` code and its reason.

Bars. Live, the engine builds bars of each strategy's ``bar_interval_s`` from every venue
trade it hears (``oms_core/bars.pyx``, ``docs/signals.md``): the open is the bar's first trade,
the previous close the last trade of the bar before, and volatility counts completed bars. Until
a first bar has ended both are the price at the signal. A replay's data are its bars.

Semantics. ``0`` always means flatten. Rebalancing trades only the difference between the
target and the strategy's filled position for that client (``strategy_position.qty``); before
changing a position the client's working orders of that strategy and instrument are canceled,
so a new signal replaces the previous intent. A move through zero is split into a closing order
and an opening bracket. Exits (reductions, flattening) are market orders; entries follow the
client's parameters. For single-entry strategies a direction signal is passed to the core as
an entry (``1``: buy) or an exit (``-1``: sell what is held) without rebalancing: the core
rejects a buy while the strategy holds the instrument with ``Reject.SINGLE_ENTRY``, and a
``-1`` while nothing is held cancels the working entry and leaves the client flat (a
single-entry position is long only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bindings.wire.spec import SignalMode
from oms_core.enums import REJECT_REASONS, OrderType, Reject, Side, TimeInForce

if TYPE_CHECKING:
    from oms_core.config import OmsConfig, OrderParams

__all__ = [
    "ClOrdIds", "ClientAnswer", "InstrumentSpec", "MarketState", "OrderIntent", "Plan",
    "Signal", "apply_signal", "instrument_spec", "plan_signal", "volatility_ppb",
]

PPM = 1_000_000
PPB = 1_000_000_000
NS_PER_DAY = 86_400 * PPB


@dataclass(frozen=True, slots=True)
class Signal:
    strategy: int
    instrument: int
    kind: SignalMode
    value: int
    ts: int = 0  # nanoseconds; when the signal was made


@dataclass(frozen=True, slots=True)
class MarketState:
    """What the planner knows of the instrument's market when the signal arrives."""

    open: int = 0  # open of the current bar, raw price
    prev_close: int = 0  # close of the previous bar, raw price
    vol_ppb: int = 0  # std of per-bar returns over the client's window, ppb (0: unknown)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    id: int
    tick: int
    lot: int
    min_qty: int
    max_qty: int
    notional_mult: int  # notional (quote units) = price * qty * notional_mult


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order (or bracket when tp_price or sl_trigger is set) to submit."""

    side: Side
    order_type: OrderType
    qty: int
    price: int = 0  # limit price, 0 for market
    tif: TimeInForce = TimeInForce.GTC
    expire_ts: int = 0
    tp_price: int = 0
    sl_trigger: int = 0
    anchor: int = 0  # the price tp_price / sl_trigger were measured from (the core keeps the
    # distances and places them from the entry's fill, or from here, by the client's config)

    @property
    def bracket(self) -> bool:
        return bool(self.tp_price or self.sl_trigger)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one client does with a signal. ``code`` is Reject.OK unless it cannot act."""

    intents: tuple[OrderIntent, ...] = ()
    cancel_first: bool = False  # cancel working orders of this strategy/instrument first
    target: int = 0
    code: Reject = Reject.OK
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClientAnswer:
    """One client's outcome for one signal."""

    client: str
    account: int
    accepted: bool
    order_ids: tuple[int, ...] = ()
    code: Reject = Reject.OK
    reason: str = "ok"
    canceled: int = 0  # working orders whose cancel was started first
    target: int = 0


@dataclass(slots=True)
class ClOrdIds:
    """Client order ids per account: a counter, so replays get the same ids."""

    start: int = 1
    next_ids: dict[int, int] = field(default_factory=dict)

    def next(self, account: int) -> int:
        n = self.next_ids.get(account, self.start)
        self.next_ids[account] = n + 1
        return n


# ------------------------------------------------------------------------------ arithmetic
def volatility_ppb(closes: Sequence[int] | np.ndarray, window: int) -> int:
    """Return the sample standard deviation of the last ``window`` simple returns of
    ``closes`` in parts per billion, or 0 when there are fewer than ``window`` + 1 closes."""
    c = np.asarray(closes, dtype=np.float64)
    if window < 2 or c.size < window + 1 or np.any(c[-window - 1:] <= 0):
        return 0
    tail = c[-window - 1:]
    r = tail[1:] / tail[:-1] - 1.0
    return int(round(float(np.std(r, ddof=1)) * PPB))


def _floor_to(x: int, step: int) -> int:
    return (x // step) * step


def _ceil_to(x: int, step: int) -> int:
    return -((-x) // step) * step


def _size(p: OrderParams, inst: InstrumentSpec, ref: int, balance: int,
          vol_ppb: int) -> tuple[int, Reject, str]:
    """Unsigned entry size in raw quantity, floored to the lot and capped."""
    unit = ref * inst.notional_mult  # quote units of one raw quantity unit
    if p.sizing == "fixed":
        qty = p.fixed_qty.get(inst.id, 0)
    elif p.sizing == "balance_share":
        qty = balance * p.balance_share_ppm // (PPM * unit)
    else:  # vol_target: one standard deviation of the position = vol_target of the balance
        if vol_ppb <= 0:
            return 0, Reject.NOT_ENOUGH_BARS, "not enough bars to estimate volatility"
        qty = balance * p.vol_target_ppm * PPB // (PPM * unit * vol_ppb)
    cap = min(inst.max_qty, p.max_qty.get(inst.id, inst.max_qty))
    qty = _floor_to(min(qty, cap), inst.lot)
    if qty <= 0 or qty < inst.min_qty:
        return 0, Reject.BELOW_MIN_QUANTITY, (
            f"sized quantity {qty} is below the instrument minimum {inst.min_qty}")
    return qty, Reject.OK, ""


def _exit_distance(kind: str, ppm: int, ref: int, vol_ppb: int) -> int:
    """Price distance of a take-profit / stop-loss (raw price units, before tick rounding)."""
    # rounded up: the exit is never nearer than asked
    if kind == "pct":
        return -(-ref * ppm // PPM)
    return -(-ref * vol_ppb * ppm // (PPB * PPM))  # vol multiple


def _bracket_prices(p: OrderParams, inst: InstrumentSpec, side: Side, base: int,
                    vol_ppb: int) -> tuple[int, int, Reject, str]:
    tp = sl = 0
    if "vol" in (p.take_profit, p.stop_loss) and vol_ppb <= 0:
        return 0, 0, Reject.NOT_ENOUGH_BARS, "not enough bars to estimate volatility"
    buy = side == Side.BUY
    if p.take_profit != "none":
        d = max(_exit_distance(p.take_profit, p.take_profit_ppm, base, vol_ppb), inst.tick)
        tp = _ceil_to(base + d, inst.tick) if buy else _floor_to(base - d, inst.tick)
    if p.stop_loss != "none":
        d = max(_exit_distance(p.stop_loss, p.stop_loss_ppm, base, vol_ppb), inst.tick)
        sl = _floor_to(base - d, inst.tick) if buy else _ceil_to(base + d, inst.tick)
    if tp < 0 or sl < 0 or (p.take_profit != "none" and tp == 0) or (
            p.stop_loss != "none" and sl == 0):
        return 0, 0, Reject.INVALID_CONTINGENCY, "take-profit or stop-loss price below zero"
    return tp, sl, Reject.OK, ""


def _expiry(p: OrderParams, ts: int) -> int:
    if p.tif == TimeInForce.GTD:
        return ts + p.expire_after_ns
    if p.tif == TimeInForce.DAY:  # end of the UTC day
        return (ts // NS_PER_DAY + 1) * NS_PER_DAY
    return 0


def _entry(p: OrderParams, inst: InstrumentSpec, side: Side, qty: int, ref: int,
           vol_ppb: int, ts: int) -> tuple[OrderIntent | None, Reject, str]:
    price = 0
    if p.entry_type == OrderType.LIMIT:
        off = p.offset_ticks * inst.tick if p.offset_ticks else ref * p.offset_bps // 10_000
        price = _floor_to(ref - off, inst.tick) if side == Side.BUY else _ceil_to(
            ref + off, inst.tick)
        if price <= 0:
            return None, Reject.INVALID_PRICE, f"limit price {price} after the offset"
    tp, sl, code, reason = _bracket_prices(p, inst, side, price or ref, vol_ppb)
    if code != Reject.OK:
        return None, code, reason
    tif = p.tif if p.entry_type == OrderType.LIMIT or p.tif in (
        TimeInForce.IOC, TimeInForce.FOK) else TimeInForce.GTC
    expire = _expiry(p, ts) if tif in (TimeInForce.GTD, TimeInForce.DAY) else 0
    anchor = (price or ref) if tp or sl else 0
    return OrderIntent(side, p.entry_type, qty, price, tif, expire, tp, sl, anchor), Reject.OK, ""


def _exit(side: Side, qty: int) -> OrderIntent:
    return OrderIntent(side, OrderType.MARKET, qty)


def _rejected(code: Reject, reason: str, target: int = 0) -> Plan:
    return Plan(code=code, reason=reason or REJECT_REASONS[code], target=target)


# ------------------------------------------------------------------------------- planning
def plan_signal(signal: Signal, params: OrderParams, inst: InstrumentSpec,
                market: MarketState, position: int, balance: int,
                single_entry: bool = False) -> Plan:
    """Return what one client does with ``signal``.

    Parameters
    ----------
    signal : Signal
    params : OrderParams
        The client's order parameters.
    inst : InstrumentSpec
    market : MarketState
        Open of the current bar, close of the previous one, recent volatility.
    position : int
        The client's filled position in this strategy and instrument (raw, signed).
    balance : int
        The client's total balance of the instrument's quote asset (raw).
    single_entry : bool
        The strategy trades one position at a time (the core enforces it).
    """
    ref = market.open if params.entry_ref == "open" else market.prev_close
    kind, value = signal.kind, signal.value
    if kind == SignalMode.DIRECTION and value not in (-1, 0, 1):
        return _rejected(Reject.INVALID_SIDE, f"direction must be -1, 0 or 1, got {value}")
    if value == 0:  # flatten
        if position == 0:
            return Plan(cancel_first=True, reason="already flat")
        side = Side.SELL if position > 0 else Side.BUY
        return Plan((_exit(side, abs(position)),), cancel_first=True)
    if ref <= 0:
        return _rejected(Reject.NO_REFERENCE_PRICE,
                         f"no {'open' if params.entry_ref == 'open' else 'previous close'} "
                         "price for the instrument")
    vol = market.vol_ppb
    if kind == SignalMode.DIRECTION and single_entry:
        if value == 1:
            qty, code, reason = _size(params, inst, ref, balance, vol)
            if code != Reject.OK:
                return _rejected(code, reason)
            intent, code, reason = _entry(params, inst, Side.BUY, qty, ref, vol, signal.ts)
            if intent is None:
                return _rejected(code, reason)
            return Plan((intent,), target=position + qty)
        if position > 0:
            return Plan((_exit(Side.SELL, position),), cancel_first=True, target=0)
        # nothing held: a single-entry position is long only, so -1 leaves it flat
        return Plan(cancel_first=True, reason="already flat")
    # -- the target position
    if kind == SignalMode.DIRECTION:
        if value < 0 and params.long_only:
            target = 0
        else:
            qty, code, reason = _size(params, inst, ref, balance, vol)
            if code != Reject.OK:
                return _rejected(code, reason)
            target = value * qty
    elif kind == SignalMode.TARGET_QTY:
        target = value
        if abs(target) % inst.lot:
            return _rejected(Reject.QUANTITY_NOT_LOT_MULTIPLE,
                             f"target {target} is not a multiple of the lot {inst.lot}")
    elif kind == SignalMode.TARGET_WEIGHT:
        mag = _floor_to(balance * abs(value) // (PPM * ref * inst.notional_mult), inst.lot)
        target = mag if value > 0 else -mag
    else:
        return _rejected(Reject.INVALID_ORDER_TYPE, f"unknown signal kind {kind}")
    if target < 0 and params.long_only:
        target = 0
    return _rebalance(params, inst, position, target, ref, vol, signal.ts)


def _rebalance(p: OrderParams, inst: InstrumentSpec, position: int, target: int, ref: int,
               vol: int, ts: int) -> Plan:
    if target == position:
        return Plan(target=target, reason="already at target")
    intents: list[OrderIntent] = []
    opening = target
    if position != 0 and (target == 0 or (target > 0) != (position > 0)):
        # close first (a move through zero becomes a close plus an opening bracket)
        intents.append(_exit(Side.SELL if position > 0 else Side.BUY, abs(position)))
        position = 0
    elif abs(target) < abs(position):  # reduce
        side = Side.SELL if position > 0 else Side.BUY
        intents.append(_exit(side, abs(position - target)))
        return Plan(tuple(intents), cancel_first=True, target=target)
    if opening != position:
        delta = opening - position
        side = Side.BUY if delta > 0 else Side.SELL
        entry, code, reason = _entry(p, inst, side, abs(delta), ref, vol, ts)
        if entry is None:
            return _rejected(code, reason, target)
        intents.append(entry)
    return Plan(tuple(intents), cancel_first=True, target=target)


# -------------------------------------------------------------------------------- applying
def instrument_spec(cfg: OmsConfig, instrument_id: int) -> InstrumentSpec:
    """The planner's view of an instrument of ``cfg``."""
    i = cfg.instrument_by_id(instrument_id)
    shift = cfg.assets[i.quote].precision - i.price_precision - i.qty_precision
    return InstrumentSpec(i.id, i.tick, i.lot, i.min_qty, i.max_qty, 10**shift)


def apply_signal(core, cfg: OmsConfig, signal: Signal, market: MarketState | None = None,
                 closes: Sequence[int] | np.ndarray | None = None, ts: int | None = None,
                 *, cl_ids: ClOrdIds, shard: int | None = None) -> list[ClientAnswer]:
    """Apply ``signal`` for every client of the strategy (of ``shard`` when given) and return
    one answer per client, in account id order.

    ``closes`` (recent closes of the instrument, oldest first) gives each client its own
    volatility over its ``vol_window``; without it ``market.vol_ppb`` is used. ``cl_ids``
    must be the same object for the life of the core: client order ids must not repeat.
    """
    ts = signal.ts if ts is None else ts
    market = market or MarketState()
    try:
        sname = cfg.ids.name("strategies", signal.strategy)
        iname = cfg.ids.name("instruments", signal.instrument)
    except KeyError as e:
        return [ClientAnswer("", 0, False, code=Reject.UNKNOWN_STRATEGY
                             if "strategies" in str(e) else Reject.UNKNOWN_INSTRUMENT,
                             reason=str(e.args[0]))]
    strategy = cfg.strategies[sname]
    inst = instrument_spec(cfg, signal.instrument)
    quote = cfg.assets[cfg.instruments[iname].quote].id
    answers = []
    vol_by_window: dict[int, int] = {}  # volatility is costly: once per window, only if read
    for client in cfg.followers(sname):
        if shard is not None and client.shard != shard:
            continue
        acct = client.id
        if iname not in strategy.instruments:
            answers.append(ClientAnswer(client.name, acct, False, code=Reject.UNKNOWN_INSTRUMENT,
                                        reason=f"strategy {sname} does not trade {iname}"))
            continue
        mkt = market
        p = client.orders
        if closes is not None and (p.sizing == "vol_target" or "vol" in (p.take_profit,
                                                                         p.stop_loss)):
            if p.vol_window not in vol_by_window:
                vol_by_window[p.vol_window] = volatility_ppb(closes, p.vol_window)
            mkt = MarketState(market.open, market.prev_close, vol_by_window[p.vol_window])
        position = core.strategy_position(acct, signal.strategy, signal.instrument)["qty"]
        balance = core.balance(acct, quote)[0]
        plan = plan_signal(signal, client.orders, inst, mkt, position, balance,
                           strategy.single_entry)
        answers.append(_execute(core, client.name, acct, signal, plan, ts, cl_ids))
    return answers


def _execute(core, client: str, acct: int, signal: Signal, plan: Plan, ts: int,
             cl_ids: ClOrdIds) -> ClientAnswer:
    if plan.code != Reject.OK:
        return ClientAnswer(client, acct, False, code=plan.code, reason=plan.reason,
                            target=plan.target)
    canceled = core.mass_cancel(acct, signal.strategy, signal.instrument, ts) \
        if plan.cancel_first else 0
    ids: list[int] = []
    for it in plan.intents:
        if it.bracket:
            code, entry, tp, sl = core.submit_bracket(
                acct, signal.strategy, signal.instrument, cl_ids.next(acct),
                cl_ids.next(acct), cl_ids.next(acct), it.side, it.order_type, it.price,
                it.qty, it.tp_price, it.sl_trigger, it.tif, ts, it.anchor, it.expire_ts)
            new = [i for i in (entry, tp, sl) if i]
        else:
            code, oid = core.submit(acct, signal.strategy, signal.instrument, cl_ids.next(acct),
                                    it.side, it.order_type, it.tif, it.price, 0, it.qty, 0,
                                    it.expire_ts, ts)
            new = [oid] if oid else []
        if code != Reject.OK:
            code = Reject(code)
            reason = REJECT_REASONS[code]
            if canceled:
                # orders resting at the venue keep their quantity reserved until the venue
                # confirms the cancel; the caller resends the signal after that
                reason += (f" ({canceled} working order(s) being canceled first; their quantity "
                           "stays reserved until the venue confirms)")
            return ClientAnswer(client, acct, False, tuple(ids), code, reason, canceled,
                                plan.target)
        ids.extend(new)
    return ClientAnswer(client, acct, True, tuple(ids), Reject.OK, plan.reason or "ok",
                        canceled, plan.target)
