"""Reconciliation after an engine restart, with real parts: the engine process
(``python -m oms_core.engine --journal DIR``), the project's Binance gateway against the
in-process simulated exchange, ZeroMQ over ipc:// in the test's directory.

While the engine (and its gateway) are down, one order fills at the exchange and another is
canceled there; on restart the engine replays its journal, gates trading, asks the gateway
(GW_RECONCILE), books the missed fill once, closes the canceled order, raises
RECONCILIATION_DIFFERENCE alerts, and lifts the gate. A gateway that never answers keeps
trading halted until an admin RESUME GLOBAL.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from engine_crash_fixtures import Engine, query, venue_of_account1
from sim_fixtures import SimHandle, start_sim, wait_for
from venue_fixtures import command as _command

from bindings.wire import records as wire
from bindings.wire.spec import AdminAction, HeaderFlag, MsgType, QueryKind, Scope
from gateways.binance import BinanceGateway
from gateways.config import EngineEndpoints, GatewayConfig, Instrument
from gateways.engine_link import EngineLink
from gateways.sim import constants as c
from oms_core.engine.process import base_config, spawn_engine, wait_ready, write_config
from oms_core.enums import Alert, KillMode, OrderStatus, Reject
from oms_core.journal import EVENT, INPUT, JournalReader
from oms_core.recovery import KIND_RECON_DONE, RECON_MISSED_FILL

pytestmark = pytest.mark.timeout(90)

INST = Instrument(id=1, symbol="BTCUSDT", price_decimals=2, qty_decimals=5)
ASSETS = {"BTC": (1, 8), "USDT": (2, 8)}
E8 = 10**8


def _config(tmp: Path) -> Path:
    cfg = venue_of_account1(base_config(tmp, "ipc"))
    # the engine starts with the venue's balances of account "alice" (simulator defaults)
    cfg["clients"]["account1"]["cash"] = {"BTC": "10", "USDT": "1000000"}
    return write_config(cfg, tmp / "engine.toml")


async def _gateway(h: SimHandle, eps: dict[str, str], monkeypatch: Any) -> BinanceGateway:
    key, secret = h.keys[0]
    monkeypatch.setenv("SIM_GW_KEY", key)
    monkeypatch.setenv("SIM_GW_SECRET", secret)
    cfg = GatewayConfig(
        kind="binance", gateway_id=1, account_id=1, instruments=[INST],
        engine=EngineEndpoints(orders=eps["gateway_orders_1"], events=eps["gateway_events"],
                               market_data=eps["gateway_md"], bind=False),
        rest_url=h.base_url, ws_url=h.ws_url, api_key_env="SIM_GW_KEY",
        api_secret_env="SIM_GW_SECRET", request_timeout_s=2.0, reconnect_base_s=0.05,
        reconnect_max_s=0.2, stale_after_s=30.0)
    gw = BinanceGateway(cfg, EngineLink(cfg.engine, cfg.gateway_id), assets=ASSETS)
    await gw.start()
    await wait_for(gw.user_ready.is_set, timeout_s=10)
    return gw


async def _stop(gw: BinanceGateway) -> None:
    await gw.stop()
    gw.link.close()


def _order(ctx: zmq.Context, ep: str, cl: int, price: int, qty: int = 1000) -> Any:
    return _command(ctx, ep, "NEW_ORDER", cl, client_order_id=cl, price=price, quantity=qty,
                    account=1, strategy=1, instrument=1, side=1, order_type=2, tif=1)


def _resume(ctx: zmq.Context, ep: str, rid: int) -> Any:
    return _command(ctx, ep, "ADMIN", rid, action=int(AdminAction.RESUME),
                    scope=int(Scope.GLOBAL), kill_mode=int(KillMode.OFF))


def _journal(jdir: Path) -> tuple[list[tuple[int, bytes]], list[Any]]:
    inputs, events = [], []
    r = JournalReader(str(jdir))
    for rec in r:
        if rec.rtype == INPUT:
            inputs.append((rec.kind, bytes(rec.payload)))
        elif rec.rtype == EVENT:
            events.append(wire.decode(bytes(rec.payload)))
    r.close()
    return inputs, events


def _orders(ctx: zmq.Context, ep: str) -> dict[int, Any]:
    return {r.client_order_id: r for r in query(ctx, ep, int(QueryKind.ORDERS), 91)
            if r.msg_type == MsgType.ORDER_UPDATE}


def _reconciliations(jdir: Path) -> list[dict[str, int]]:
    """The summary of every reconciliation journaled so far (KIND_RECON_DONE inputs)."""
    return [json.loads(p) for k, p in _journal(jdir)[0] if k == KIND_RECON_DONE]


async def _order_on_fresh_prices(ctx: zmq.Context, ep: str, gw: BinanceGateway, cl: int,
                                 price: int) -> Any:
    """NEW_ORDER once the gateway's books are synced; sent again (client order id + 100)
    while the engine still refuses it for a missing or stale reference price: the book's
    first update after a (re)start may reach the engine just after the order."""
    await wait_for(lambda: not any(st.stale for st in gw.md.values()), timeout_s=10)
    no_price = {int(Reject.NO_REFERENCE_PRICE), int(Reject.STALE_REFERENCE_PRICE)}
    for attempt in range(50):
        a = await asyncio.to_thread(_order, ctx, ep, cl + 100 * attempt, price)
        if a.msg_type == MsgType.ACK or a.code not in no_price:
            return a
        await asyncio.sleep(0.1)
    return a


async def test_restart_books_missed_fill_closes_canceled_order_and_resumes(
        tmp_path: Path, monkeypatch: Any) -> None:
    h = await start_sim()
    assert h.server is not None
    ex = h.server.ex
    # a resting book of the simulator's own participant: reference prices for the risk checks
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    ex.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("45000.00"),
                  c.to_fixed("0.5"))
    ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("55000.00"),
                  c.to_fixed("0.5"))
    ctx = zmq.Context()
    jdir = tmp_path / "journal"
    cfg = _config(tmp_path)
    e = Engine(cfg, jdir)
    gw = None
    try:
        await asyncio.to_thread(e.start)
        assert not e.recovered or e.recovered["last_seq"] == 0
        gw = await _gateway(h, e.endpoints, monkeypatch)
        ep = e.endpoints["client"]
        # a trade at 49,000 gives the engine its reference price (last) through the gateway
        for side in (c.SIDE_SELL, c.SIDE_BUY):
            ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                          c.to_fixed("0.01"))
        await asyncio.sleep(0.5)
        a = await asyncio.to_thread(_order, ctx, ep, 1, 4_900_000)  # 49,000.00
        b = await asyncio.to_thread(_order, ctx, ep, 2, 4_890_000)  # 48,900.00
        assert a.msg_type == MsgType.ACK and b.msg_type == MsgType.ACK
        await wait_for(lambda: len(ex.open_orders(0, "BTCUSDT")) == 2, timeout_s=10)
        venue = {r.client_order_id: r for r in ex.open_orders(0, "BTCUSDT")}
        assert set(venue) == {f"oms-{a.order_id}", f"oms-{b.order_id}"}

        # engine and gateway die; meanwhile A fills and B is canceled at the exchange
        e.kill9()
        await _stop(gw)
        gw = None
        ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                      c.to_fixed("0.01"))
        ex.cancel_order(0, "BTCUSDT", str(venue[f"oms-{b.order_id}"].order_id), None)
        assert ex.open_orders(0, "BTCUSDT") == []

        # restart: the fresh gateway knows nothing; the engine must ask it
        e2 = Engine(cfg, jdir)
        start = asyncio.create_task(asyncio.to_thread(e2.start))
        await asyncio.sleep(0.3)  # the engine is gated and waiting for its gateway
        gw = await _gateway(h, e2.endpoints or {
            "gateway_orders_1": f"ipc://{tmp_path}/gw-orders-1",
            "gateway_events": f"ipc://{tmp_path}/gw-events",
            "gateway_md": f"ipc://{tmp_path}/gw-md"}, monkeypatch)
        await start
        assert e2.recovered["last_seq"] > 0
        ep = e2.endpoints["client"]
        orders = await asyncio.to_thread(_orders, ctx, ep)
        assert orders[1].status == OrderStatus.FILLED and orders[1].filled == 1000
        assert orders[2].status == OrderStatus.CANCELED
        pos = await asyncio.to_thread(query, ctx, ep, int(QueryKind.POSITIONS), 92)
        assert [(p.instrument, p.quantity) for p in pos] == [(1, 1000)]
        # balances equal the exchange's
        bals = {r.asset: r.total for r in await asyncio.to_thread(
            query, ctx, ep, int(QueryKind.BALANCES), 93)}
        venue_bal = {b["asset"]: b for b in ex.balances(0)}
        # the engine ledger keeps a spot trade in the position (quantity and cost)
        # and only fees in its balances: balance + position = the venue balance
        held = {1: 1000 * 1000, 2: -490 * E8}  # + 0.01 BTC; - its cost, 490 USDT
        for name, (aid, _dec) in ASSETS.items():
            v = venue_bal[name]
            want = c.to_fixed(v["free"]) + c.to_fixed(v["locked"])
            assert bals[aid] + held[aid] == want, (name, bals[aid], want)
        # trading resumed: a new order is accepted
        n = await asyncio.to_thread(_order, ctx, ep, 3, 4_700_000)
        assert n.msg_type == MsgType.ACK, n
        e2.stop()

        # the fill was booked once, as a reconciliation; alerts and the decisions journaled
        inputs, events = _journal(jdir)
        fills = [ev for ev in events if ev.msg_type == MsgType.FILL]
        assert len(fills) == 1 and fills[0].order_id == a.order_id
        alerts = [ev for ev in events if ev.msg_type == MsgType.RISK_ALERT
                  and ev.alert == Alert.RECONCILIATION_DIFFERENCE]
        # the restarted gateway follows its pre-restart orders and catches up their trades
        # itself; when its report of the missed fill comes before the reconciliation's
        # answer, the fill is booked live and the reconciliation finds nothing missed
        by_reconciliation = bool(e2.reconciled["reports"]["1"]["booked_fills"])
        missed = {1} if by_reconciliation else set()
        assert {al.a for al in alerts} & {1} == missed  # missed fill
        assert 2 in {al.a for al in alerts}  # order closed
        # account 1 has no CHECK_BALANCE: its balances are a cash ledger beside the
        # positions, never compared with the venue's wallet (no false RECON_BALANCE alert)
        assert 3 not in {al.a for al in alerts}
        rep = e2.reconciled["reports"]["1"]
        assert rep["balance_diffs"] == [] and rep["adopted"] == []
        kinds = [k for k, _ in inputs]
        assert 196 in kinds and 198 in kinds

        # a second restart reconciles again: nothing new is booked
        await _stop(gw)
        gw = None
        e3 = Engine(cfg, jdir)
        start = asyncio.create_task(asyncio.to_thread(e3.start))
        await asyncio.sleep(0.3)
        gw = await _gateway(h, {
            "gateway_orders_1": f"ipc://{tmp_path}/gw-orders-1",
            "gateway_events": f"ipc://{tmp_path}/gw-events",
            "gateway_md": f"ipc://{tmp_path}/gw-md"}, monkeypatch)
        await start
        # a restarted engine refuses orders until the gateway gives it a reference price again
        deadline = time.monotonic() + 10
        while True:
            n = await asyncio.to_thread(_order, ctx, e3.endpoints["client"], 4, 4_700_000)
            if n.msg_type == MsgType.ACK or time.monotonic() > deadline:
                break
            assert n.code == Reject.NO_REFERENCE_PRICE, n
            await asyncio.sleep(0.05)
        assert n.msg_type == MsgType.ACK, n
        e3.stop()
        _, events = _journal(jdir)
        assert len([ev for ev in events if ev.msg_type == MsgType.FILL]) == 1
    finally:
        if gw is not None:
            await _stop(gw)
        for x in (e, locals().get("e2"), locals().get("e3")):
            if x is not None:
                x.kill9()
        ctx.term()
        await h.server.stop()


def test_silent_gateway_keeps_trading_halted_until_admin_override(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    e = Engine(cfg, jdir).start()
    try:
        ok = _order(ctx, e.endpoints["client"], 1, 4_900_000)
        assert ok.msg_type == MsgType.ACK
        e.kill9()
        # no gateway at all: the reconciliation request is never answered
        e = Engine(cfg, jdir, "--reconcile-timeout", "0.5").start()
        ep = e.endpoints["client"]
        r = _order(ctx, ep, 2, 4_900_000)
        assert r.msg_type == MsgType.REJECT, r
        assert _resume(ctx, ep, 50).msg_type == MsgType.ACK  # the admin override
        assert _order(ctx, ep, 3, 4_900_000).msg_type == MsgType.ACK
        e.stop()
        inputs, events = _journal(jdir)
        alerts = [ev for ev in events if ev.msg_type == MsgType.RISK_ALERT
                  and ev.alert == Alert.RECONCILIATION_DIFFERENCE]
        assert [al.a for al in alerts] == [5]  # RECON_NO_ANSWER
        admins = [wire.decode(p) for k, p in inputs if k == MsgType.ADMIN]
        assert [(x.action, x.value != 0) for x in admins] == [
            (AdminAction.KILL, True), (AdminAction.RESUME, False)]  # gate, then the admin
        assert "reconciliation with exchange 1 failed" in e.err_path.read_text()
        # the override itself was journaled: a restart replays it (gate again, then answer)
    finally:
        e.kill9()
        ctx.term()


def test_clients_are_answered_while_the_engine_waits_for_reconciliation(tmp_path: Path) -> None:
    # `oms run` counts the engine as started once its sockets are bound (LISTENING): a
    # client connecting then must get its answers during the reconciliation wait, not
    # after it (a 5 s client timeout ran out while the engine waited 10 s for a gateway)
    cfg = _config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    e = Engine(cfg, jdir).start()
    try:
        assert _order(ctx, e.endpoints["client"], 1, 4_900_000).msg_type == MsgType.ACK
        e.kill9()
        # no gateway: the reconciliation is never answered and the wait lasts 8 s
        e = Engine(cfg, jdir, "--reconcile-timeout", "8")
        with open(e.err_path, "a") as err:
            e.proc = spawn_engine(e.args, err)
        assert e.proc.stdout is not None
        listening: dict[str, Any] = {}
        end = time.monotonic() + 30
        while not listening and time.monotonic() < end:
            word, _, rest = e.proc.stdout.readline().partition(" ")
            if word == "LISTENING":
                listening = json.loads(rest)
            assert word != "READY", "READY before LISTENING"
        t0 = time.monotonic()
        r = _order(ctx, listening["client"], 2, 4_900_000)
        assert r.msg_type == MsgType.REJECT and r.code == Reject.GLOBAL_HALT, r  # gated, answered
        assert time.monotonic() - t0 < 4, "answered only after the wait"
        seen = wait_ready(e.proc, 30)
        assert seen["RECONCILED"][1]["ok"] is False and "READY" in seen
    finally:
        e.kill9()
        ctx.term()


def test_failed_reconciliation_is_asked_again_and_trading_resumes_by_itself(
        tmp_path: Path) -> None:
    """A gateway whose first answer is incomplete (its venue timed out once) and that never
    restarts: the engine asks again, the second answer is complete, trading resumes with no
    admin. Seen: the halt lasted until an admin's RESUME (asked again only at a hello)."""
    cfg = _config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    e = Engine(cfg, jdir).start()
    try:
        assert _order(ctx, e.endpoints["client"], 1, 4_900_000).msg_type == MsgType.ACK
        e.kill9()
        e = Engine(cfg, jdir, "--reconcile-timeout", "1").start()
        orders = ctx.socket(zmq.PULL)
        reports = ctx.socket(zmq.PUSH)
        for sock, name in ((orders, "gateway_orders_1"), (reports, "gateway_events")):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(e.endpoints[name])
        asked = []
        end = time.monotonic() + 20
        while len(asked) < 2 and time.monotonic() < end:
            if not orders.poll(100):
                continue
            for r in wire.decode_frame(orders.recv()):
                if r.msg_type != MsgType.GW_RECONCILE:
                    continue
                asked.append(r.request_id)
                # the order never reached this venue; the first answer is cut short
                reports.send(wire.encode("GW_RECONCILE_END", r.request_id, len(asked),
                                         time.time_ns(), int(HeaderFlag.QUERY_ROW), account=1,
                                         gateway_id=1, code=-1 if len(asked) == 1 else 0))
        assert len(asked) == 2, asked
        ep = e.endpoints["client"]
        end = time.monotonic() + 10
        while (r := _order(ctx, ep, 10 + len(asked), 4_900_000)).msg_type != MsgType.ACK:
            asked.append(0)  # a new client order id each time
            assert time.monotonic() < end, r
            time.sleep(0.2)
        inputs, _events = _journal(jdir)
        admins = [wire.decode(p) for k, p in inputs if k == MsgType.ADMIN]
        # the gate, then the engine's own RESUME once reconciled (the test sent no ADMIN)
        assert [x.action for x in admins] == [AdminAction.KILL, AdminAction.RESUME]
        assert "asking again for the reconciliation that failed" in e.err_path.read_text()
        e.stop()
    finally:
        e.kill9()
        ctx.destroy(0)


