"""A desk on loopback for order-type tests: the real engine process, the project's Binance
gateway, the in-process simulated exchange (gateways/sim).

Engine instrument 1 is BTCUSDT with stops held by the engine; instrument 2 is ETHUSDT with
``native_stops`` (the venue holds them). Account 1 of the engine trades simulator account 0
("alice"). Commands go through a DEALER per command (bounded waits); what reached the venue is
read from the simulator's own order records.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zmq
from engine_crash_fixtures import Engine, query, venue_of_account1
from sim_fixtures import SimHandle, start_sim, wait_for

from bindings.wire import records as wire
from bindings.wire.spec import MsgType, QueryKind
from gateways.binance import BinanceGateway
from gateways.config import EngineEndpoints, GatewayConfig, Instrument
from gateways.engine_link import EngineLink
from gateways.sim import constants as c
from gateways.sim.exchange import OrderRecord
from oms_core.engine.process import ROOT, base_config, die_with_parent, write_config
from oms_core.enums import Reject

BTC = Instrument(id=1, symbol="BTCUSDT", price_decimals=2, qty_decimals=5)
ETH = Instrument(id=2, symbol="ETHUSDT", price_decimals=2, qty_decimals=4)
ASSETS = {"BTC": (1, 8), "USDT": (2, 8), "ETH": (3, 8)}


def engine_config(tmp: Path) -> Path:
    cfg = base_config(tmp, "ipc")
    cfg["assets"]["ETH"] = {"precision": 8}
    cfg["ids"]["assets"]["ETH"] = 3
    cfg["instruments"]["ETHUSDT"] = {
        "exchange": "exchange1", "base": "ETH", "quote": "USDT", "price_precision": 2,
        "qty_precision": 4, "tick": "0.01", "lot": "0.0001", "min_qty": "0.0001",
        "max_qty": "100000000.0000", "reference_price": "3000.00", "native_stops": True}
    cfg["ids"]["instruments"]["ETHUSDT"] = 2
    cfg["strategies"]["strategy1"]["instruments"].append("ETHUSDT")
    for name, qty in (("account1", "0.0100"), ("account2", "0.0100"), ("account3", "0.0001")):
        cfg["clients"][name]["orders"]["fixed_qty"]["ETHUSDT"] = qty
    return write_config(venue_of_account1(cfg), tmp / "engine.toml")


def command(ctx: zmq.Context, ep: str, name: str, rid: int, **kw: Any) -> Any:
    """Send one command on a fresh DEALER; return its ACK or REJECT (blocking, bounded)."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    try:
        s.send(wire.encode(name, rid, 0, time.time_ns(), 0, **kw))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if s.poll(100):
                for r in wire.decode_frame(s.recv()):
                    if r.request_id == rid and r.msg_type in (MsgType.ACK, MsgType.REJECT):
                        return r
        raise TimeoutError(f"{name} {rid} not answered")
    finally:
        s.close(0)


