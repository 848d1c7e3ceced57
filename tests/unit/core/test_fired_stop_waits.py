"""An engine-held OCO leg that fires while its partner rests at the venue waits for the
partner's cancel before it is sent, so the two never both fill (compiled core and reference)."""

from __future__ import annotations

import pytest

from oms_core.core import OmsCore
from oms_core.enums import (
    Alert,
    EventType,
    Hold,
    KillMode,
    OrderStatus,
    OrderType,
    ProtectAction,
    Reject,
    Side,
    TimeInForce,
)
from oms_core.reference.model import ReferenceModel

BUY, SELL = Side.BUY, Side.SELL
LIMIT, STOP, TP = OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT
GTC = TimeInForce.GTC
PX = 5_000_000  # 50,000.00
QTY = 100_000   # 1 BTC
USDT, BTC = 0, 1


def _model(kind: str, native_stops: bool = False) -> OmsCore | ReferenceModel:
    c = OmsCore(max_orders=256) if kind == "core" else ReferenceModel(max_orders=256)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8,
                     native_stops=native_stops)
    c.add_account(0)
    c.add_strategy(1)
    c.deposit(0, USDT, 1_000_000 * 10**8)
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    c.drain_events()
    return c


@pytest.fixture(params=["core", "reference"])
def model(request) -> OmsCore | ReferenceModel:
    return _model(request.param)


def _long_bracket(c, clid: int = 1) -> tuple[int, int, int]:
    """A filled long entry; its take-profit acknowledged at the venue, its stop engine-held."""
    code, entry, tp, sl = c.submit_bracket(0, 1, 0, clid, clid + 1, clid + 2, BUY, LIMIT, PX,
                                           QTY, PX + 1000, PX - 1000, GTC, 10)
    assert code == Reject.OK
    c.on_ack(entry, 11)
    c.on_fill(entry, clid, QTY, PX, 0, USDT, 1, 12)
    c.on_ack(tp, 13)
    assert c.order(tp)["status"] == OrderStatus.NEW and c.order(tp)["hold"] == Hold.NONE
    assert c.order(sl)["hold"] == Hold.TRIGGER
    c.drain_events()
    return entry, tp, sl


def _of(events, etype) -> list[int]:
    return [e[5] for e in events if e[0] == etype]


def _fire_stop(c, sl: int, tp: int) -> None:
    c.set_price(0, PX - 1000, 0, 0, 20)  # the stop-loss triggers
    ev = c.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == []  # not sent while the take-profit can fill
    assert _of(ev, EventType.SEND_CANCEL) == [tp]
    assert sl in _of(ev, EventType.ORDER_UPDATE)  # the client is told it fired
    o = c.order(sl)
    assert o["hold"] == Hold.FIRED and o["status"] == OrderStatus.PENDING_NEW
    assert c.order(tp)["status"] == OrderStatus.PENDING_CANCEL


def test_partner_canceled_then_the_fired_stop_goes_out_for_the_pair(model):
    _, tp, sl = _long_bracket(model)
    _fire_stop(model, sl, tp)
    model.set_price(0, PX - 2000, 0, 0, 21)  # fires once only
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    assert model.on_canceled(tp, 22) == Reject.OK
    ev = model.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == [sl]
    o = model.order(sl)
    assert o["hold"] == Hold.NONE and o["qty"] == QTY
    model.on_ack(sl, 23)
    model.on_fill(sl, 2, QTY, PX - 1000, 0, USDT, 1, 24)
    assert model.position(0, 0)["qty"] == 0


def test_partner_filled_while_waiting_closes_the_fired_stop_unsent(model):
    _, tp, sl = _long_bracket(model)
    _fire_stop(model, sl, tp)
    model.on_fill(tp, 2, QTY, PX + 1000, 0, USDT, 1, 22)
    ev = model.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == []
    assert model.order(tp)["status"] == OrderStatus.FILLED
    assert model.order(sl)["status"] == OrderStatus.CANCELED
    assert model.on_canceled(tp, 23) == Reject.INVALID_TRANSITION  # the late cancel answer
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    assert model.position(0, 0)["qty"] == 0  # flat, never short


