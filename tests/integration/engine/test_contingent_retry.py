"""A retried NEW_BRACKET / NEW_OCO (same first client order id, instrument, side, price and
strategy) is answered with the ids of the orders the first one made, and makes no new order;
the same client order id with another price is a DUPLICATE_CLIENT_ORDER_ID reject. Through the
engine's cold commands on an offline engine."""

from __future__ import annotations

from typing import Any

from minimal_engine import engine_config

from bindings.wire import records as wire
from oms_core.engine.offline import offline_engine
from oms_core.engine.server import Engine
from oms_core.enums import OrderType, Reject, Side, TimeInForce

BRACKET = dict(entry_client_order_id=11, tp_client_order_id=12, sl_client_order_id=13,
               entry_price=4_900_000, entry_trigger_price=0, quantity=100, tp_price=5_100_000,
               sl_trigger_price=4_800_000, sl_price=0, expire_ns=0, account=1, strategy=1,
               instrument=1, side=int(Side.BUY), entry_type=int(OrderType.LIMIT),
               tif=int(TimeInForce.GTC), order_flags=0)
OCO = dict(a_client_order_id=31, b_client_order_id=32, quantity=100, a_price=5_200_000,
           a_trigger_price=0, b_price=0, b_trigger_price=4_700_000, expire_ns=0, account=1,
           strategy=1, instrument=1, side=int(Side.SELL), a_type=int(OrderType.LIMIT),
           b_type=int(OrderType.STOP_MARKET), tif=int(TimeInForce.GTC), order_flags=0)


def bracket(engine: Engine, **changes: Any) -> tuple[int, ...]:
    rec = wire.decode(wire.encode("NEW_BRACKET", **{**BRACKET, **changes}))
    return tuple(engine.commands.bracket(rec, 1))


def oco(engine: Engine, **changes: Any) -> tuple[int, ...]:
    rec = wire.decode(wire.encode("NEW_OCO", **{**OCO, **changes}))
    return tuple(engine.commands.oco(rec, 1))


def open_orders(engine: Engine) -> int:
    return len(engine.core.live_orders(1))


def test_a_retried_bracket_gets_the_first_ones_ids() -> None:
    engine = offline_engine(engine_config())
    first = bracket(engine)
    assert first[0] == 0 and all(first[1:4]), first
    made = open_orders(engine)
    assert bracket(engine) == first
    assert open_orders(engine) == made
    assert bracket(engine, entry_price=4_900_001)[0] == int(Reject.DUPLICATE_CLIENT_ORDER_ID)
    assert open_orders(engine) == made


def test_a_retried_bracket_without_stop_loss_answers_its_take_profit_only() -> None:
    engine = offline_engine(engine_config())
    first = bracket(engine, sl_trigger_price=0)
    code, entry, take_profit, stop_loss = first[:4]
    assert code == 0 and entry and take_profit and not stop_loss, first
    assert bracket(engine, sl_trigger_price=0) == first


def test_a_retried_oco_gets_both_legs_ids() -> None:
    engine = offline_engine(engine_config())
    first = oco(engine)
    assert first[0] == 0 and first[1] and first[2], first
    made = open_orders(engine)
    assert oco(engine) == first
    assert open_orders(engine) == made
    assert oco(engine, a_price=5_200_001)[0] == int(Reject.DUPLICATE_CLIENT_ORDER_ID)
    assert open_orders(engine) == made
