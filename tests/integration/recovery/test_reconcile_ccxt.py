"""Reconciliation after an engine restart through the generic ccxt gateway, with real parts:
the engine process (``python -m oms_core.engine --journal DIR``), ``gateways.ccxt_gateway``
driving ccxt's own async ``binance`` class pointed at the simulated exchange on loopback,
ZeroMQ over ipc:// in the test's directory.

While the engine and its gateway are down, one order fills at the exchange, another is
canceled there and money is deposited at the venue. On restart the engine replays its
journal, gates trading and asks the fresh ccxt gateway (GW_RECONCILE): the fill is booked
once as a reconciliation fill, the canceled order is closed with a reason, the spot
account's traded balances match the venue's except the deposit (a RECON_BALANCE alert), an
asset the account does not trade is adopted from the venue, and trading resumes after
GW_RECONCILE_END.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zmq
from engine_crash_fixtures import Engine, query, venue_of_account1
from sim_fixtures import SimHandle, ccxt_binance, start_sim, wait_for
from test_reconcile_engine import _journal, _order, _orders

from bindings.wire.spec import MsgType, QueryKind
from gateways.ccxt_gateway import CcxtGateway
from gateways.config import EngineEndpoints, GatewayConfig, Instrument
from gateways.engine_link import EngineLink
from gateways.sim import constants as c
from oms_core.engine.process import base_config, write_config
from oms_core.enums import Alert, OrderStatus
from oms_core.recovery import RECON_BALANCE, RECON_CLOSED_UNKNOWN, RECON_MISSED_FILL

pytestmark = pytest.mark.timeout(90)

E8 = 10**8
BTC, USDT, ETH = 1, 2, 3
ASSETS = {"BTC": (BTC, 8), "USDT": (USDT, 8), "ETH": (ETH, 8)}


def _config(tmp: Path) -> Path:
    cfg = venue_of_account1(base_config(tmp, "ipc"))
    cfg["assets"]["ETH"] = {"precision": 8}
    cfg["ids"]["assets"]["ETH"] = ETH
    # a spot account (free-balance check) starting with the venue's balances of account 0,
    # except ETH, which it never trades and does not know about
    acct = cfg["clients"]["account1"]
    acct["cash"] = {"BTC": "10", "USDT": "1000000"}
    acct["limits"]["check_balance"] = True
    return write_config(cfg, tmp / "engine.toml")


class _Gw:
    """The ccxt gateway as the gateway process runs it, on this event loop."""

    def __init__(self, h: SimHandle, tmp: Path) -> None:
        cfg = GatewayConfig(
            kind="ccxt", gateway_id=1, account_id=1, user_stream=False, stale_after_s=0.4,
            instruments=[Instrument(id=1, symbol="BTC/USDT", price_decimals=2,
                                    qty_decimals=5)],
            engine=EngineEndpoints(orders=f"ipc://{tmp}/gw-orders-1",
                                   events=f"ipc://{tmp}/gw-events",
                                   market_data=f"ipc://{tmp}/gw-md", bind=False),
            assets={k: list(v) for k, v in ASSETS.items()})
        self.link = EngineLink(cfg.engine, cfg.gateway_id)
        self.gw = CcxtGateway(cfg, self.link, exchange=ccxt_binance(h))
        self.task = asyncio.get_running_loop().create_task(self.gw.run())

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
            pass
        self.link.close()


async def test_ccxt_restart_books_fill_closes_cancel_checks_balances_resumes(
        tmp_path: Path) -> None:
    h = await start_sim()
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    ctx = zmq.Context()
    jdir = tmp_path / "journal"
    cfg = _config(tmp_path)
    e = Engine(cfg, jdir)
    gw: _Gw | None = None
    e2: Engine | None = None
    try:
        await asyncio.to_thread(e.start)
        gw = _Gw(h, tmp_path)
        ep = e.endpoints["client"]
        a = await asyncio.to_thread(_order, ctx, ep, 1, 4_900_000)  # 0.01 BTC @ 49,000.00
        b = await asyncio.to_thread(_order, ctx, ep, 2, 4_890_000)  # 0.01 BTC @ 48,900.00
        assert a.msg_type == MsgType.ACK and b.msg_type == MsgType.ACK
        await wait_for(lambda: len(ex.open_orders(0, "BTCUSDT")) == 2, timeout_s=15)
        venue = {r.client_order_id: r for r in ex.open_orders(0, "BTCUSDT")}
        assert set(venue) == {f"oms-{a.order_id}", f"oms-{b.order_id}"}

        # engine and gateway die; meanwhile A fills, B is canceled, 5 USDT are deposited
        e.kill9()
        await gw.stop()
        gw = None
        ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                      c.to_fixed("0.01"))
        ex.cancel_order(0, "BTCUSDT", str(venue[f"oms-{b.order_id}"].order_id), None)
        ex.ledger.deposit(0, ex.asset_index["USDT"], 5 * c.SCALE)
        assert ex.open_orders(0, "BTCUSDT") == []

        # restart: the engine waits for its gateway; a fresh ccxt gateway answers
        e2 = Engine(cfg, jdir)
        start = asyncio.create_task(asyncio.to_thread(e2.start))
        await asyncio.sleep(0.3)
        gw = _Gw(h, tmp_path)
        await start
        rec = e2.reconciled
        assert rec["ok"] is True and rec["missing"] == [] and rec["halted"] is False, rec
        rep = rec["reports"]["1"]
        assert len(rep["booked_fills"]) == 1 and rep["closed"] == [b.order_id]
        assert rep["balance_diffs"] == [[1, USDT, 999_510 * E8, 999_515 * E8]]
        assert rep["adopted"] == [[1, ETH, 0, 100 * E8]]
        assert gw.gw.n_reconciles == 1

        ep = e2.endpoints["client"]
        orders = await asyncio.to_thread(_orders, ctx, ep)
        assert orders[1].status == OrderStatus.FILLED and orders[1].filled == 1000
        assert orders[2].status == OrderStatus.CANCELED
        # a spot account: the engine's balances are the venue's (but the deposit)
        bals = {r.asset: r.total for r in await asyncio.to_thread(
            query, ctx, ep, int(QueryKind.BALANCES), 93)}
        venue_bal = {x["asset"]: c.to_fixed(x["free"]) + c.to_fixed(x["locked"])
                     for x in ex.balances(0)}
        assert bals[BTC] == venue_bal["BTC"] == 10 * E8 + 10**6 - 1000  # + 0.01, - fee
        assert bals[USDT] == venue_bal["USDT"] - 5 * E8
        assert bals[ETH] == venue_bal["ETH"] == 100 * E8
        # trading resumed after GW_RECONCILE_END: a new order is accepted and reaches the venue
        n = await asyncio.to_thread(_order, ctx, ep, 3, 4_700_000)
        assert n.msg_type == MsgType.ACK, n
        await wait_for(lambda: len(ex.open_orders(0, "BTCUSDT")) == 1, timeout_s=15)
        e2.stop()

        # the fill was booked once, as a reconciliation; alerts and decisions journaled
        inputs, events = _journal(jdir)
        fills = [ev for ev in events if ev.msg_type == MsgType.FILL]
        assert len(fills) == 1 and fills[0].order_id == a.order_id
        alerts = [ev for ev in events if ev.msg_type == MsgType.RISK_ALERT
                  and ev.alert == Alert.RECONCILIATION_DIFFERENCE]
        assert sorted((al.a, al.instrument, al.b) for al in alerts if al.a == RECON_BALANCE) \
            == [(RECON_BALANCE, USDT, 5 * E8)]
        assert {al.a for al in alerts} == {RECON_MISSED_FILL, RECON_CLOSED_UNKNOWN,
                                           RECON_BALANCE}
        adopted = [ev for ev in events if ev.msg_type == MsgType.BALANCE_UPDATE
                   and ev.asset == ETH]
        assert [(x.account, x.total) for x in adopted] == [(1, 100 * E8)]
        kinds = [k for k, _ in inputs]
        assert 196 in kinds and 198 in kinds and 199 in kinds
    finally:
        if gw is not None:
            await gw.stop()
        for x in (e, e2):
            if x is not None:
                x.kill9()
        ctx.term()
        await h.server.stop()