def test_partner_partly_filled_then_canceled_sends_the_rest(model):
    _, tp, sl = _long_bracket(model)
    _fire_stop(model, sl, tp)
    model.on_fill(tp, 2, 40_000, PX + 1000, 0, USDT, 1, 22)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    model.on_canceled(tp, 23)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [sl]
    assert model.order(sl)["qty"] == 60_000
    model.on_ack(sl, 24)
    model.on_fill(sl, 3, 60_000, PX - 1000, 0, USDT, 1, 25)
    assert model.order(sl)["status"] == OrderStatus.FILLED
    assert model.position(0, 0)["qty"] == 0


def test_partner_filled_before_the_trigger_leaves_the_stop_its_share(model):
    _, tp, sl = _long_bracket(model)
    model.on_fill(tp, 2, 30_000, PX + 1000, 0, USDT, 1, 14)
    assert model.order(sl)["qty"] == 70_000  # held: resized in place
    model.drain_events()
    _fire_stop(model, sl, tp)
    model.on_fill(tp, 3, 10_000, PX + 1000, 0, USDT, 1, 22)
    model.on_canceled(tp, 23)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [sl]
    assert model.order(sl)["qty"] == 60_000


def test_cancel_refused_then_partner_fills_the_stop_is_never_sent(model):
    _, tp, sl = _long_bracket(model)
    _fire_stop(model, sl, tp)
    assert model.on_cancel_reject(tp, 22) == Reject.OK  # the venue is filling it
    assert model.order(sl)["hold"] == Hold.FIRED  # still waits: the partner is live
    model.on_fill(tp, 2, QTY, PX + 1000, 0, USDT, 1, 23)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    assert model.order(sl)["status"] == OrderStatus.CANCELED
    assert model.position(0, 0)["qty"] == 0


def test_partner_refused_by_the_venue_sends_the_fired_stop(model):
    code, entry, tp, sl = model.submit_bracket(0, 1, 0, 1, 2, 3, BUY, LIMIT, PX, QTY,
                                               PX + 1000, PX - 1000, GTC, 10)
    model.on_fill(entry, 1, QTY, PX, 0, USDT, 1, 12)
    model.drain_events()  # the take-profit is on its way (PENDING_NEW), not acknowledged
    _fire_stop(model, sl, tp)
    model.on_reject(tp, 5, 22)
    assert model.order(tp)["status"] == OrderStatus.REJECTED
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [sl]  # no retry, no flatten
    assert model.order(sl)["qty"] == QTY


def test_plain_oco_with_a_resting_leg_waits_too(model):
    model.on_fill(model.submit(0, 1, 0, 1, BUY, LIMIT, GTC, PX, 0, QTY, 0, 0, 10)[1], 1, QTY,
                  PX, 0, USDT, 1, 11)
    code, lim, stop = model.submit_oco(0, 1, 0, 2, 3, SELL, LIMIT, PX + 1000, 0, STOP, 0,
                                       PX - 1000, QTY, GTC, 12)
    assert code == Reject.OK
    model.on_ack(lim, 13)
    model.drain_events()
    _fire_stop(model, stop, lim)
    model.on_canceled(lim, 22)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [stop]


def test_both_legs_engine_held_fire_without_waiting(model):
    model.on_fill(model.submit(0, 1, 0, 1, BUY, LIMIT, GTC, PX, 0, QTY, 0, 0, 10)[1], 1, QTY,
                  PX, 0, USDT, 1, 11)
    code, tp, stop = model.submit_oco(0, 1, 0, 2, 3, SELL, TP, 0, PX + 1000, STOP, 0,
                                      PX - 1000, QTY, GTC, 12)
    assert code == Reject.OK
    model.drain_events()
    model.set_price(0, PX - 1000, 0, 0, 20)
    ev = model.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == [stop]
    assert _of(ev, EventType.SEND_CANCEL) == []
    assert model.order(stop)["hold"] == Hold.NONE


