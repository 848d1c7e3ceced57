"""One gateway, several venue accounts: each engine account trades on its own keys.

Both gateways (Binance and ccxt) against the in-process simulator with two accounts
(``alice``, ``bob``), real ZeroMQ to a stand-in engine. From the simulator's own
per-account records: an order of engine account 3 is on alice's venue account only, one of
account 5 on bob's only, an order of an account without a venue account here is refused
(never sent on someone else's keys), fills carry the engine's id of the asset the venue
charged, and a GW_RECONCILE answers once per venue account with that account's balances.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gw_engine import Engine
from sim_fixtures import SimHandle, sim_config, start_sim

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID
from gateways.binance import BinanceGateway
from gateways.binance.gateway import NO_VENUE_ACCOUNT
from gateways.ccxt_gateway import CcxtGateway
from gateways.config import GatewayConfig, Instrument, VenueAccount
from gateways.engine_link import EngineLink, ExecType, GatewayState
from gateways.sim import constants as c
from oms_core.enums import OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(60)

INST = Instrument(id=7, symbol="BTCUSDT", price_decimals=2, qty_decimals=5)
ALICE, BOB, NOBODY = 3, 5, 9
# engine asset ids of the venue's assets (as the supervisor writes them), 8 decimals
ASSETS = {"USDT": [1, 8], "BTC": [2, 8], "ETH": [3, 8]}
SIM_CCXT_OPTIONS = {"enableRateLimit": False, "timeout": 10_000, "options": {
    "defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
    "fetchMargins": False}}


def counterparty(h: SimHandle, side: int, px: str, qty: str) -> int:
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    return ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed(px), c.to_fixed(qty))


def venue_cids(h: SimHandle, name: str) -> set[str]:
    """Client order ids of every order the simulator holds for its account ``name``."""
    assert h.server is not None
    acct = next(a for a in h.server.ex.accounts if a.cfg.name == name)
    return {r.client_order_id for r in acct.records.values()}


def exec_of(exec_type: ExecType, order_id: int) -> Any:
    return lambda e: getattr(e, "exec_type", 0) == exec_type and e.order_id == order_id


def accounts_cfg(h: SimHandle, monkeypatch: pytest.MonkeyPatch) -> list[VenueAccount]:
    out = []
    for (key, secret), name, eid in zip(h.keys, ("alice", "bob"), (ALICE, BOB), strict=True):
        monkeypatch.setenv(f"T_{name.upper()}_KEY", key)
        monkeypatch.setenv(f"T_{name.upper()}_SECRET", secret)
        out.append(VenueAccount(eid, name, f"T_{name.upper()}_KEY",
                                f"T_{name.upper()}_SECRET"))
    return out


async def trade_both(h: SimHandle, engine: Engine, prefix: str) -> None:
    """Alice buys 0.01 and bob buys 0.02 at market against resting asks; account 9 tries."""
    counterparty(h, c.SIDE_SELL, "50000.00", "1")
    for oid, acct, qty in ((11, ALICE, 1_000), (12, BOB, 2_000), (13, NOBODY, 3_000)):
        await engine.send_order(order_id=oid, account=acct, instrument=INST.id, side=Side.BUY,
                                order_type=OrderType.MARKET, tif=TimeInForce.GTC,
                                quantity=qty)
    rej = await engine.wait_event(exec_of(ExecType.REJECT, 13))
    assert rej.account == NOBODY and rej.exch_code == NO_VENUE_ACCOUNT
    fills = {}
    for oid in (11, 12):
        fills[oid] = await engine.wait_event(exec_of(ExecType.FILL, oid), timeout=10)
    assert fills[11].account == ALICE and fills[12].account == BOB
    # a buy is charged its fee in the base asset (BTC), reported with BTC's engine id
    assert fills[11].fee_asset == 2 and fills[11].fee > 0
    assert fills[12].fee_asset == 2 and fills[12].fee > fills[11].fee
    assert venue_cids(h, "alice") == {f"{prefix}11"}
    assert venue_cids(h, "bob") == {f"{prefix}12"}


async def reconcile_both(engine: Engine) -> dict[int, Any]:
    await engine.orders.send(wire.encode("GW_RECONCILE", 77, 0, 0, 0, since_ns=0,
                                         account=ANY_ID, exchange=1))
    ends = {}
    for acct in (ALICE, BOB):
        ends[acct] = await engine.wait_event(
            lambda e, a=acct: e.msg_type.name == "GW_RECONCILE_END" and e.account == a,
            timeout=10)
    return ends


def balances_of(engine: Engine, account: int) -> dict[int, int]:
    return {e.asset: e.total for e in engine.received
            if e.msg_type.name == "GW_BALANCE" and e.account == account}


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    h = await start_sim(sim_config())
    try:
        yield h
    finally:
        assert h.server is not None
        await h.server.stop()


async def test_binance_gateway_routes_each_account_to_its_own_keys(sim, monkeypatch):
    engine = Engine()
    cfg = GatewayConfig(kind="binance", instruments=[INST], engine=engine.endpoints,
                        rest_url=sim.base_url, ws_url=sim.ws_url, request_timeout_s=2.0,
                        reconnect_base_s=0.05, reconnect_max_s=0.2, stale_after_s=30.0,
                        client_order_prefix="t-", assets=ASSETS,
                        accounts=accounts_cfg(sim, monkeypatch))
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    gw = BinanceGateway(cfg, link)
    await gw.start()
    try:
        await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                                and e.state == GatewayState.HEALTHY and e.detail == 2,
                                timeout=10)
        assert all(s.user_ready.is_set() for s in gw.sessions.values())
        await trade_both(sim, engine, "t-")
        ends = await reconcile_both(engine)
        assert ends[ALICE].code == 0 and ends[BOB].code == 0
        assert ends[ALICE].n_fills == 1 and ends[BOB].n_fills == 1
        # each account's balances are its own venue account's: 10 BTC + 0.01 less the fee
        alice, bob = balances_of(engine, ALICE), balances_of(engine, BOB)
        assert 10 * 10**8 < alice[2] < bob[2] < 10 * 10**8 + 2_000_000
    finally:
        await gw.stop()
        link.close()
        engine.close()


async def test_ccxt_gateway_routes_each_account_to_its_own_keys(sim, monkeypatch):
    engine = Engine()
    # ccxt's own binance client per account, pointed at the simulator by configuration
    cfg = GatewayConfig(kind="ccxt", instruments=[Instrument(7, "BTC/USDT", 2, 5)],
                        engine=engine.endpoints, client_order_prefix="c-", assets=ASSETS,
                        accounts=accounts_cfg(sim, monkeypatch), stale_after_s=0.4,
                        ccxt_websocket=False, ccxt_options=SIM_CCXT_OPTIONS,
                        ccxt_urls={"public": sim.rest_url, "private": sim.rest_url,
                                   "v1": sim.base_url + "/api/v1"})
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    gw = CcxtGateway(cfg, link)
    assert sorted(gw.sessions) == [ALICE, BOB]
    assert gw.sessions[ALICE].ex.apiKey == sim.keys[0][0]
    assert gw.sessions[BOB].ex.apiKey == sim.keys[1][0]
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS", timeout=10)
        await trade_both(sim, engine, "c-")
        ends = await reconcile_both(engine)
        assert ends[ALICE].code == 0 and ends[BOB].code == 0
        assert ends[ALICE].n_fills == 1 and ends[BOB].n_fills == 1
        alice, bob = balances_of(engine, ALICE), balances_of(engine, BOB)
        assert 10 * 10**8 < alice[2] < bob[2] < 10 * 10**8 + 2_000_000
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        engine.close()


def venue_records(h: SimHandle, name: str, cid: str) -> list[Any]:
    """The simulator's records of ``cid`` on its account ``name``, oldest first."""
    assert h.server is not None
    acct = next(a for a in h.server.ex.accounts if a.cfg.name == name)
    return sorted((r for r in acct.records.values() if r.client_order_id == cid),
                  key=lambda r: r.order_id)


