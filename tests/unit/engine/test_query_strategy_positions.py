"""A POSITIONS query with a strategy answers that strategy's positions (the ledger's account x
strategy x instrument pool); without one, the account's positions per instrument, on every
exchange the account trades."""

from __future__ import annotations

import time

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, MsgType, QueryKind
from oms_core.engine import Engine, build_core, load_engine_config

# two exchanges (1 and 2), one instrument each, two strategies trading them
TOML = """
[engine]
commands = "ipc:///tmp/unused"
signals = ""
journal_dir = ""

[security]
mode = "off"

[assets]
BTC = { precision = 8 }
USDT = { precision = 8 }

[exchanges]
exchange1 = { kind = "sim" }
exchange2 = { kind = "sim" }

[instruments.BTCUSDT]
exchange = "exchange1"
base = "BTC"
quote = "USDT"
price_precision = 2
qty_precision = 5
tick = "0.01"
lot = "0.00001"
max_qty = "10000000"
reference_price = "50000.00"

[instruments.BTCUSDT-B]
exchange = "exchange2"
base = "BTC"
quote = "USDT"
price_precision = 2
qty_precision = 5
tick = "0.01"
lot = "0.00001"
max_qty = "10000000"
reference_price = "50000.00"

[strategies]
one = { instruments = ["BTCUSDT", "BTCUSDT-B"] }
two = { instruments = ["BTCUSDT", "BTCUSDT-B"] }

[clients.one]
strategies = ["one", "two"]
limits = { max_open_orders = 1000 }
orders = { entry = "limit", fixed_qty = "0.00001" }
exchange_accounts = { exchange1 = {}, exchange2 = {} }
"""
IDS = {"assets": {"BTC": 1, "USDT": 2}, "exchanges": {"exchange1": 1, "exchange2": 2},
       "instruments": {"BTCUSDT": 1, "BTCUSDT-B": 2}, "accounts": {"one": 1},
       "strategies": {"one": 1, "two": 2}}


def _run(e: Engine, frame: bytes, gateway: bool = False) -> list:
    lp = e.loop
    lp.begin(3, (1 << 64) - 1, 0b10, False)
    if gateway:
        lp.on_gateway_frame(frame, time.time_ns())
    else:
        lp.on_client_frame(frame, time.time_ns())
    lp.commit()
    return [r for f in lp.reply.frames() for r in wire.decode_frame(f)]


def _buy(e: Engine, rid: int, strategy: int, instrument: int, qty: int) -> None:
    ans = _run(e, wire.encode("NEW_ORDER", rid, rid, 0, client_order_id=rid, price=5_000_000,
                              quantity=qty, account=1, strategy=strategy,
                              instrument=instrument, side=1, order_type=2, tif=1))
    ack = next(r for r in ans if r.msg_type == MsgType.ACK)
    common = {"order_id": ack.order_id, "account": 1, "instrument": instrument}
    _run(e, wire.encode("GW_EXEC_REPORT", 0, 2 * rid, 0, exec_type=int(ExecType.ACK),
                        **common) + wire.encode(
        "GW_EXEC_REPORT", 0, 2 * rid + 1, 0, exec_type=int(ExecType.FILL), trade_id=rid,
        last_qty=qty, last_price=5_000_000, cum_qty=qty, fee_asset=2, liquidity=1, **common),
        gateway=True)


def _positions(e: Engine, strategy: int) -> dict[tuple[int, int], int]:
    rows = _run(e, wire.encode("QUERY", 99, 99, 0, kind=int(QueryKind.POSITIONS), account=1,
                               strategy=strategy, instrument=ANY_ID))
    return {(r.strategy, r.instrument): r.quantity for r in rows
            if r.msg_type == MsgType.POSITION_UPDATE}


def test_positions_per_strategy_and_across_exchanges() -> None:
    cfg = load_engine_config(TOML, ids=IDS)
    e = Engine(build_core(cfg), journal=None, config=cfg)
    _buy(e, 1, 1, 1, 100)  # strategy 1 at exchange 1
    _buy(e, 2, 1, 2, 30)  # strategy 1 at exchange 2
    _buy(e, 3, 2, 1, 7)  # strategy 2 at exchange 1
    assert _positions(e, ANY_ID) == {(ANY_ID, 1): 107, (ANY_ID, 2): 30}
    assert _positions(e, 1) == {(1, 1): 100, (1, 2): 30}
    assert _positions(e, 2) == {(2, 1): 7}
    assert _positions(e, 3) == {}  # a strategy that never traded has no positions
