"""The simulator's ``POST /api/v3/order/cancelReplace`` answers, as Binance documents them."""

from __future__ import annotations

import pytest

from gateways.sim import constants as c
from gateways.sim.config import SimConfig
from gateways.sim.exchange import Exchange, SimError


@pytest.fixture
def ex() -> Exchange:
    e = Exchange(SimConfig.from_dict({"market": {"enabled": False}}))
    e.ledger.deposit(e.sim_account, e.asset_index["BTC"], 10**12)
    e.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("50010"),
                 c.to_fixed("1"))
    e.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", "49000.00", "GTC",
                  client_order_id="a1")
    return e


def _terms(ex: Exchange, otype: str = "LIMIT", price: str = "49100.00") -> object:
    return ex.order_terms(0, "BTCUSDT", "BUY", otype, "0.02", price,
                          "GTC" if otype == "LIMIT" else None)


def test_both_halves_succeed(ex: Exchange) -> None:
    out = ex.cancel_replace(0, "BTCUSDT", "STOP_ON_FAILURE", None, "a1", _terms(ex), "a1")
    assert (out["cancelResult"], out["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert out["cancelResponse"]["status"] == "CANCELED"
    assert out["cancelResponse"]["origClientOrderId"] == "a1"
    new = out["newOrderResponse"]
    assert new["clientOrderId"] == "a1" and new["price"] == "49100.00000000"
    # the client order id now names the new order
    rec = ex.find_order(0, "BTCUSDT", None, "a1")
    assert rec.order_id == new["orderId"] and rec.qty == c.to_fixed("0.02")


def test_cancel_failure_stops_the_new_order(ex: Exchange) -> None:
    with pytest.raises(SimError) as e:
        ex.cancel_replace(0, "BTCUSDT", "STOP_ON_FAILURE", None, "nope", _terms(ex), "b1")
    assert (e.value.code, e.value.status) == (-2022, 400)
    assert e.value.msg == "Order cancel-replace failed."
    assert e.value.data == {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                            "newOrderResponse": None}
    assert len(ex.open_orders(0, "BTCUSDT")) == 1


def test_new_order_failure_after_cancel_is_a_partial_failure(ex: Exchange) -> None:
    terms = _terms(ex, "LIMIT_MAKER", "50010.00")  # would take the ask
    with pytest.raises(SimError) as e:
        ex.cancel_replace(0, "BTCUSDT", "STOP_ON_FAILURE", None, "a1", terms, "a1")
    assert (e.value.code, e.value.status) == (-2021, 409)
    assert e.value.msg == "Order cancel-replace partially failed."
    d = e.value.data
    assert (d["cancelResult"], d["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert d["newOrderResponse"] == {"code": -2010,
                                     "msg": "Order would immediately match and take."}
    assert ex.open_orders(0, "BTCUSDT") == []


def test_allow_failure_attempts_the_new_order_anyway(ex: Exchange) -> None:
    with pytest.raises(SimError) as e:
        ex.cancel_replace(0, "BTCUSDT", "ALLOW_FAILURE", None, "nope", _terms(ex), "c1")
    assert e.value.code == -2021
    assert (e.value.data["cancelResult"], e.value.data["newOrderResult"]) == ("FAILURE",
                                                                              "SUCCESS")
    assert len(ex.open_orders(0, "BTCUSDT")) == 2


def test_new_order_checked_before_anything_happens(ex: Exchange) -> None:
    with pytest.raises(SimError) as e:  # below the minimum notional
        ex.order_terms(0, "BTCUSDT", "BUY", "LIMIT", "0.00001", "100.00", "GTC")
    assert e.value.code == -1013 and e.value.data is None
    with pytest.raises(SimError) as e:
        ex.cancel_replace(0, "BTCUSDT", None, None, "a1", _terms(ex), "a1")
    assert e.value.code == -1102
    assert len(ex.open_orders(0, "BTCUSDT")) == 1