async def rest_bob_bid(engine: Engine, order_id: int) -> Any:
    """Bob's resting 0.03 BTC bid at 49000.00, acknowledged."""
    await engine.send_order(order_id=order_id, account=BOB, instrument=INST.id, side=Side.BUY,
                            order_type=OrderType.LIMIT, tif=TimeInForce.GTC,
                            price=4_900_000, quantity=3_000)
    return await engine.wait_event(exec_of(ExecType.ACK, order_id), timeout=10)


def binance_on_sim(h: SimHandle, engine: Engine, monkeypatch: pytest.MonkeyPatch
                   ) -> tuple[EngineLink, BinanceGateway]:
    cfg = GatewayConfig(kind="binance", instruments=[INST], engine=engine.endpoints,
                        rest_url=h.base_url, ws_url=h.ws_url, request_timeout_s=2.0,
                        reconnect_base_s=0.05, reconnect_max_s=0.2, stale_after_s=30.0,
                        client_order_prefix="t-", assets=ASSETS,
                        accounts=accounts_cfg(h, monkeypatch))
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    return link, BinanceGateway(cfg, link)


def ccxt_on_sim(h: SimHandle, engine: Engine, monkeypatch: pytest.MonkeyPatch, prefix: str,
                **kw: Any) -> tuple[EngineLink, CcxtGateway]:
    """ccxt's binance client on the simulator (REST only), alice's and bob's accounts."""
    cfg = GatewayConfig(kind="ccxt", instruments=[Instrument(7, "BTC/USDT", 2, 5)],
                        engine=engine.endpoints, client_order_prefix=prefix, assets=ASSETS,
                        accounts=accounts_cfg(h, monkeypatch), ccxt_websocket=False,
                        ccxt_options=SIM_CCXT_OPTIONS,
                        ccxt_urls={"public": h.rest_url, "private": h.rest_url,
                                   "v1": h.base_url + "/api/v1"}, **kw)
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    return link, CcxtGateway(cfg, link)


