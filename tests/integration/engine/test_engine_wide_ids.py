"""Account and strategy ids beyond 63 through the real engine with CURVE on: access sets are
exact whatever the ids (no 64-id bit mask that drops the rest or means "all")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from bindings.client import OmsClient, ProtocolError
from bindings.security import CurveClientKeys
from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType, QueryKind, SignalMode, WireError
from oms_core.engine.config import build_core, load_engine_config
from oms_core.engine.process import EngineProcess, base_config, engine_settings, write_keys
from oms_core.enums import OrderStatus, Side

pytestmark = pytest.mark.timeout(120)

WIDE = [3, 70, 130]  # the trader's accounts
ACCOUNTS = [1, 3, 36, 64, 69, 70, 99, 130]


@pytest.fixture(scope="module")
def wide_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("wide")
    cfg = base_config(tmp, "ipc", security=True, max_accounts=256, max_strategies=256)
    strategies = [f"strategy{s}" for s in (1, 36, 99, 100)]
    cfg["strategies"] = {s: {"instruments": ["BTCUSDT"]} for s in strategies}
    cfg["ids"]["strategies"] = {s: int(s[8:]) for s in strategies}
    cfg["clients"] = {f"account{a}": {
        "strategies": strategies if a in (70, 99) else [],
        "limits": {"max_open_orders": 1000},
        "orders": {"entry": "limit",
                   "fixed_qty": {"BTCUSDT": "0.00100" if a in (70, 99) else "0.00001"}},
        # the gateway of exchange1 trades the venue accounts 70 and 99 only
        "exchange_accounts": {"exchange1": {}} if a in (70, 99) else {}} for a in ACCOUNTS}
    cfg["ids"]["accounts"] = {f"account{a}": a for a in ACCOUNTS}
    # account 69 trades ETHUSDT (instrument 2) at exchange2, whose gateway is another key
    x1 = cfg["exchanges"]["exchange1"]
    cfg["exchanges"]["exchange2"] = {"kind": "sim", "orders": f"ipc://{tmp}/gw-orders-2",
                                     "events": x1["events"], "market_data": x1["market_data"]}
    cfg["ids"]["exchanges"]["exchange2"] = 2
    cfg["assets"]["ETH"] = {"precision": 8}
    cfg["ids"]["assets"]["ETH"] = 3
    cfg["instruments"]["ETHUSDT"] = {**cfg["instruments"]["BTCUSDT"], "exchange": "exchange2",
                                     "base": "ETH"}
    cfg["ids"]["instruments"]["ETHUSDT"] = 2
    cfg["clients"]["account69"]["exchange_accounts"] = {"exchange2": {}}
    cfg["security"]["users"] = {
        "wide": {"role": "trader", "clients": [f"account{a}" for a in WIDE]},
        "pub": {"role": "publisher", "strategies": ["strategy100"]},
        "admin": {"role": "admin"}}
    keys = write_keys(cfg)
    keys["gw"] = keys["gateway-exchange1"]  # venue accounts 70 and 99, exchange1's orders
    with EngineProcess(cfg, tmp) as e:
        yield e, keys


def _client(e: EngineProcess, keys: CurveClientKeys, account: int, **kw: Any) -> OmsClient:
    return OmsClient(e.endpoints["client"], account=account, strategy=1, curve=keys,
                     timeout=3, **kw)


def _refused(call: Any) -> bool:
    try:
        call()
    except ProtocolError as exc:
        return exc.error == WireError.UNAUTHORIZED
    return False


def test_trader_acts_on_its_accounts_above_63_only(wide_engine: Any) -> None:
    e, keys = wide_engine
    with _client(e, keys["wide"], 70) as c:
        for account in (70, 130, 3):
            a = c.submit(1, Side.BUY, 5, 4_999_000, account=account)
            assert a.ok and a.account == account, (account, a)
            assert c.query(QueryKind.ORDER, account=account, order_id=a.order_id).ok
            assert c.cancel(a.order_id, account=account).ok
        for account in (69, 64, 99, 1):
            assert _refused(lambda acc=account: c.submit(1, Side.BUY, 5, 4_999_000,
                                                         account=acc)), account
            assert _refused(lambda acc=account: c.orders(account=acc)), account
            assert _refused(lambda acc=account: c.mass_cancel(account=acc)), account


def test_hello_listing_accounts_above_63_follows_exactly_those(wide_engine: Any) -> None:
    e, keys = wide_engine
    with _client(e, keys["wide"], 70) as c, _client(e, keys["admin"], 1) as adm:
        assert c.hello([70, 130]).ok
        c.events(0.2)  # whatever came before
        placed = {a: adm.submit(1, Side.BUY, 5, 4_999_000, account=a) for a in ACCOUNTS}
        assert all(a.ok for a in placed.values()), placed
        seen: set[int] = set()
        end = time.monotonic() + 3
        while time.monotonic() < end and seen != {70, 130}:
            seen |= {ev.account for ev in c.events(0.1) if ev.msg_type == MsgType.ORDER_UPDATE}
        time.sleep(0.3)  # anything else would have arrived with them
        seen |= {ev.account for ev in c.events(0.1) if ev.msg_type == MsgType.ORDER_UPDATE}
        assert seen == {70, 130}
        assert c.hello([70, 69]).code != 0  # not its account: refused, subscription kept
        for a in placed.values():
            assert adm.cancel(a.order_id, account=a.account).ok


def test_publisher_signals_its_strategy_above_63_only(wide_engine: Any) -> None:
    e, keys = wide_engine
    with OmsClient(e.endpoints["client"], curve=keys["pub"], timeout=3) as p:
        got = p.signal(1, 0, SignalMode.DIRECTION, strategy=100)  # flat: no order needed
        assert got is not None
        for strategy in (99, 36):
            assert _refused(lambda st=strategy: p.signal(1, 0, SignalMode.DIRECTION,
                                                         strategy=st)), strategy


def test_gateway_reports_for_its_venue_account_above_63_only(wide_engine: Any) -> None:
    """The gateway of exchange1 moves the order of its venue account 70, not that of account
    69 at exchange2 (a gateway key of the full format is of one exchange)."""
    e, keys = wide_engine
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        keys["gw"].apply(push)
        push.connect(e.endpoints["gateway_events"])
        with _client(e, keys["admin"], 1) as adm:
            mine = adm.submit(1, Side.BUY, 5, 4_999_000, account=70)
            other = adm.submit(2, Side.BUY, 5, 4_999_000, account=69)  # at exchange2
            assert mine.ok and other.ok
            for seq, o in enumerate((mine, other), 1):
                push.send(wire.encode("GW_EXEC_REPORT", 0, seq, time.time_ns(),
                                      order_id=o.order_id, exec_type=ExecType.ACK,
                                      account=o.account, instrument=1 if o is mine else 2))

            def status(o: Any) -> int:
                return adm.query(QueryKind.ORDER, account=o.account,
                                 order_id=o.order_id).rows[0].status

            end = time.monotonic() + 5
            while time.monotonic() < end and status(mine) != OrderStatus.NEW:
                time.sleep(0.05)
            assert status(mine) == OrderStatus.NEW
            assert status(other) == OrderStatus.PENDING_NEW
            for o in (mine, other):
                adm.cancel(o.order_id, account=o.account)
    finally:
        ctx.destroy(0)


def test_config_refuses_ids_the_engine_cannot_hold(tmp_path: Path) -> None:
    """The core of the configuration is refused (the engine exits at start)."""
    cfg = base_config(tmp_path, "ipc", max_accounts=128)
    cfg["ids"]["accounts"] = {"account1": 200, "account2": 201, "account3": 202}
    with pytest.raises(ValueError, match="engine.max_accounts: is 128"):
        build_core(engine_settings(cfg))
    cfg = base_config(tmp_path, "ipc")
    cfg["ids"]["strategies"] = {"strategy1": 70}
    with pytest.raises(ValueError, match="engine.max_strategies: is 64"):
        build_core(engine_settings(cfg))
    cfg = base_config(tmp_path, "ipc", max_accounts=1 << 20)
    with pytest.raises(ValueError, match="max_accounts"):
        build_core(engine_settings(cfg))
    cfg = base_config(tmp_path, "ipc", max_accounts=256)
    cfg["ids"]["accounts"] = {"account1": 200, "account2": 201, "account3": 202}
    assert engine_settings(cfg).max_accounts == 256


def test_full_configuration_takes_more_than_64_accounts(tmp_path: Path) -> None:
    src = (Path(__file__).parents[3] / "examples" / "oms.toml").read_text()
    path = tmp_path / "oms.toml"
    path.write_text(src.replace("[engine]\n", "[engine]\nmax_accounts = 200\n"
                                "max_strategies = 300\n", 1))
    cfg = load_engine_config(path)
    assert (cfg.max_accounts, cfg.max_strategies) == (200, 300)
