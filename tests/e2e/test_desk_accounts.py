"""`oms run` on examples/desk.toml: three clients, two exchanges, each client on venue
accounts of its own.

Real processes on loopback (two simulators, the engine, the Binance gateway for spot_a, the
ccxt gateway for spot_b, the writer), orders and a signal through the engine's command socket
(bindings/client.py). Asserted from each simulator's own per-account records (its REST API,
signed with each account's generated keys): no order ever reached another client's account,
an order of a client with no account at an exchange is refused there, the fees are charged
in the asset the venue says and the engine stores that asset, and each client's engine
position equals its own venue account's trades, at both exchanges.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from desk import PREFIX, Desk, booked_fees

from oms_core.enums import OrderStatus, Reject, Side

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_each_client_trades_on_its_own_venue_accounts(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    run = desk.start()
    cfg, run_dir = desk.cfg, desk.run_dir
    ids = {n: c.id for n, c in cfg.clients.items()}
    inst = cfg.instruments
    strategy_of = {i: s.id for s in cfg.strategies.values() for i in s.instruments}
    try:
        names = {n for n in os.listdir(run_dir / "logs")}
        assert {"gateway-spot_a-0.log", "gateway-spot_b-0.log"} <= names
        venues = desk.venues
        assert len({v.key for v in venues.values()}) == 4  # alice x 2, bob, carol
        client = desk.c
        # market buys of each client at each exchange it has an account at
        plan = [("alice", "BTCUSDT", "0.01"), ("alice", "SOLUSDT", "5"),
                ("alice", "ETHUSDT_B", "0.1"), ("bob", "ETHUSDT", "0.3"),
                ("bob", "BTCUSDT", "0.002"), ("carol", "ETHUSDT_B", "0.2"),
                ("carol", "SOLUSDT", "2")]
        order_client: dict[int, str] = {}
        for who, sym, qty in plan:
            # until both gateways have published prices
            r = desk.buy_sell(who, sym, Side.BUY, qty)
            assert r.ok, (who, sym, r)
            order_client[r.order_id] = who
        # bob has no account at spot_b: his order there is refused, never sent on other keys
        stray = client.submit(inst["SOLUSDT"].id, Side.BUY, "1", account=ids["bob"],
                              strategy=strategy_of["SOLUSDT"])
        # a signal: alice (vol brackets) and bob (pct brackets) enter BTCUSDT
        client.signal(inst["BTCUSDT"].id, 1, strategy=strategy_of["BTCUSDT"])

        def differences() -> list[tuple[str, Any, Any]]:
            """Where a client's engine positions or balances differ from its venue accounts'
            (empty once every order came back; re-read until then: fills are in flight)."""
            out: list[tuple[str, Any, Any]] = []
            for who in ids:
                held = desk.positions(who)
                if not held:
                    out.append((who, held, "holds nothing"))
            out += desk.differences()
            if desk.not_final(order_client):
                out.append(("orders", "not all final", None))
            return out

        def settle() -> list[tuple[str, Any, Any]]:
            end = time.monotonic() + 60
            while (diff := differences()) and time.monotonic() < end:
                time.sleep(0.5)
            return diff

        # each client's engine positions equal its own venue accounts' trades at both
        # venues, and its balances what those accounts hold together (fees in the coin too)
        assert settle() == []
        # alice's positions per strategy: trend at spot_a, swing at spot_b; together her total
        per_strategy = {st.name: {p.instrument: p.quantity for p in client.positions(
            account=ids["alice"], strategy=st.id).rows if p.quantity}
            for st in cfg.strategies.values()}
        assert set(per_strategy["trend"]) == {inst["BTCUSDT"].id}
        assert set(per_strategy["swing"]) == {inst["SOLUSDT"].id, inst["ETHUSDT_B"].id}
        assert {**per_strategy["trend"], **per_strategy["swing"]} == desk.positions("alice")
        held = {who: {cfg.instrument_by_id(k).symbol for k in desk.positions(who)}
                for who in ids}
        assert {"BTCUSDT", "SOLUSDT", "ETHUSDT_B"} <= held["alice"]
        assert held["bob"] == {"ETHUSDT", "BTCUSDT"}
        assert held["carol"] == {"ETHUSDT_B", "SOLUSDT"}
        # every order at a venue account is an engine order of that account's client
        seen: dict[str, tuple[str, str]] = {}
        for (ex, who), v in venues.items():
            mine = desk.engine_orders(who)
            for o in v.orders():
                cid = o["clientOrderId"]
                assert cid.startswith(PREFIX) and int(cid[len(PREFIX):]) in mine, (ex, who, o)
                assert cid not in seen, (cid, seen[cid], (ex, who))
                seen[cid] = (ex, who)
        for oid, who in order_client.items():
            assert seen[f"{PREFIX}{oid}"][1] == who
        if stray.ok:  # accepted by the engine: the spot_b gateway refused it
            assert f"{PREFIX}{stray.order_id}" not in seen
            end = time.monotonic() + 10
            while time.monotonic() < end and (
                    desk.engine_orders("bob")[stray.order_id].status != OrderStatus.REJECTED):
                time.sleep(0.2)
            assert desk.engine_orders("bob")[stray.order_id].status == OrderStatus.REJECTED
        # kill -9 of the engine: the supervisor restarts it; it reconciles with both gateways,
        # every venue account of each, and trades on; nothing lost or doubled
        client.close()
        desk.client = None
        pid = next(p["pid"] for p in json.loads((run_dir / "state.json").read_text())[
            "processes"] if p["name"] == "engine-0")
        os.kill(pid, signal.SIGKILL)
        log = run_dir / "logs" / "engine-0.log"
        end = time.monotonic() + 60
        # (the first start's gateways said hello and were reconciled too: read the second's)
        while time.monotonic() < end and "RECONCILED " not in log.read_text().partition(
                "--- start 2 at")[2]:
            time.sleep(0.3)
        line = next(x for x in log.read_text().partition("--- start 2 at")[2].splitlines()
                    if x.startswith("RECONCILED "))
        rec = json.loads(line[len("RECONCILED "):])
        assert rec["ok"] and rec["missing"] == [], rec
        assert all(r["balance_diffs"] == [] for r in rec["reports"].values()), rec
        assert rec["accounts"] == {"0": [ids["alice"], ids["bob"]],
                                   "1": [ids["alice"], ids["carol"]]}
        client = desk.connect()
        # (swing is single-entry: its clients are in, so they reduce)
        for who, sym, side, qty in (("bob", "ETHUSDT", Side.BUY, "0.1"),
                                    ("carol", "SOLUSDT", Side.SELL, "1"),
                                    ("alice", "ETHUSDT_B", Side.SELL, "0.05")):
            # trading resumes once the reconciliation lifted the gate
            r = desk.until_accepted(lambda who=who, sym=sym, side=side, qty=qty: client.submit(
                inst[sym].id, side, qty, account=ids[who], strategy=strategy_of[sym]),
                retry=tuple(Reject))
            assert r.ok, (who, sym, r)
            order_client[r.order_id] = who
        assert settle() == []
        # the venues charge buy fees in the base asset
        venue_fees = desk.venue_fees()
    finally:
        desk.stop()
        run.kill()
    # the engine booked each fee with the asset the venue charged (DuckDB, after the stop)
    assert booked_fees(run.database) == venue_fees