async def healthy(engine: Engine) -> None:
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.HEALTHY and e.detail == 2, timeout=10)
    engine.received.clear()


async def test_binance_amend_cancel_and_followed_orders_use_the_orders_account(sim,
                                                                             monkeypatch):
    """cancelReplace, a cancel of an order not held and an order followed again after a
    restart all go out on the keys of the order's account (bob's), never alice's."""
    engine = Engine()
    link, gw = binance_on_sim(sim, engine, monkeypatch)
    await gw.start()
    try:
        await healthy(engine)
        await rest_bob_bid(engine, 31)
        await engine.orders.send(wire.encode("GW_REPLACE", order_id=31, price=4_900_100,
                                             quantity=2_000, account=BOB, instrument=INST.id))
        rep = await engine.wait_event(exec_of(ExecType.REPLACED, 31), timeout=10)
        assert rep.account == BOB and (rep.price, rep.quantity) == (4_900_100, 2_000)
        old, new = venue_records(sim, "bob", "t-31")
        assert old.status == c.ST_CANCELED and new.status == c.ST_NEW
        assert rep.exch_order_id == new.order_id
        assert venue_cids(sim, "alice") == set()
    finally:
        await gw.stop()
        link.close()
    # a new gateway process: it does not hold order 31
    link, gw = binance_on_sim(sim, engine, monkeypatch)
    await gw.start()
    try:
        await healthy(engine)
        assert "t-31" not in gw.orders
        # a fill on bob's stream: the order is followed again on bob's session
        counterparty(sim, c.SIDE_SELL, "49001.00", "0.005")
        fill = await engine.wait_event(exec_of(ExecType.FILL, 31), timeout=10)
        assert fill.account == BOB and fill.last_qty == 500
        assert gw.orders["t-31"].session is gw.sessions[BOB]
        # an account without a venue account here: refused, nothing sent
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=32, account=NOBODY,
                                             instrument=INST.id))
        rej = await engine.wait_event(exec_of(ExecType.CANCEL_REJECT, 32))
        assert rej.account == NOBODY and rej.exch_code == NO_VENUE_ACCOUNT
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=31, account=BOB,
                                             instrument=INST.id))
        done = await engine.wait_event(exec_of(ExecType.CANCELED, 31), timeout=10)
        assert done.account == BOB
        assert venue_records(sim, "bob", "t-31")[-1].status == c.ST_CANCELED
        assert [e.order_id for e in engine.execs(ExecType.CANCEL_REJECT)] == [32]
        assert venue_cids(sim, "alice") == set()
    finally:
        await gw.stop()
        link.close()
        engine.close()


