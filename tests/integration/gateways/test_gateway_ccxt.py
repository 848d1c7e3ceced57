"""The generic ccxt gateway against the simulator through ccxt's binance class (URLs overridden)."""

from __future__ import annotations

import asyncio

import pytest
from sim_fixtures import SimHandle, ccxt_binance, sim  # noqa: F401
from test_gateway_binance import Engine
from test_sim_ccxt import seed_asks

from bindings.wire import records as wire
from gateways.ccxt_gateway import CcxtGateway
from gateways.config import GatewayConfig, Instrument
from gateways.engine_link import EngineLink, ExecType
from oms_core.enums import OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(30)


async def test_ccxt_gateway_book_and_orders(sim: SimHandle) -> None:  # noqa: F811
    seed_asks(sim)
    engine = Engine()
    inst = Instrument(id=3, symbol="BTC/USDT", price_decimals=2, qty_decimals=6)
    cfg = GatewayConfig(kind="ccxt", instruments=[inst], engine=engine.endpoints,
                        user_stream=False, stale_after_s=0.4)
    link = EngineLink(cfg.engine, 1, ctx=engine.ctx)
    gw = CcxtGateway(cfg, link, exchange=ccxt_binance(sim))
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        md = await engine.wait_md(lambda m: m.instrument == 3 and m.ask, timeout=10)
        assert md.ask == 5_000_000 and md.bid == 4_999_000 and md.ask_qty == 500_000
        await engine.orders.send(wire.encode(
            "GW_NEW_ORDER", order_id=77, price=4_900_000, quantity=10_000, account=1,
            instrument=3, side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC))
        ack = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.ACK)
        assert ack.order_id == 77 and ack.exch_order_id > 0
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=77, account=1,
                                             instrument=3))
        c = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.CANCELED)
        assert c.order_id == 77
    finally:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        link.close()
        engine.close()
