"""ccxt's own async binance client, unchanged but for its URLs, against the simulator."""

from __future__ import annotations

import asyncio

import ccxt
import pytest
from sim_fixtures import SimHandle, ccxt_binance, sim, sim_process  # noqa: F401

from gateways.sim import constants as c

pytestmark = pytest.mark.timeout(60)


def seed_asks(h: SimHandle) -> None:
    """Other participants rest asks and bids around 50000 so market orders have liquidity."""
    assert h.server is not None
    ex = h.server.ex
    sim_acct = ex.sim_account
    for i in range(ex.ledger.n_assets):
        ex.ledger.deposit(sim_acct, i, 10**16)
    for k in range(5):
        ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC,
                      c.to_fixed("50000") + k * c.SCALE, c.to_fixed("0.5"))
        ex.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_LIMIT, c.TIF_GTC,
                      c.to_fixed("49990") - k * c.SCALE, c.to_fixed("0.5"))


async def test_ccxt_full_cycle(sim: SimHandle) -> None:  # noqa: F811
    seed_asks(sim)
    ex = ccxt_binance(sim)
    try:
        markets = await ex.load_markets()
        assert "BTC/USDT" in markets and "ETH/USDT" in markets
        m = markets["BTC/USDT"]
        assert m["spot"] and m["precision"]["price"] == 0.01 and m["limits"]["amount"]["min"]

        book = await ex.fetch_order_book("BTC/USDT", limit=5)
        assert book["asks"][0] == [50000.0, 0.5] and book["bids"][0] == [49990.0, 0.5]
        assert book["nonce"] > 0

        bal = await ex.fetch_balance()
        assert bal["USDT"]["free"] == 1_000_000 and bal["BTC"]["free"] == 10

        # limit buy resting below the market
        o = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
        assert o["status"] == "open" and o["id"]
        got = await ex.fetch_order(o["id"], "BTC/USDT")
        assert got["status"] == "open" and got["price"] == 49000 and got["amount"] == 0.01
        opens = await ex.fetch_open_orders("BTC/USDT")
        assert [x["id"] for x in opens] == [o["id"]]
        bal = await ex.fetch_balance()
        assert bal["USDT"]["used"] == pytest.approx(490.0)

        canceled = await ex.cancel_order(o["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "canceled"
        assert await ex.fetch_open_orders("BTC/USDT") == []

        # market buy sweeps the seeded asks
        mb = await ex.create_order("BTC/USDT", "market", "buy", 0.6)
        assert mb["status"] == "closed" and mb["filled"] == pytest.approx(0.6)
        assert mb["average"] == pytest.approx((0.5 * 50000 + 0.1 * 50001) / 0.6)
        assert len(mb["trades"]) == 2 and mb["fee"]["currency"] == "BTC"

        # market sell into the bids
        ms = await ex.create_order("BTC/USDT", "market", "sell", 0.2)
        assert ms["status"] == "closed" and ms["price"] == 49990

        # limit sell that crosses: fills at once as taker
        ls = await ex.create_order("BTC/USDT", "limit", "sell", 0.1, 49980)
        assert ls["status"] == "closed" and ls["filled"] == pytest.approx(0.1)

        trades = await ex.fetch_my_trades("BTC/USDT")
        assert len(trades) == 4
        assert {t["side"] for t in trades} == {"buy", "sell"}
        assert all(t["takerOrMaker"] == "taker" for t in trades)

        closed = await ex.fetch_orders("BTC/USDT")
        assert len(closed) == 4

        bal = await ex.fetch_balance()
        fee = 0.6 * 0.001
        assert bal["BTC"]["total"] == pytest.approx(10 + 0.6 - fee - 0.3)
    finally:
        await ex.close()


async def test_ccxt_errors_map_to_ccxt_exceptions(sim: SimHandle) -> None:  # noqa: F811
    ex = ccxt_binance(sim)
    try:
        await ex.load_markets()
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order("BTC/USDT", "limit", "buy", 100, 49000)
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order("999999", "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order("999999", "BTC/USDT")
        with pytest.raises(ccxt.BadRequest):  # -1013 NOTIONAL filter
            await ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 49000)
        bad = ccxt_binance(sim)
        bad.secret = "wrong"
        try:
            with pytest.raises(ccxt.AuthenticationError):
                await bad.fetch_balance()
        finally:
            await bad.close()
        assert sim.server is not None
        sim.server.fault(rate_limit=1)
        with pytest.raises(ccxt.DDoSProtection):
            await ex.fetch_balance()
        await ex.fetch_balance()  # next one passes again
    finally:
        await ex.close()


async def test_ccxt_against_subprocess(sim_process: SimHandle) -> None:  # noqa: F811
    ex = ccxt_binance(sim_process)
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT")
        for _ in range(100):  # the synthetic market may be between ticks
            if book["bids"] and book["asks"]:
                break
            await asyncio.sleep(0.05)
            book = await ex.fetch_order_book("BTC/USDT")
        bid, ask = book["bids"][0][0], book["asks"][0][0]
        assert bid < ask
        o = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid - 50, 2))
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "open"
        await ex.cancel_order(o["id"], "BTC/USDT")
        mkt = await ex.create_order("BTC/USDT", "market", "buy", 0.001)
        assert mkt["status"] == "closed"
    finally:
        await ex.close()