async def test_gateway_restart_mid_run_is_reconciled_and_its_missed_fill_booked_once(
        tmp_path: Path, monkeypatch: Any) -> None:
    """The gateway dies while the engine runs; an order fills at the venue meanwhile. The new
    gateway process says hello (its GW_STATUS sequence starts again): the engine asks it
    (GW_RECONCILE) and books the fill once, without a restart of the engine."""
    h = await start_sim()
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    ex.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("45000.00"),
                  c.to_fixed("0.5"))
    ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("55000.00"),
                  c.to_fixed("0.5"))
    ctx = zmq.Context()
    jdir = tmp_path / "journal"
    e = Engine(_config(tmp_path), jdir)
    gw = None
    try:
        await asyncio.to_thread(e.start)
        gw = await _gateway(h, e.endpoints, monkeypatch)
        ep = e.endpoints["client"]
        for side in (c.SIDE_SELL, c.SIDE_BUY):
            ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                          c.to_fixed("0.01"))
        a = await _order_on_fresh_prices(ctx, ep, gw, 1, 4_900_000)
        assert a.msg_type == MsgType.ACK, a
        await wait_for(lambda: len(ex.open_orders(0, "BTCUSDT")) == 1, timeout_s=10)

        async def status() -> int:
            return (await asyncio.to_thread(_orders, ctx, ep))[a.client_order_id].status

        deadline = time.monotonic() + 10  # the venue holds it: its ACK is on the way
        while await status() != OrderStatus.NEW:
            assert time.monotonic() < deadline, "the venue's ACK was never booked"
            await asyncio.sleep(0.05)

        await _stop(gw)  # the gateway is gone (kill -9: the engine hears nothing more)
        gw = None
        ex.sim_submit("BTCUSDT", c.SIDE_SELL, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                      c.to_fixed("0.01"))
        assert ex.open_orders(0, "BTCUSDT") == []

        n_reconciled = len(_reconciliations(jdir))
        gw = await _gateway(h, e.endpoints, monkeypatch)  # a new process: empty order map

        async def filled() -> bool:
            o = (await asyncio.to_thread(_orders, ctx, ep))[a.client_order_id]
            return o.status == OrderStatus.FILLED and o.filled == 1000

        deadline = time.monotonic() + 15
        while not await filled():
            assert time.monotonic() < deadline, "the fill at the venue was never booked"
            await asyncio.sleep(0.2)
        pos = await asyncio.to_thread(query, ctx, ep, int(QueryKind.POSITIONS), 92)
        assert [(p.instrument, p.quantity) for p in pos] == [(1, 1000)]
        # trading never stopped: a new order goes to the new gateway
        n = await _order_on_fresh_prices(ctx, ep, gw, 2, 4_700_000)
        assert n.msg_type == MsgType.ACK, n
        await wait_for(lambda: len(ex.open_orders(0, "BTCUSDT")) == 1, timeout_s=10)
        # its hello was answered: the engine reconciled with it, without a restart
        await wait_for(lambda: len(_reconciliations(jdir)) > n_reconciled, timeout_s=10)
        assert e.stop() == 0
        _, events = _journal(jdir)
        fills = [ev for ev in events if ev.msg_type == MsgType.FILL]
        assert len(fills) == 1 and fills[0].order_id == a.order_id
        # booked by whichever came first: the new gateway's own trade catch-up of the order
        # it follows again, or the engine's reconciliation (then with its alert); once
        missed = [al.b for al in events if al.msg_type == MsgType.RISK_ALERT
                  and al.alert == Alert.RECONCILIATION_DIFFERENCE and al.a == RECON_MISSED_FILL]
        assert missed in ([], [fills[0].trade_id])
        assert sum(r["fills"] for r in _reconciliations(jdir)[n_reconciled:]) == len(missed)
    finally:
        if gw is not None:
            await _stop(gw)
        e.kill9()
        ctx.term()
        await h.server.stop()