async def test_binance_cancel_of_order_not_held_goes_to_its_accounts_keys(sim, monkeypatch):
    engine = Engine()
    link, gw = binance_on_sim(sim, engine, monkeypatch)
    assert sim.server is not None
    # placed under our id on bob's venue account before this gateway started
    bob_index = next(a.index for a in sim.server.ex.accounts if a.cfg.name == "bob")
    sim.server.ex.place_order(bob_index, "BTCUSDT", "BUY", "LIMIT", "0.01", "48000.00",
                              "GTC", client_order_id="t-33")
    await gw.start()
    try:
        await healthy(engine)
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=33, account=BOB,
                                             instrument=INST.id))
        done = await engine.wait_event(exec_of(ExecType.CANCELED, 33), timeout=10)
        assert done.account == BOB
        assert venue_records(sim, "bob", "t-33")[-1].status == c.ST_CANCELED
        assert not engine.execs(ExecType.CANCEL_REJECT)
    finally:
        await gw.stop()
        link.close()
        engine.close()


async def test_ccxt_amend_and_cancel_use_the_orders_account(sim, monkeypatch):
    engine = Engine()
    link, gw = ccxt_on_sim(sim, engine, monkeypatch, "c-", stale_after_s=0.4,
                           reconnect_max_s=0.5)
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS", timeout=10)
        await rest_bob_bid(engine, 41)
        await engine.orders.send(wire.encode("GW_REPLACE", order_id=41, price=4_900_100,
                                             quantity=2_000, account=BOB, instrument=INST.id))
        rep = await engine.wait_event(exec_of(ExecType.REPLACED, 41), timeout=10)
        assert rep.account == BOB and (rep.price, rep.quantity) == (4_900_100, 2_000)
        old, new = venue_records(sim, "bob", "c-41")
        assert old.status == c.ST_CANCELED and new.status == c.ST_NEW
        assert new.qty == c.to_fixed("0.02") and new.price == c.to_fixed("49001")
        # bob's order filled on bob's account: the fill is bob's, found by its venue id
        counterparty(sim, c.SIDE_SELL, "49001.00", "0.005")
        fill = await engine.wait_event(exec_of(ExecType.FILL, 41), timeout=15)
        assert fill.account == BOB and fill.last_qty == 500
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=41, account=BOB,
                                             instrument=INST.id))
        done = await engine.wait_event(exec_of(ExecType.CANCELED, 41), timeout=10)
        assert done.account == BOB
        assert venue_records(sim, "bob", "c-41")[-1].status == c.ST_CANCELED
        assert venue_cids(sim, "alice") == set()
        assert not engine.execs(ExecType.REPLACE_REJECT)
        assert not engine.execs(ExecType.CANCEL_REJECT)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        engine.close()


@pytest.mark.parametrize("kind", ["binance", "ccxt"])
async def test_reconcile_lists_the_orders_sent_before_it(sim, monkeypatch, kind):
    """A GW_RECONCILE that follows a GW_NEW_ORDER reads the venue after that order is placed,
    however slow the venue's order entry: else a working order is missing from the answer
    and the engine closes it while it rests at the venue."""
    engine = Engine()
    if kind == "binance":
        link, gw = binance_on_sim(sim, engine, monkeypatch)
    else:
        link, gw = ccxt_on_sim(sim, engine, monkeypatch, "t-")
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS", timeout=10)
        assert sim.server is not None
        sim.server.fault(delay_orders=1, delay_orders_s=0.5)
        await engine.send_order(order_id=42, account=BOB, instrument=INST.id, side=Side.BUY,
                                order_type=OrderType.LIMIT, tif=TimeInForce.GTC,
                                price=4_900_000, quantity=1_000)
        await engine.orders.send(wire.encode("GW_RECONCILE", 78, 0, 0, 0, since_ns=0,
                                             account=BOB, exchange=1))
        end = await engine.wait_event(
            lambda e: e.msg_type.name == "GW_RECONCILE_END" and e.account == BOB, timeout=15)
        assert end.code == 0 and end.n_orders == 1, end
        (row,) = [e for e in engine.received if e.msg_type.name == "GW_EXEC_REPORT"
                  and e.exec_type == ExecType.STATUS and e.request_id == 78]
        assert row.order_id == 42 and row.leaves_qty == 1_000
        assert venue_records(sim, "bob", "t-42")[-1].status == c.ST_NEW
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        engine.close()
