"""The Python client against the real engine process on the full TOML (issue 10 items 13
and 14): names and decimals in and out, one answer per client for a signal, brackets and
OCOs, RESUME after STRATEGY_OFF, cancel on disconnect set in the TOML."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq
from desk_engine import DeskEngine, Venue, is_new_order, until, write_desk

from bindings.client import (
    Ack,
    AsyncOmsClient,
    ClientAnswer,
    OmsClient,
    Rejected,
    SignalResult,
)
from bindings.wire import records as wire
from bindings.wire.spec import MsgType, Scope, SignalMode
from oms_core.engine.process import ROOT, die_with_parent
from oms_core.enums import OrderStatus, OrderType, Reject, Side

pytestmark = pytest.mark.timeout(90)

BID, ASK = 4_999_900, 5_000_100  # BTCUSDT 49999.00 / 50001.00


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Path, Venue]]:
    cfg = write_desk(tmp_path, ("alice", "bob", "carol"))
    with DeskEngine(cfg) as e:
        venue = Venue(tmp_path)
        try:
            _quote_until_heard(tmp_path, venue)
            yield cfg, venue
        finally:
            venue.close()
        assert e.stop() == 0


def _quote_until_heard(d: Path, venue: Venue) -> None:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"ipc://{d}/pub")
    try:
        def heard() -> bool:
            venue.quote(0, BID, ASK)  # BTCUSDT is instrument 0 of a new journal
            while sub.poll(20):
                if any(r.msg_type == MsgType.GW_MARKET_DATA for r in
                       wire.decode_frame(sub.recv())):
                    return True
            return False

        until(heard, 10, "market data relayed by the engine")
    finally:
        sub.close()


def test_signal_by_names_answers_one_per_client(desk: tuple[Path, Venue]) -> None:
    cfg, venue = desk
    with OmsClient(config=cfg, strategy="trend", timeout=5) as c:
        res = c.signal("BTCUSDT", 1)
        assert isinstance(res, SignalResult) and res.ok
        assert [a.client for a in res] == ["alice", "bob", "carol"]
        alice, bob, carol = res["alice"], res["bob"], res["carol"]
        assert isinstance(alice, ClientAnswer) and alice.accepted and len(alice.order_ids) == 1
        assert carol.accepted and carol.order_ids and carol.account == 2
        assert not bob.accepted and bob.code == Reject.NOT_ENOUGH_BARS
        assert bob.reason == "not enough bars to estimate volatility"
        assert str(bob) == "bob: rejected NOT_ENOUGH_BARS (not enough bars to estimate " \
                           "volatility)"
        # the orders reached the venue at the clients' own sizes (0.01 and 0.02 BTC)
        sent = {}
        for _ in range(2):
            o = venue.recv(is_new_order)
            sent[o.order_id] = o
        assert {o.order_id: o.quantity for o in sent.values()} == {
            alice.order_ids[0]: 100, carol.order_ids[0]: 200}
        # a signal for one client, by name, with a decimal target quantity
        res = c.signal("BTCUSDT", "-0.05", mode=SignalMode.TARGET_QTY, account="carol")
        assert [(a.client, a.accepted) for a in res] == [("carol", True)]
        assert venue.recv(is_new_order).quantity == 500
        # a target weight as raw parts per million and as the decimal fraction: 1% of carol's
        # 70,000 USDT at the signal's price 50,000 is 0.014 BTC, both ways
        for weight in (10_000, "0.01"):
            res = c.signal("BTCUSDT", weight, mode=SignalMode.TARGET_WEIGHT, price="50000.00",
                           account="carol")
            assert [(a.client, a.accepted) for a in res] == [("carol", True)], res
            o = venue.recv(is_new_order)
            assert (o.side, o.quantity) == (Side.BUY, 140), weight
        # a signal refused as a whole says why, with no per-client answers
        res = c.signal("BTCUSDT", 1, strategy=9)
        assert not res.ok and isinstance(res.reply, Rejected) and len(res) == 0


def test_decimals_in_and_out(desk: tuple[Path, Venue]) -> None:
    cfg, venue = desk
    with OmsClient(config=cfg, client="alice", strategy="trend", timeout=5) as c:
        assert c.hello(["alice"]).ok
        ack = c.submit("BTCUSDT", Side.BUY, "0.0300", "49990.50")
        assert isinstance(ack, Ack) and ack.ok, ack
        order = venue.recv(is_new_order)
        assert (order.quantity, order.price, order.account) == (300, 4_999_050, 0)
        venue.fill(order, 100, 4_999_050)
        row = until(lambda: [r for r in c.positions(instrument="BTCUSDT").rows if r.quantity],
                    10, "the fill booked")[0]
        assert c.decimal_qty("BTCUSDT", row.quantity) == Decimal("0.01")
        (o,) = c.orders(instrument="BTCUSDT").rows
        assert c.decimal_price("BTCUSDT", o.price) == Decimal("49990.50")
        assert c.decimal_qty("BTCUSDT", o.leaves) == Decimal("0.02")
        with pytest.raises(ValueError, match="more than 2 decimals"):
            c.submit("BTCUSDT", Side.BUY, "0.01", "49990.505")
        with pytest.raises(KeyError, match="unknown instrument 'XRPUSDT'"):
            c.submit("XRPUSDT", Side.BUY, "1", "1")
        # the bracket and OCO paths of the real engine, by names and decimals
        br = c.bracket("ETHUSDT", Side.BUY, "0.5", entry_price="0", tp_price="3300.00",
                       sl_trigger_price="2900.00")
        # ETHUSDT has no reference price yet: the engine's risk check refuses a market entry
        assert isinstance(br, Rejected) and br.code == Reject.NO_REFERENCE_PRICE
        br = c.bracket("BTCUSDT", Side.BUY, "0.01", entry_price="49000.00",
                       tp_price="52000.00", sl_trigger_price="48000.00")
        assert br.ok and len({br.order_id, br.leg2_order_id, br.leg3_order_id}) == 3
        oco = c.oco("BTCUSDT", Side.SELL, "0.01", a_type=OrderType.LIMIT, a_price="51000.00",
                    b_type=OrderType.STOP_MARKET, b_trigger_price="48500.00")
        assert oco.ok and oco.leg2_order_id
        # outside the collar (10% around the reference 50000.00)
        far = c.submit("BTCUSDT", Side.BUY, "0.01", "60000.00")
        assert isinstance(far, Rejected) and far.code == Reject.PRICE_COLLAR
        assert str(far).startswith("PRICE_COLLAR (price outside the collar")
        assert c.cancel(br.order_id).ok
        st = {r.order_id: r.status for r in c.orders(open_only=False).rows}
        assert st[br.order_id] in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)


def test_resume_after_strategy_off_lets_signals_through(desk: tuple[Path, Venue]) -> None:
    cfg, _venue = desk
    with OmsClient(config=cfg, strategy="trend", timeout=5) as c:
        assert c.strategy_enabled("alice", "trend", False).ok
        off = c.signal("BTCUSDT", 1, account="alice")
        assert isinstance(off.reply, Rejected) and off.reply.code == Reject.STRATEGY_HALTED
        assert c.resume(Scope.STRATEGY, strategy="trend").ok
        on = c.signal("BTCUSDT", 1, account="alice")
        assert on.ok and on["alice"].accepted and on["alice"].order_ids


def test_cancel_on_disconnect_set_in_the_toml(desk: tuple[Path, Venue]) -> None:
    cfg, venue = desk
    c = OmsClient(config=cfg, strategy="trend", timeout=5)
    assert c.hello(["alice", "carol"], heartbeat_ms=100).ok
    a = c.submit("BTCUSDT", Side.BUY, "0.01", "49000.00", account="alice")
    b = c.submit("BTCUSDT", Side.BUY, "0.01", "49000.00", account="carol")
    assert a.ok and b.ok
    for _ in range(2):
        venue.recv(is_new_order)
    c.close()  # silent from now on: alice's orders are canceled, carol's are not
    gc = venue.recv(lambda r: r.msg_type == MsgType.GW_CANCEL, 5.0)
    assert gc.order_id == a.order_id
    with pytest.raises(TimeoutError):
        venue.recv(lambda r: r.msg_type == MsgType.GW_CANCEL, 0.5)


def test_publisher_example_runs_against_the_engine(desk: tuple[Path, Venue]) -> None:
    cfg, venue = desk
    pub = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "publisher.py"), "--config", str(cfg),
         "--via", "direct", "--interval", "0.1", "--fast", "2", "--slow", "3",
         "--duration", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=die_with_parent)
    try:
        prices = itertools.count(5_000_100, 100)  # a rising market: the fast mean crosses up

        def rising_until_ordered() -> Any:
            px = next(prices)
            venue.quote(0, px - 100, px + 100)
            try:
                return venue.recv(is_new_order, 0.05)
            except TimeoutError:
                return None

        order = until(rising_until_ordered, 20, "an order from the publisher's signal")
        assert order.side == Side.BUY
    finally:
        pub.terminate()
        out, _ = pub.communicate(timeout=10)
    assert pub.returncode == 0, out
    assert "trend BTCUSDT -> 1: ok" in out
    assert "    alice: accepted, orders [" in out
    assert ("    bob: rejected NOT_ENOUGH_BARS (not enough bars to estimate volatility)"
            in out)


def test_async_client_signal_by_names(desk: tuple[Path, Venue]) -> None:
    cfg, _venue = desk

    async def main() -> SignalResult:
        async with AsyncOmsClient(config=cfg, strategy="trend", timeout=5) as c:
            both = await asyncio.gather(c.signal("BTCUSDT", 1), c.signal("ETHUSDT", 1))
            return both[0]

    res = asyncio.run(main())
    assert [(a.client, a.accepted, a.code) for a in res] == [
        ("alice", True, Reject.OK), ("bob", False, Reject.NOT_ENOUGH_BARS),
        ("carol", True, Reject.OK)]
