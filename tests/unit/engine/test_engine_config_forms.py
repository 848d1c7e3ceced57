"""The small engine form and the full format reach the core by one path: the minimal engine
written both ways gives the same core (limits, balances, prices, capacities, what an order
is answered) and the same accounts and strategies."""

from __future__ import annotations

import pytest
from minimal_engine import CFG, engine_config

from oms_core.config import ConfigError
from oms_core.core import OmsCore
from oms_core.engine.config import build_core, load_engine_config
from oms_core.engine.loop import EngineLoop
from oms_core.enums import Limit, OrderType, Side, TimeInForce


def _state(core: OmsCore) -> tuple:
    accounts = (1, 2)
    limits = [core.get_limit(a, int(lim)) for a in accounts for lim in Limit]
    balances = [core.balance(a, asset) for a in accounts for asset in (1, 2)]
    price = EngineLoop(core, 2).reference_price(1)
    # tick, lot, minimum and maximum quantity, collar: what the core answers each order
    answers = [core.submit(1, 1, 1, cl, int(Side.BUY), int(OrderType.LIMIT),
                           int(TimeInForce.GTC), px, 0, qty, 0, 0, 1)[0]
               for cl, (px, qty) in enumerate([(5_000_000, 1), (5_000_000, 10**12 + 1),
                                               (4_000_000, 1), (4_999_999, 0)], 1)]
    return limits, balances, price, core._capacities(), answers


def test_the_small_form_and_the_full_format_build_the_same_core() -> None:
    small, full = load_engine_config(CFG), engine_config()
    assert _state(build_core(small)) == _state(build_core(full))
    assert small.accounts == full.accounts
    assert small.strategies == full.strategies
    assert small.oms.clients["account1"].orders == full.oms.clients["one"].orders


def test_a_bad_value_of_the_small_form_is_refused_by_the_full_formats_check() -> None:
    bad = {**CFG, "instruments": [{**CFG["instruments"][0], "qty_precision": 9}]}
    with pytest.raises(ConfigError, match="instruments.BTCUSDT.quote: asset USDT has "
                                          "precision 8, below price precision 2"):
        load_engine_config(bad)


def test_small_form_limits_of_every_unit_reach_the_core_as_the_same_raw_numbers() -> None:
    limits = {"MAX_ORDER_QTY": 250, "MAX_ORDER_NOTIONAL": 123_456_789,
              "MAX_REFERENCE_AGE_NS": 1_500_000_000, "ORDER_RATE": 7, "COLLAR_USE_MID": 1,
              "MAX_OPEN_ORDERS": 42, "PROTECT_ON_REJECT": 1, "PROTECT_ANCHOR": 1}
    deposits = {"1": 123, "2": 10**14}
    small = {**CFG, "accounts": [{"id": 1, "limits": limits, "deposits": deposits}, {"id": 2}]}
    core = build_core(load_engine_config(small))
    assert {k: core.get_limit(1, int(Limit[k])) for k in limits} == limits
    assert (core.balance(1, 1)[0], core.balance(1, 2)[0]) == (123, 10**14)
