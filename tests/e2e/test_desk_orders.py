"""Every order type of the desk at the venues, under `oms run` on examples/desk.toml.

Through the Python client by names: a bracket with volatility TP/SL (alice's signal), brackets
with percent TP/SL (bob's signals, limit entries), a trailing stop, a GTD and a DAY order, an
amend at each exchange (cancelReplace through the Binance gateway, edit_order through ccxt),
an OCO. Then the market is driven (the simulator's admin call moves a mid): BTCUSDT down 3 %
(stop-losses and the trailing stop fire), ETHUSDT up 4 % (take-profits and the OCO's limit
leg fill).

Asserted from the simulators' own per-account records: every protective order that
triggered is FILLED at the venue and booked exactly once in the engine (its FILL events) and
in DuckDB; its partner is canceled at the venue; the GTD order expired and left the venue;
an amended order rests at the venue at its new price; the DAY order rests until canceled;
positions, balances and fees (by asset: buyers pay in the base) equal the venues'.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from desk import PREFIX, Desk, booked_fees, booked_fills, foreign_orders, wait_until

from bindings.wire.spec import MsgType
from oms_core.enums import OrderStatus, OrderType, Reject, Side, TimeInForce

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

S = OrderStatus


def _price(desk: Desk, symbol: str, factor: str, side: str = "bidPrice") -> str:
    """The venue's best bid (or ask) of ``symbol`` times ``factor``, on the tick."""
    i = desk.cfg.instruments[symbol]
    v = next(v for (ex, _c), v in desk.venues.items() if ex == i.exchange)
    px = Decimal(v.book_ticker(i.exchange_symbol)[side]) * Decimal(factor)
    tick = Decimal(i.tick).scaleb(-i.price_precision)
    return str(px.quantize(tick, rounding="ROUND_DOWN"))


def _venue_order(desk: Desk, who: str, exchange: str, order_id: int) -> dict[str, Any] | None:
    """The venue's last order of engine order ``order_id`` (an amend may have replaced it)."""
    found = [o for o in desk.venues[(exchange, who)].orders()
             if o["clientOrderId"] == f"{PREFIX}{order_id}"]
    return max(found, key=lambda o: o["orderId"]) if found else None


def _signal(desk: Desk, who: str, symbol: str) -> tuple[int, ...]:
    """A long signal for ``who`` until it is accepted (volatility needs bars); its orders."""
    answer: Any = None

    def accepted() -> bool:
        nonlocal answer
        res = desk.c.signal(symbol, 1, account=who, strategy=desk.strategy_of[symbol])
        answer = res[who]
        return bool(answer.accepted and answer.order_ids)

    assert wait_until(accepted, 60, 1.0), answer
    return tuple(answer.order_ids)


