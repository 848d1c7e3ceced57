"""The ccxt gateway sends what the engine asked for and reports what the venue decided:
timeInForce, post-only (LIMIT_MAKER), native stops, amends (edit_order, or cancel + new),
cancels that meet a rate limit, and ends decided by the venue (IOC remainders, cancels).

Real parts: ccxt's binance class against the simulator (URLs overridden), real ZeroMQ to a
stand-in engine. The user stream is polled (ccxt's REST class has no watch_* methods).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gw_engine import Engine
from sim_fixtures import SimHandle, ccxt_binance, sim, wait_for  # noqa: F401
from test_sim_ccxt import seed_asks

from bindings.wire import records as wire
from gateways.ccxt_gateway import CcxtGateway
from gateways.config import GatewayConfig, Instrument
from gateways.engine_link import EngineLink, ExecType
from gateways.sim import constants as c
from oms_core.enums import OrderFlag, OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(60)

INST = Instrument(id=3, symbol="BTC/USDT", price_decimals=2, qty_decimals=6)


def exec_of(exec_type: ExecType, order_id: int) -> Any:
    return lambda e: getattr(e, "exec_type", 0) == exec_type and e.order_id == order_id


def records(h: SimHandle, order_id: int) -> list[Any]:
    assert h.server is not None
    cid = f"oms-{order_id}"
    return sorted((r for r in h.server.ex.accounts[0].records.values()
                   if r.client_order_id == cid), key=lambda r: r.order_id)


@pytest.fixture
async def env(sim: SimHandle) -> AsyncIterator[tuple[SimHandle, Engine, CcxtGateway]]:  # noqa: F811
    seed_asks(sim)
    engine = Engine()
    cfg = GatewayConfig(kind="ccxt", instruments=[INST], engine=engine.endpoints,
                        user_stream=True, stale_after_s=0.4, reconnect_max_s=0.5)
    link = EngineLink(cfg.engine, 1, ctx=engine.ctx)
    gw = CcxtGateway(cfg, link, exchange=ccxt_binance(sim))
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await engine.wait_md(lambda m: m.instrument == INST.id and m.ask, timeout=10)
        yield sim, engine, gw
    finally:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        link.close()
        engine.close()


async def order(engine: Engine, order_id: int, price: int, qty: int, side: int = Side.BUY,
                order_type: int = OrderType.LIMIT, tif: int = TimeInForce.GTC,
                flags: int = 0, trigger: int = 0) -> None:
    await engine.orders.send(wire.encode(
        "GW_NEW_ORDER", order_id=order_id, price=price, trigger_price=trigger, quantity=qty,
        account=1, instrument=INST.id, side=side, order_type=order_type, tif=tif,
        order_flags=flags))


async def test_time_in_force_post_only_and_native_stop(env: Any) -> None:
    h, engine, gw = env
    # IOC for 0.6 against 0.5 at 50000: the remainder expires, and the engine is told
    await order(engine, 1, 5_000_000, 600_000, tif=TimeInForce.IOC)
    await engine.wait_event(exec_of(ExecType.EXPIRED, 1), timeout=10)
    (rec,) = records(h, 1)
    assert (rec.tif, rec.status, rec.filled) == (c.TIF_IOC, c.ST_EXPIRED, c.to_fixed("0.5"))
    # FOK that cannot fill in full: nothing trades
    await order(engine, 2, 5_000_100, 5_000_000, tif=TimeInForce.FOK)
    await engine.wait_event(exec_of(ExecType.EXPIRED, 2), timeout=10)
    assert records(h, 2)[0].tif == c.TIF_FOK and records(h, 2)[0].filled == 0
    # post-only rests as LIMIT_MAKER
    await order(engine, 3, 4_999_500, 10_000, flags=OrderFlag.POST_ONLY)
    await engine.wait_event(exec_of(ExecType.ACK, 3))
    assert records(h, 3)[0].otype == c.OT_LIMIT_MAKER
    # a native stop-loss rests at the venue with its stop price
    await order(engine, 4, 0, 10_000, side=Side.SELL, order_type=OrderType.STOP_MARKET,
                trigger=4_900_000)
    await engine.wait_event(exec_of(ExecType.ACK, 4))
    (rec,) = records(h, 4)
    assert (rec.otype, rec.stop_price, rec.working) == (c.OT_STOP_LOSS, c.to_fixed("49000"),
                                                        False)


@pytest.mark.parametrize("edit", [True, False], ids=["edit_order", "cancel_and_new"])
async def test_amend_reaches_the_venue(env: Any, edit: bool) -> None:
    h, engine, gw = env
    if not edit:
        gw.ex.has = {**gw.ex.has, "editOrder": False}
    await order(engine, 5, 4_900_000, 10_000)
    await engine.wait_event(exec_of(ExecType.ACK, 5))
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=5, price=4_910_000,
                                         quantity=20_000, account=1, instrument=INST.id))
    rep = await engine.wait_event(exec_of(ExecType.REPLACED, 5), timeout=10)
    old, new = records(h, 5)
    assert old.status == c.ST_CANCELED
    assert (new.status, new.price, new.qty) == (c.ST_NEW, c.to_fixed("49100"),
                                                c.to_fixed("0.02"))
    assert (rep.price, rep.quantity, rep.exch_order_id) == (4_910_000, 20_000, new.order_id)
    await engine.drain(1.5)  # the old version's end is not reported as the order's
    assert not engine.execs(ExecType.CANCELED) and not engine.execs(ExecType.REPLACE_REJECT)


async def test_amend_whose_new_order_fails_reports_reject_then_canceled(env: Any) -> None:
    h, engine, gw = env
    await order(engine, 6, 4_999_500, 10_000, flags=OrderFlag.POST_ONLY)
    await engine.wait_event(exec_of(ExecType.ACK, 6))
    # across the ask: the old order is canceled, the LIMIT_MAKER would take
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=6, price=5_000_000,
                                         quantity=10_000, account=1, instrument=INST.id))
    await engine.wait_event(exec_of(ExecType.REPLACE_REJECT, 6), timeout=10)
    await engine.wait_event(exec_of(ExecType.CANCELED, 6), timeout=10)
    assert [r.status for r in records(h, 6)] == [c.ST_CANCELED]


async def test_cancel_meeting_a_rate_limit_is_sent_again(env: Any) -> None:
    h, engine, gw = env
    await order(engine, 7, 4_900_000, 10_000)
    await engine.wait_event(exec_of(ExecType.ACK, 7))
    h.server.fault(rate_limit=1)
    await engine.orders.send(wire.encode("GW_CANCEL", order_id=7, account=1,
                                         instrument=INST.id))
    await engine.wait_event(exec_of(ExecType.CANCELED, 7), timeout=15)
    assert records(h, 7)[-1].status == c.ST_CANCELED


async def test_cancel_by_the_venue_is_reported(env: Any) -> None:
    h, engine, gw = env
    await order(engine, 8, 4_900_000, 10_000)
    await engine.wait_event(exec_of(ExecType.ACK, 8))
    (rec,) = records(h, 8)
    h.server.ex.cancel_order(0, "BTCUSDT", str(rec.order_id), None)
    await engine.wait_event(exec_of(ExecType.CANCELED, 8), timeout=10)


async def test_amend_whose_answer_is_lost_is_resolved_by_query(env: Any) -> None:
    h, engine, gw = env
    await order(engine, 9, 4_900_000, 10_000)
    await engine.wait_event(exec_of(ExecType.ACK, 9))
    h.server.fault(lose_ack=1, lose_ack_mode="drop")  # the edit runs; its answer is lost
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=9, price=4_905_000,
                                         quantity=10_000, account=1, instrument=INST.id))
    rep = await engine.wait_event(exec_of(ExecType.REPLACED, 9), timeout=15)
    old, new = records(h, 9)
    assert old.status == c.ST_CANCELED and new.price == c.to_fixed("49050")
    assert rep.exch_order_id == new.order_id
