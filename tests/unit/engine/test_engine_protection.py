"""Bracket protection and fees through the engine loop (real core, real loop, wire frames in
and out, no sockets): the case of issue 10 items 4 and 7.

A BTC signal is planned on the last trade (50060.00) and its market entry fills at 50012.67.
The protective children must sit on their sides of the fill; a child the venue refuses raises
RISK_ALERT, marks the position unprotected and, with ``protect_reject = "flatten"``, closes it.
A fee the venue charges in the base asset is booked in that asset and counted at the fill price.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, MsgType
from oms_core.demo import write_demo_config
from oms_core.engine.config import build_core, load_engine_config
from oms_core.engine.server import Engine
from oms_core.enums import Alert, Hold, OrderStatus, OrderType, ProtectAction, Side

ALL = (1 << 64) - 1
LAST, FILL = 5_006_000, 5_001_267  # 50060.00 (the last trade) and 50012.67 (the entry fill)
QTY = 500  # 0.05 BTC at quantity precision 4

ALICE_ORDERS = """[clients.alice.orders]
direction = "long_only"
sizing = "fixed"
fixed_qty = { BTCUSDT = "0.05", ETHUSDT = "1" }
take_profit = "pct"
take_profit_value = "0.001"
stop_loss = "pct"
stop_loss_value = "0.0005"
"""


def _engine(tmp_path: Path, extra: str = "") -> tuple[Engine, int, int]:
    path = write_demo_config(tmp_path)
    text = path.read_text()
    old = ('[clients.alice.orders]\ndirection = "long_only"\nsizing = "fixed"\n'
           'fixed_qty = { BTCUSDT = "0.05", ETHUSDT = "1" }\n')
    assert old in text
    text = text.replace(old, ALICE_ORDERS + extra)
    # the venue holds the stops (native_stops): a refused stop is the venue's answer
    text = text.replace('[instruments.BTCUSDT]\n', '[instruments.BTCUSDT]\nnative_stops = true\n')
    path.write_text(text)
    cfg = load_engine_config(path)
    engine = Engine(build_core(cfg), config=cfg)
    return engine, cfg.oms.instruments["BTCUSDT"].id, cfg.oms.strategies["trend"].id


def _batch(engine: Engine, frame: bytes, gateway: bool = False) -> tuple[list, list]:
    """Run one frame through the loop: (records published, GW_* records to the gateways)."""
    lp = engine.loop
    lp.begin(3, ALL, ALL, False)
    ts = time.time_ns()
    (lp.on_gateway_frame if gateway else lp.on_client_frame)(frame, ts)
    gw = [r for _, frames in lp.gateway_frames() for f in frames for r in wire.decode_frame(f)]
    lp.commit()
    out = [r for f in lp.reply.frames() for r in wire.decode_frame(f)]
    return out, gw


def _report(order_id: int, exec_type: ExecType, **fields) -> bytes:
    return wire.encode("GW_EXEC_REPORT", 0, 1, 0, order_id=order_id, exec_type=exec_type,
                       **fields)


def _enter(engine: Engine, btc: int, trend: int, fee: int = 0, fee_asset: int = 0):
    """Signal alice long BTC with the last trade at LAST; fill the market entry at FILL.
    Return the GW_NEW_ORDER records sent when the entry filled (its children)."""
    engine.core.set_price(btc, LAST, LAST - 1, LAST + 1, time.time_ns())
    sig = wire.encode("SIGNAL", 1, 1, 0, value=1, price=0, account=0, strategy=trend,
                      instrument=btc, mode=1)
    _, gw = _batch(engine, sig)
    (entry,) = [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER]
    assert entry.order_type == OrderType.MARKET and entry.quantity == QTY
    _batch(engine, _report(entry.order_id, ExecType.ACK, exch_order_id=1), gateway=True)
    out, gw = _batch(engine, _report(entry.order_id, ExecType.FILL, trade_id=77,
                                     last_qty=QTY, last_price=FILL, fee=fee,
                                     fee_asset=fee_asset, cum_qty=QTY, liquidity=2),
                     gateway=True)
    return [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER], out


def test_children_sit_on_their_sides_of_the_entry_fill(tmp_path: Path) -> None:
    engine, btc, trend = _engine(tmp_path)
    children, _ = _enter(engine, btc, trend)
    tp = next(r for r in children if r.order_type == OrderType.LIMIT)
    sl = next(r for r in children if r.order_type == OrderType.STOP_MARKET)
    assert tp.side == sl.side == Side.SELL and tp.quantity == sl.quantity == QTY
    # the planner's distances (0.1% and 0.05% of 50060.00, rounded up to the tick) are kept,
    # measured from the fill: before, both were measured from the last trade and the stop's
    # trigger (50034.97) sat above the fill
    assert sl.trigger_price < FILL < tp.price
    assert (tp.price, sl.trigger_price) == (FILL + 5006, FILL - 2503)


def test_arrival_anchor_is_never_on_the_wrong_side_of_the_fill(tmp_path: Path) -> None:
    engine, btc, trend = _engine(tmp_path, 'protect_anchor = "arrival_mid"\n')
    children, _ = _enter(engine, btc, trend)
    tp = next(r for r in children if r.order_type == OrderType.LIMIT)
    sl = next(r for r in children if r.order_type == OrderType.STOP_MARKET)
    # the take-profit keeps its place from the arrival price; the stop, which would sit above
    # the fill there, is measured from the fill instead
    assert tp.price == LAST + 5006 and sl.trigger_price == FILL - 2503


def _refuse_stop(engine: Engine, btc: int, trend: int):
    children, _ = _enter(engine, btc, trend)
    tp = next(r for r in children if r.order_type == OrderType.LIMIT)
    sl = next(r for r in children if r.order_type == OrderType.STOP_MARKET)
    _batch(engine, _report(tp.order_id, ExecType.ACK, exch_order_id=2), gateway=True)
    out, gw = _batch(engine, _report(sl.order_id, ExecType.REJECT, exch_code=-2010),
                     gateway=True)
    return tp, sl, out, gw


def test_refused_stop_alerts_marks_unprotected_and_flattens(tmp_path: Path) -> None:
    engine, btc, trend = _engine(tmp_path, 'protect_reject = "flatten"\n')
    tp, sl, out, gw = _refuse_stop(engine, btc, trend)
    alerts = [r for r in out if r.msg_type == MsgType.RISK_ALERT]
    assert [(a.alert, a.order_id, a.b) for a in alerts] == [
        (Alert.PROTECTION_REFUSED, sl.order_id, ProtectAction.FLATTEN)]
    positions = [r for r in out if r.msg_type == MsgType.POSITION_UPDATE]
    assert positions and positions[-1].unprotected == 1 and positions[-1].quantity == QTY
    # the take-profit partner is canceled and the protected quantity goes out at market
    assert [r.order_id for r in gw if r.msg_type == MsgType.GW_CANCEL] == [tp.order_id]
    (flat,) = [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER]
    assert (flat.order_type, flat.side, flat.quantity) == (OrderType.MARKET, Side.SELL, QTY)
    # the status query shows the mark until the position is flat
    q = wire.encode("QUERY", 9, 9, 0, kind=4, account=ANY_ID, strategy=ANY_ID,
                    instrument=ANY_ID)
    rows = [r for r in _batch(engine, q)[0] if r.msg_type == MsgType.POSITION_UPDATE]
    assert [(r.instrument, r.unprotected) for r in rows] == [(btc, 1)]
    out, _ = _batch(engine, _report(flat.order_id, ExecType.FILL, trade_id=78, last_qty=QTY,
                                    last_price=FILL - 100, cum_qty=QTY, liquidity=2),
                    gateway=True)
    last = [r for r in out if r.msg_type == MsgType.POSITION_UPDATE][-1]
    assert last.quantity == 0 and last.unprotected == 0


def test_refused_stop_is_retried_engine_held(tmp_path: Path) -> None:
    engine, btc, trend = _engine(tmp_path)  # protect_reject = "retry" (the default)
    tp, sl, out, gw = _refuse_stop(engine, btc, trend)
    alerts = [r for r in out if r.msg_type == MsgType.RISK_ALERT]
    assert [(a.alert, a.b) for a in alerts] == [(Alert.PROTECTION_REFUSED, ProtectAction.RETRY)]
    # the retry is held by the engine (no venue order, no cancel of the partner) and pairs with
    # the take-profit again: the position stays protected
    assert not [r for r in gw if r.msg_type in (MsgType.GW_NEW_ORDER, MsgType.GW_CANCEL)]
    core = engine.core
    retry = core.order(core.order(tp.order_id)["linked_id"])
    assert retry["trigger"] == sl.trigger_price and retry["status"] == 1  # PENDING_NEW, held
    assert core.position(0, btc)["unprotected"] == 0
    # the market falls through the stop: the take-profit resting at the venue is canceled
    # first (both must never fill), then the stop goes out at market
    out, gw = _batch(engine, wire.encode("GW_MARKET_DATA", 0, 1, 0, instrument=btc,
                                         bid=FILL - 3000, ask=FILL - 2990, last=FILL - 3000),
                     gateway=True)
    assert [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER] == []
    # the client is told the stop fired and waits (ORDER_UPDATE hold FIRED)
    assert [(r.status, r.hold) for r in out if r.msg_type == MsgType.ORDER_UPDATE
            and r.order_id == retry["order_id"]] == [(OrderStatus.PENDING_NEW, Hold.FIRED)]
    assert [r.order_id for r in gw if r.msg_type == MsgType.GW_CANCEL] == [tp.order_id]
    _, gw = _batch(engine, _report(tp.order_id, ExecType.CANCELED), gateway=True)
    sent = [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER]
    assert [(r.order_id, r.quantity) for r in sent] == [(retry["order_id"], QTY)]


@pytest.mark.parametrize("fee_asset_name", ["BTC", "ETH"])
def test_fee_in_another_asset_is_booked_there_and_counted_at_its_value(
        tmp_path: Path, fee_asset_name: str) -> None:
    engine, btc, trend = _engine(tmp_path)
    cfg = engine.cfg.oms
    usdt, asset = cfg.assets["USDT"].id, cfg.assets[fee_asset_name].id
    eth = cfg.instruments["ETHUSDT"].id
    engine.core.set_price(eth, 300_000, 299_990, 300_010, time.time_ns())  # 3000.00
    fee = 50_000  # 0.0005 of the asset (precision 8)
    before = engine.core.balance(0, asset)[0]
    _, out = _enter(engine, btc, trend, fee=fee, fee_asset=asset)
    # booked in the asset the venue charged
    assert engine.core.balance(0, asset)[0] == before - fee
    assert engine.core.asset_position(0, asset) == (QTY * 10**4 if asset == cfg.assets[
        "BTC"].id else 0) - fee
    # counted in fees and P&L at its quote value: 0.0005 BTC x 50012.67, or 0.0005 ETH x 3000
    value = 2_500_633_500 if fee_asset_name == "BTC" else 150_000_000  # USDT, precision 8
    pos = engine.core.position(0, btc)
    assert pos["fees"] == value
    acct = engine.core.account_state(0)
    assert acct["fees"] == value
    assert engine.core.balance(0, usdt)[0] == 100_000 * 10**8  # the quote balance pays no fee
    fills = [r for r in out if r.msg_type == MsgType.FILL]
    assert [(f.fee, f.fee_asset) for f in fills] == [(fee, asset)]


def test_the_live_engine_starts_a_new_trading_day_once_per_utc_day(tmp_path: Path) -> None:
    from oms_core.engine import MemoryJournal

    day = 86_400 * 10**9
    path = write_demo_config(tmp_path)
    cfg = load_engine_config(path)
    journal = MemoryJournal()
    engine = Engine(build_core(cfg), journal=journal, config=cfg)
    engine.writer = None  # no sockets bound: the loop's batch is journaled, nothing sent
    core = engine.core
    t0 = 20_000 * day + 3_600 * 10**9  # 01:00 UTC of some day
    engine.start_day_if_new(t0)
    assert core.day_start_ts() == t0 and journal.committed_inputs == 1
    engine.start_day_if_new(t0 + 3_600 * 10**9)  # same day: nothing
    assert journal.committed_inputs == 1
    before = core.account_state(0)["day_start_pnl"]
    engine.start_day_if_new(t0 + day)  # the next UTC day
    assert core.day_start_ts() == t0 + day and journal.committed_inputs == 2
    assert core.account_state(0)["day_start_pnl"] == before  # flat: same baseline
    # a restarted engine on the same day keeps the day it recovered: no second start
    again = Engine(build_core(cfg), journal=MemoryJournal(), config=cfg)
    again.writer = None
    again.core.restore(core.snapshot())
    again.start_day_if_new(t0 + day + 60 * 10**9)
    assert again.journal.committed_inputs == 0


def test_a_refused_child_already_being_canceled_is_not_replaced(tmp_path: Path) -> None:
    # the take-profit fills, its stop partner is being canceled when the venue answers that it
    # refused the stop: nothing protects anything any more, and nothing needs to
    engine, btc, trend = _engine(tmp_path, 'protect_reject = "flatten"\n')
    children, _ = _enter(engine, btc, trend)
    tp = next(r for r in children if r.order_type == OrderType.LIMIT)
    sl = next(r for r in children if r.order_type == OrderType.STOP_MARKET)
    _batch(engine, _report(tp.order_id, ExecType.ACK, exch_order_id=2), gateway=True)
    _, gw = _batch(engine, _report(tp.order_id, ExecType.FILL, trade_id=78, last_qty=QTY,
                                   last_price=tp.price, cum_qty=QTY, liquidity=1),
                   gateway=True)
    assert [r.order_id for r in gw if r.msg_type == MsgType.GW_CANCEL] == [sl.order_id]
    out, gw = _batch(engine, _report(sl.order_id, ExecType.REJECT, exch_code=-2010),
                     gateway=True)
    assert not [r for r in out if r.msg_type == MsgType.RISK_ALERT]
    assert not [r for r in gw if r.msg_type == MsgType.GW_NEW_ORDER]
    assert engine.core.position(0, btc)["qty"] == 0


def test_refused_stop_alert_and_update_carry_the_venue_code(tmp_path: Path) -> None:
    """The venue's -2010 reaches the client on the refused child's ORDER_UPDATE and as the
    PROTECTION_REFUSED alert's detail a, and stays in the engine's recent alerts."""
    from oms_core.enums import OrderStatus, Reject

    engine, btc, trend = _engine(tmp_path, 'protect_reject = "flatten"\n')
    _tp, sl, out, _gw = _refuse_stop(engine, btc, trend)
    (alert,) = [r for r in out if r.msg_type == MsgType.RISK_ALERT]
    assert alert.a == -2010
    (upd,) = [r for r in out if r.msg_type == MsgType.ORDER_UPDATE
              and r.order_id == sl.order_id]
    assert (upd.status, upd.reason, upd.venue_code) == (
        OrderStatus.REJECTED, Reject.VENUE_REJECTED, -2010)
    q = wire.encode("QUERY", 5, 5, 0, kind=9, account=ANY_ID, strategy=ANY_ID,
                    instrument=ANY_ID, order_id=0)
    rows, _ = _batch(engine, q)
    assert [(r.alert, r.order_id, r.a) for r in rows if r.msg_type == MsgType.RISK_ALERT] == [
        (Alert.PROTECTION_REFUSED, sl.order_id, -2010)]
