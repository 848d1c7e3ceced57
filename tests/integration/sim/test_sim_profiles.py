"""The simulator knobs behind the paper profiles: normally distributed request latency,
fills only at the touch, and an admin call that moves a symbol's mid."""

from __future__ import annotations

import statistics

import aiohttp
import pytest
from sim_fixtures import sim_config, start_sim

from gateways.sim import constants as c
from gateways.sim.server import SimServer

pytestmark = pytest.mark.timeout(60)


def test_normal_latency_draws_around_its_mean_between_floor_and_cap() -> None:
    server = SimServer(sim_config(latency={"dist": "normal", "ms": 20.0, "sd_ms": 5.0,
                                           "min_ms": 8.0, "max_ms": 30.0}))
    draws = [server._latency_s() * 1000 for _ in range(4000)]  # seeded: always the same
    assert min(draws) >= 8.0 and max(draws) <= 30.0
    assert 19.5 < statistics.fmean(draws) < 20.5
    assert 4.0 < statistics.pstdev(draws) < 5.5


def test_unknown_latency_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown latency dist 'gauss'"):
        sim_config(latency={"dist": "gauss"})


def _market_config(**market: object) -> dict[str, object]:
    # ticks only when the test steps the market
    return {"market": {"enabled": True, "tick_ms": 3_600_000, "fill_probability": 1.0,
                       "partial_fill_prob": 0.0, **market}}


async def test_fill_at_touch_hits_only_orders_at_the_best_price_of_their_side() -> None:
    h = await start_sim(sim_config(**_market_config(fill_at_touch=True)))
    try:
        assert h.server is not None
        ex, market = h.server.ex, h.server.market
        bid = ex.markets["BTCUSDT"].book.best(c.SIDE_BUY)[0]
        deep = ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", c.fmt(bid - 10 * c.SCALE),
                              "GTC")
        deep_rec = ex.accounts[0].records[("BTCUSDT", deep["orderId"])]
        for _ in range(20):
            market.step()
        assert deep_rec.status == c.ST_NEW and deep_rec.filled == 0
        # one tick above the others' best bid: this order is the touch
        top = ex.markets["BTCUSDT"].book.best(c.SIDE_BUY)[0] + c.to_fixed("0.01")
        touch = ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", c.fmt(top), "GTC")
        touch_rec = ex.accounts[0].records[("BTCUSDT", touch["orderId"])]
        for _ in range(20):
            if touch_rec.status == c.ST_FILLED:
                break
            market.step()
        assert touch_rec.status == c.ST_FILLED
        assert deep_rec.filled == 0
    finally:
        assert h.server is not None
        await h.server.stop()


async def test_admin_mid_moves_the_market_and_the_book_follows() -> None:
    h = await start_sim(sim_config(**_market_config(fill_probability=0.0)))
    try:
        assert h.server is not None
        book = h.server.ex.markets["BTCUSDT"].book
        async with aiohttp.ClientSession() as s:
            async with s.post(h.base_url + "/_sim/mid?symbol=btcusdt&price=48000.005") as r:
                assert r.status == 200
                assert await r.json() == {"symbol": "BTCUSDT", "mid": "48000.00000000"}
            bid, ask = book.best(c.SIDE_BUY)[0], book.best(c.SIDE_SELL)[0]
            assert c.to_fixed("47990") < bid < ask < c.to_fixed("48010")
            for bad in ("symbol=NOPE&price=1", "symbol=BTCUSDT&price=x",
                        "symbol=BTCUSDT&price=0.01"):
                async with s.post(h.base_url + "/_sim/mid?" + bad) as r:
                    assert r.status == 400 and "error" in await r.json()
    finally:
        await h.server.stop()


async def test_a_mid_moved_through_a_user_order_lifts_it_and_quoting_goes_on() -> None:
    h = await start_sim(sim_config(**_market_config(fill_probability=0.0,
                                                    market_order_prob=0.0)))
    try:
        assert h.server is not None
        ex = h.server.ex
        book = ex.markets["BTCUSDT"].book
        bid, ask = book.best(c.SIDE_BUY)[0], book.best(c.SIDE_SELL)[0]
        sell = ex.place_order(0, "BTCUSDT", "SELL", "LIMIT", "0.01",
                              c.fmt(ask + 100 * c.SCALE), "GTC")["orderId"]
        deep = ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01",
                              c.fmt(bid - 1000 * c.SCALE), "GTC")["orderId"]
        async with aiohttp.ClientSession() as s:
            async with s.post(h.base_url + "/_sim/mid?symbol=BTCUSDT&price=51500") as r:
                assert r.status == 200
        sold = ex.accounts[0].records[("BTCUSDT", sell)]
        assert sold.status == c.ST_FILLED  # at its own price, not the new mid
        assert ex.accounts[0].trades[-1]["price"] == c.fmt(ask + 100 * c.SCALE)
        # the others quote both sides around the new mid; the deep bid is left alone
        assert c.to_fixed("51400") < book.best(c.SIDE_BUY)[0] < c.to_fixed("51600")
        assert ex.accounts[0].records[("BTCUSDT", deep)].status == c.ST_NEW
    finally:
        await h.server.stop()