@pytest.mark.parametrize("kind", ["core", "reference"])
def test_native_stops_rest_at_the_venue_and_shrink_by_replace(kind):
    c = _model(kind, native_stops=True)
    code, entry, tp, sl = c.submit_bracket(0, 1, 0, 1, 2, 3, BUY, LIMIT, PX, QTY, PX + 1000,
                                           PX - 1000, GTC, 10)
    c.drain_events()
    c.on_fill(entry, 1, QTY, PX, 0, USDT, 1, 12)
    assert sorted(_of(c.drain_events(), EventType.SEND_ORDER)) == sorted([tp, sl])
    c.on_ack(tp, 13)
    c.on_ack(sl, 13)
    c.on_fill(tp, 2, 40_000, PX + 1000, 0, USDT, 1, 14)
    ev = c.drain_events()
    assert _of(ev, EventType.SEND_REPLACE) == [sl]
    c.set_price(0, PX - 1000, 0, 0, 20)  # the venue holds the stop: nothing fires here
    ev = c.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == [] and _of(ev, EventType.SEND_CANCEL) == []
    assert c.order(sl)["hold"] == Hold.NONE


def test_a_fired_stop_that_reduces_passes_a_halt(model):
    _, tp, sl = _long_bracket(model)
    _fire_stop(model, sl, tp)
    model.set_kill(1, 0, KillMode.HALT)  # halted while the stop waits
    model.on_canceled(tp, 22)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [sl]  # protection still works


def test_a_fired_stop_that_would_open_a_position_is_refused_under_a_halt(model):
    # flat: the pair would sell what the account does not hold
    code, lim, stop = model.submit_oco(0, 1, 0, 2, 3, SELL, LIMIT, PX + 1000, 0, STOP, 0,
                                       PX - 1000, QTY, GTC, 12)
    assert code == Reject.OK
    model.on_ack(lim, 13)
    model.drain_events()
    _fire_stop(model, stop, lim)
    model.set_kill(0, 0, KillMode.REDUCE_ONLY)
    model.on_canceled(lim, 22)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    o = model.order(stop)
    assert (o["status"], o["reason"]) == (OrderStatus.REJECTED, Reject.REDUCE_ONLY_MODE)
    # a lone held stop too, at once
    model.set_kill(0, 0, KillMode.OFF)
    code, alone = model.submit(0, 1, 0, 4, SELL, STOP, GTC, 0, PX - 3000, QTY, 0, 0, 23)
    assert code == Reject.OK
    model.set_kill(0, 0, KillMode.HALT)
    model.set_price(0, PX - 3000, 0, 0, 24)
    assert _of(model.drain_events(), EventType.SEND_ORDER) == []
    o = model.order(alone)
    assert (o["status"], o["reason"]) == (OrderStatus.REJECTED, Reject.GLOBAL_HALT)


def test_a_fired_stop_that_would_trade_with_an_own_resting_order_is_refused(model):
    _, tp, sl = _long_bracket(model)
    far = model.submit(0, 1, 0, 8, BUY, LIMIT, GTC, PX - 5000, 0, 50_000, 0, 0, 14)[1]
    model.on_ack(far, 15)
    model.drain_events()
    _fire_stop(model, sl, tp)
    model.on_canceled(tp, 21)  # an own bid far under the market blocks nothing
    assert _of(model.drain_events(), EventType.SEND_ORDER) == [sl]
    # a second pair, with an own bid where the stop fires
    _, tp, sl = _long_bracket(model, 11)
    code, bid = model.submit(0, 1, 0, 9, BUY, LIMIT, GTC, PX - 1000, 0, 50_000, 0, 0, 14)
    assert code == Reject.OK
    model.on_ack(bid, 15)
    model.set_price(0, PX, 0, 0, 16)
    model.drain_events()
    _fire_stop(model, sl, tp)
    model.on_canceled(tp, 22)
    ev = model.drain_events()
    assert _of(ev, EventType.SEND_ORDER) == []
    o = model.order(sl)
    assert (o["status"], o["reason"]) == (OrderStatus.REJECTED, Reject.SELF_TRADE)
    # the position is left without its stop: said loudly, and marked
    alerts = [e for e in ev if e[0] == EventType.ALERT and e[1] == Alert.PROTECTION_REFUSED]
    assert [(e[5], e[6], e[7]) for e in alerts] == [(sl, Reject.SELF_TRADE,
                                                     ProtectAction.NONE)]
    assert model.position(0, 0)["unprotected"] == 1