@dataclass
class Desk:
    sim: SimHandle
    engine: Engine
    gw: BinanceGateway
    ctx: zmq.Context
    tmp: Path
    monkeypatch: Any
    rid: int = 0

    @property
    def ex(self) -> Any:
        assert self.sim.server is not None
        return self.sim.server.ex

    @property
    def ep(self) -> str:
        return self.engine.endpoints["client"]

    # ---- the market (the simulator's own participant) ---------------------------------
    def rest(self, inst: Instrument, side: int, px: str, qty: str) -> None:
        self.ex.sim_submit(inst.symbol, side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed(px),
                           c.to_fixed(qty))

    def print_trade(self, inst: Instrument, px: str, qty: str = "0.01") -> None:
        """A trade between two orders of the simulator's participant at ``px``."""
        self.rest(inst, c.SIDE_SELL, px, qty)
        self.rest(inst, c.SIDE_BUY, px, qty)

    # ---- the engine ---------------------------------------------------------------------
    async def send(self, name: str, **kw: Any) -> Any:
        self.rid += 1
        return await asyncio.to_thread(command, self.ctx, self.ep, name, self.rid, **kw)

    async def order(self, inst: Instrument, cl: int, side: int, order_type: int, qty: int,
                    price: int = 0, trigger: int = 0, tif: int = 1, flags: int = 0,
                    trail: int = 0, priced_within_s: float = 0.0) -> Any:
        """Submit and expect an ACK; with ``priced_within_s``, an order refused for want of a
        fresh reference price (a gateway process that has not yet published its book) is
        sent again until the price is there, for at most that long."""
        end = time.monotonic() + priced_within_s
        while True:
            r = await self.send("NEW_ORDER", client_order_id=cl, price=price,
                                trigger_price=trigger, quantity=qty, trail_offset=trail,
                                account=1, strategy=1, instrument=inst.id, side=side,
                                order_type=order_type, tif=tif, order_flags=flags)
            if (r.msg_type != MsgType.REJECT or time.monotonic() > end or r.code not in (
                    Reject.STALE_REFERENCE_PRICE, Reject.NO_REFERENCE_PRICE)):
                break
            await asyncio.sleep(0.05)
        assert r.msg_type == MsgType.ACK, r
        return r

    async def orders(self) -> dict[int, Any]:
        """The engine's orders of account 1 by client order id (ORDERS query)."""
        self.rid += 1
        rows = await asyncio.to_thread(query, self.ctx, self.ep, int(QueryKind.ORDERS),
                                       self.rid)
        return {r.client_order_id: r for r in rows if r.msg_type == MsgType.ORDER_UPDATE}

    async def wait_engine(self, cl: int, pred: Any, timeout_s: float = 10.0) -> Any:
        end = time.monotonic() + timeout_s
        while True:
            o = (await self.orders()).get(cl)
            if o is not None and pred(o):
                return o
            if time.monotonic() > end:
                raise AssertionError(f"engine order {cl}: {o}\n{self.logs()}")
            await asyncio.sleep(0.05)

    def logs(self) -> str:
        """The last lines the engine and a gateway process wrote (for a failure's message)."""
        out = []
        for path in (self.engine.err_path, self.tmp / "gateway-stderr.log"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    # ---- the venue's own records ----------------------------------------------------------
    def venue(self, order_id: int) -> list[OrderRecord]:
        """Every simulator record under our client order id of ``order_id``, oldest first."""
        cid = f"oms-{order_id}"
        return sorted((r for r in self.ex.accounts[0].records.values()
                       if r.client_order_id == cid), key=lambda r: r.order_id)

    async def wait_venue(self, order_id: int, pred: Any, timeout_s: float = 10.0
                         ) -> OrderRecord:
        end = time.monotonic() + timeout_s
        while True:
            recs = self.venue(order_id)
            if recs and pred(recs[-1]):
                return recs[-1]
            if time.monotonic() > end:
                raise AssertionError(f"venue order oms-{order_id}: {recs}")
            await asyncio.sleep(0.02)

    # ---- the gateway ------------------------------------------------------------------------
    async def start_gateway(self) -> BinanceGateway:
        key, secret = self.sim.keys[0]
        self.monkeypatch.setenv("SIM_GW_KEY", key)
        self.monkeypatch.setenv("SIM_GW_SECRET", secret)
        eps = self.engine.endpoints
        cfg = GatewayConfig(
            kind="binance", gateway_id=1, account_id=1, instruments=[BTC, ETH],
            engine=EngineEndpoints(orders=eps["gateway_orders_1"], events=eps["gateway_events"],
                                   market_data=eps["gateway_md"], bind=False),
            rest_url=self.sim.base_url, ws_url=self.sim.ws_url, api_key_env="SIM_GW_KEY",
            api_secret_env="SIM_GW_SECRET", request_timeout_s=2.0, reconnect_base_s=0.05,
            reconnect_max_s=0.2, stale_after_s=30.0)
        gw = BinanceGateway(cfg, EngineLink(cfg.engine, cfg.gateway_id), assets=ASSETS)
        await gw.start()
        await wait_for(gw.user_ready.is_set, timeout_s=10)
        self.gw = gw
        return gw

    async def stop_gateway(self) -> None:
        await self.gw.stop()
        self.gw.link.close()
        self.gw = None  # type: ignore[assignment]

    async def start_gateway_process(self) -> subprocess.Popen[bytes]:
        """``python -m gateways --config F`` as a child (kill -9 it to simulate a crash);
        return once its user data stream is connected to the simulator."""
        eps = self.engine.endpoints
        cfg = GatewayConfig(
            kind="binance", gateway_id=1, account_id=1, instruments=[BTC, ETH],
            engine=EngineEndpoints(orders=eps["gateway_orders_1"], events=eps["gateway_events"],
                                   market_data=eps["gateway_md"], bind=False),
            rest_url=self.sim.base_url, ws_url=self.sim.ws_url, api_key_env="SIM_GW_KEY",
            api_secret_env="SIM_GW_SECRET", request_timeout_s=2.0, reconnect_base_s=0.05,
            reconnect_max_s=0.2, stale_after_s=30.0,
            assets={k: list(v) for k, v in ASSETS.items()})
        path = self.tmp / "gateway.json"
        path.write_text(json.dumps(asdict(cfg)))
        key, secret = self.sim.keys[0]
        assert self.sim.server is not None
        before = set(self.sim.server.subs.get("__user0", ()))
        with open(self.tmp / "gateway-stderr.log", "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateways", "--config", str(path), "--log-level",
                 "WARNING"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT), "SIM_GW_KEY": key,
                     "SIM_GW_SECRET": secret}, preexec_fn=die_with_parent)
        try:
            await wait_for(lambda: set(self.sim.server.subs.get("__user0", ())) - before
                           or proc.poll() is not None, timeout_s=20)
        except AssertionError:
            proc.kill()
            proc.wait(10)
            raise
        assert proc.poll() is None, (self.tmp / "gateway-stderr.log").read_text()[-2000:]
        return proc