def test_every_order_type_reaches_the_venues_and_protective_orders_fill(
        tmp_path: Path) -> None:
    desk = Desk(tmp_path, bar_interval_s=1)
    run = desk.start()
    c = desk.c
    orders: dict[int, str] = {}  # engine order id -> client
    exchange_of: dict[int, str] = {}

    def sent(who: str, symbol: str, r: Any) -> int:
        assert r.ok, (who, symbol, r)
        for oid in (r.order_id, getattr(r, "leg2_order_id", 0), getattr(r, "leg3_order_id", 0)):
            if oid:
                orders[oid] = who
                exchange_of[oid] = desk.cfg.instruments[symbol].exchange
        return int(r.order_id)

    try:
        # prices in; bob holds BTC for a trailing stop, alice ETH for an OCO
        sent("bob", "BTCUSDT", desk.buy_sell("bob", "BTCUSDT", Side.BUY, "0.004"))
        sent("alice", "ETHUSDT", desk.buy_sell("alice", "ETHUSDT", Side.BUY, "0.2"))
        # brackets from signals: alice's volatility TP/SL (market entry), bob's percent TP/SL
        # (limit entry two ticks inside), on BTCUSDT and ETHUSDT
        brackets: dict[tuple[str, str], tuple[int, ...]] = {}
        for who in ("alice", "bob"):
            for symbol in ("BTCUSDT", "ETHUSDT"):
                ids = _signal(desk, who, symbol)
                assert len(ids) == 3, (who, symbol, ids)  # entry, take-profit, stop-loss
                brackets[(who, symbol)] = ids
                for oid in ids:
                    orders[oid] = who
                    exchange_of[oid] = "spot_a"
        # a trailing stop under bob's BTC, an OCO around alice's ETH
        trail = sent("bob", "BTCUSDT", c.submit(
            "BTCUSDT", Side.SELL, "0.004", order_type=OrderType.TRAILING_STOP,
            trail_offset="250", account="bob", strategy="trend"))
        oco = c.oco("ETHUSDT", Side.SELL, "0.2", a_type=OrderType.LIMIT,
                    a_price=_price(desk, "ETHUSDT", "1.02", "askPrice"),
                    b_type=OrderType.STOP_MARKET,
                    b_trigger_price=_price(desk, "ETHUSDT", "0.97"),
                    account="alice", strategy="trend")
        sent("alice", "ETHUSDT", oco)
        oco_limit, oco_stop = oco.order_id, oco.leg2_order_id
        # GTD (gone in 4 s) and DAY limit buys far from the market
        gtd = sent("alice", "BTCUSDT", c.submit(
            "BTCUSDT", Side.BUY, "0.001", _price(desk, "BTCUSDT", "0.96"), tif=TimeInForce.GTD,
            expire_ns=time.time_ns() + 4 * 10**9, account="alice", strategy="trend"))
        day = sent("alice", "ETHUSDT", c.submit(
            "ETHUSDT", Side.BUY, "0.01", _price(desk, "ETHUSDT", "0.95"), tif=TimeInForce.DAY,
            account="alice", strategy="trend"))
        # amends: at spot_a (Binance cancelReplace) and at spot_b (ccxt)
        amended = {}
        for who, symbol in (("alice", "BTCUSDT"), ("carol", "SOLUSDT")):
            qty = "0.001" if symbol == "BTCUSDT" else "0.1"
            oid = sent(who, symbol, c.submit(symbol, Side.BUY, qty,
                                             _price(desk, symbol, "0.96"), account=who,
                                             strategy=desk.strategy_of[symbol]))
            assert wait_until(lambda o=oid, w=who, s=symbol: _venue_order(
                desk, w, desk.cfg.instruments[s].exchange, o), 20), (who, symbol)
            new_price = _price(desk, symbol, "0.955")
            r = c.replace(oid, instrument=symbol, price=new_price, account=who)
            assert r.ok, (who, symbol, r)
            amended[oid] = (who, symbol, new_price)

        def rests_at_new_price() -> bool:
            for oid, (who, symbol, px) in amended.items():
                i = desk.cfg.instruments[symbol]
                o = _venue_order(desk, who, i.exchange, oid)
                if o is None or o["status"] != "NEW" or Decimal(o["price"]) != Decimal(px):
                    return False
            return True

        assert wait_until(rests_at_new_price, 30), {
            oid: _venue_order(desk, w, desk.cfg.instruments[s].exchange, oid)
            for oid, (w, s, _p) in amended.items()}
        for oid, (who, _s, px) in amended.items():
            row = desk.engine_orders(who)[oid]
            assert row.status == S.NEW and desk.c.decimal_price(row.instrument, row.price) == \
                Decimal(px)
        # the GTD order expires in the engine and leaves the venue
        assert wait_until(lambda: desk.engine_orders("alice")[gtd].status == S.EXPIRED, 20)
        assert wait_until(lambda: (_venue_order(desk, "alice", "spot_a", gtd) or {}).get(
            "status") == "CANCELED", 20), _venue_order(desk, "alice", "spot_a", gtd)
        # every entry in before the market is driven
        entries = [ids[0] for ids in brackets.values()]
        assert wait_until(lambda: all(
            desk.engine_orders(orders[e])[e].status == S.FILLED for e in entries), 60), [
            (e, S(desk.engine_orders(orders[e])[e].status).name) for e in entries]
        # drive: BTCUSDT down 3 %, ETHUSDT up 4 %
        a = desk.venues[("spot_a", "alice")]
        for symbol, factor in (("BTCUSDT", "0.97"), ("ETHUSDT", "1.04")):
            mid = _price(desk, symbol, factor)
            a.admin("mid", symbol=symbol, price=mid)
        protective = [oid for ids in brackets.values() for oid in ids[1:]]
        protective += [trail, oco_limit, oco_stop]

        def exited() -> list[tuple[int, str]]:
            """Brackets, the trailing stop and the OCO not ended yet."""
            out = []
            for oid in protective:
                st = desk.engine_orders(orders[oid])[oid].status
                if st not in (S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED):
                    out.append((oid, S(st).name))
            return out

        assert wait_until(lambda: not exited(), 60), exited()
        # each bracket: one child FILLED, the other CANCELED; what fired was FILLED at the
        # venue, and its partner is canceled there (or never went there: held in the engine)
        fired: list[int] = []
        for (who, symbol), (_entry, tp, sl) in brackets.items():
            st = {oid: desk.engine_orders(who)[oid].status for oid in (tp, sl)}
            assert sorted(st.values()) == [S.FILLED, S.CANCELED], (who, symbol, st)
            fired += [oid for oid, s in st.items() if s == S.FILLED]
        # bob's BTC stop-loss (1 % under) and trailing stop (250) fired on the fall, and the
        # percent take-profit of his ETH on the rise; the OCO's limit leg filled
        assert brackets[("bob", "BTCUSDT")][2] in fired
        assert brackets[("bob", "ETHUSDT")][1] in fired
        trail_row = desk.engine_orders("bob")[trail]
        assert trail_row.status == S.FILLED, S(trail_row.status).name
        oco_st = {o: desk.engine_orders("alice")[o].status for o in (oco_limit, oco_stop)}
        assert oco_st == {oco_limit: S.FILLED, oco_stop: S.CANCELED}, oco_st
        fired += [trail, oco_limit]
        for oid in fired:
            v = _venue_order(desk, orders[oid], exchange_of[oid], oid)
            assert v is not None and v["status"] == "FILLED", (oid, v)
        for oid in protective:
            if oid in fired:
                continue
            v = _venue_order(desk, orders[oid], exchange_of[oid], oid)
            assert v is None or v["status"] in ("CANCELED", "EXPIRED"), (oid, v)
        # the DAY order still rests at the venue (GTC there; the engine ends it with the day)
        assert desk.engine_orders("alice")[day].status == S.NEW
        assert desk.engine_orders("alice")[day].tif == TimeInForce.DAY
        assert (_venue_order(desk, "alice", "spot_a", day) or {}).get("status") == "NEW"
        for oid in [day, *amended]:
            r = c.cancel(oid, account=orders[oid])
            assert r.ok or r.code == Reject.CANCEL_PENDING, r
        assert desk.settle(60, lambda: desk.not_final(orders)) == []
        # booked exactly once: the engine's FILL events and the venues' trades, one for one
        fills = Counter((e.order_id, e.trade_id) for e in desk.events()
                        if getattr(e, "msg_type", None) == MsgType.FILL)
        venue_fills = desk.venue_fills()
        venue = Counter({(oid, tid): n for (_w, oid, tid), n in venue_fills.items()})
        for oid in fired:
            mine = {k: n for k, n in venue.items() if k[0] == oid}
            assert mine and set(mine.values()) == {1}, (oid, mine)
            assert {k: n for k, n in fills.items() if k[0] == oid} == mine, oid
        venue_fees = desk.venue_fees()
        venue_orders = desk.venue_orders()
        assert desk.stop() == 0
    finally:
        desk.stop()
        run.kill()
    ids = {n: cc.id for n, cc in desk.cfg.clients.items()}
    assert booked_fills(run.database) == Counter(
        {(ids[w], oid, tid): n for (w, oid, tid), n in venue_fills.items()})
    assert booked_fees(run.database) == venue_fees
    # no order ever reached another client's venue account
    assert foreign_orders(desk, venue_orders) == []