async def open_desk(tmp: Path, monkeypatch: Any) -> Desk:
    """Simulator with a resting book on both symbols, the engine, the gateway."""
    h = await start_sim()
    assert h.server is not None
    ex = h.server.ex
    for asset in ("BTC", "ETH", "USDT"):
        ex.ledger.deposit(ex.sim_account, ex.asset_index[asset], 10**16)
    ctx = zmq.Context()
    engine = Engine(engine_config(tmp), tmp / "journal")
    desk = Desk(h, engine, None, ctx, tmp, monkeypatch)  # type: ignore[arg-type]
    try:
        await asyncio.to_thread(engine.start)
        await desk.start_gateway()
    except BaseException:
        await close_desk(desk)
        raise
    # deep, far from where the tests print trades (a print below a resting bid would trade
    # with that bid instead); the tests add the bids their market orders fill into
    desk.rest(BTC, c.SIDE_BUY, "45000.00", "1")
    desk.rest(BTC, c.SIDE_SELL, "55000.00", "1")
    desk.rest(ETH, c.SIDE_BUY, "2500.00", "10")
    desk.rest(ETH, c.SIDE_SELL, "3500.00", "10")
    # the engine's reference prices come from the gateway's trade stream
    desk.print_trade(BTC, "50000.00")
    desk.print_trade(ETH, "3000.00")
    await asyncio.sleep(0.3)
    return desk


async def close_desk(desk: Desk) -> None:
    if desk.gw is not None:
        try:
            await desk.stop_gateway()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
    desk.engine.kill9()
    desk.ctx.term()
    assert desk.sim.server is not None
    await desk.sim.server.stop()
