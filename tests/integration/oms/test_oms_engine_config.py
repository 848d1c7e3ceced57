"""The engine loads the issue-6 TOML (one shard's clients) and sizes SIGNALs per client with
``oms_core.signals.apply_signal``."""

from __future__ import annotations

import time
from pathlib import Path

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MdFlag
from oms_core.demo import write_demo_config
from oms_core.engine.config import build_core, load_engine_config, shard_endpoint
from oms_core.engine.server import Engine


def test_shard_endpoints() -> None:
    assert shard_endpoint("tcp://127.0.0.1:5560", 0) == "tcp://127.0.0.1:5560"
    assert shard_endpoint("tcp://127.0.0.1:5560", 2) == "tcp://127.0.0.1:5760"
    assert shard_endpoint("ipc:///tmp/oms-gw", 1) == "ipc:///tmp/oms-gw-s1"


def test_engine_of_each_shard_holds_its_own_clients(tmp_path: Path) -> None:
    path = write_demo_config(tmp_path)
    path.write_text(path.read_text().replace("[clients.carol]\n", "[clients.carol]\nshard = 1\n"))
    s0, s1 = load_engine_config(path, shard=0), load_engine_config(path, shard=1)
    assert [a["id"] for a in s0.accounts] == [0, 1] and [a["id"] for a in s1.accounts] == [2]
    assert s1.client == shard_endpoint(s0.client, 1)
    assert {s.id: s.accounts for s in s0.strategies} == {1: [0, 1], 2: [1]}
    assert {s.id: s.accounts for s in s1.strategies} == {1: [], 2: [2]}


def test_signal_gives_one_answer_per_client(tmp_path: Path) -> None:
    cfg = load_engine_config(write_demo_config(tmp_path))
    engine = Engine(build_core(cfg), config=cfg)
    ts = time.time_ns()
    eth = cfg.oms.instruments["ETHUSDT"].id
    engine.core.set_price(eth, 300_000, 299_990, 300_010, ts)
    trend = cfg.oms.strategies["trend"].id
    rec = wire.decode(wire.encode("SIGNAL", 1, 0, ts, value=1, price=0, account=ANY_ID,
                                  strategy=trend, instrument=eth, mode=1))
    seq = engine.loop.seq
    code, oid, *_ = engine.commands.signal(rec, ts)
    assert code == 0 and oid
    # alice (1 ETH) and bob (2 ETH) each got an order; one answer record per client (the
    # core's own events are drained by the loop, which this direct call bypasses)
    assert engine.loop.seq == seq + 2
    alice = engine.core.strategy_position(0, trend, eth)
    bob = engine.core.strategy_position(1, trend, eth)
    assert alice["open_buy"] == 10_000 and bob["open_buy"] == 20_000
    # a signal that names one account acts for that client only
    rec = wire.decode(wire.encode("SIGNAL", 2, 0, ts + 1, value=-1, price=0, account=1,
                                  strategy=trend, instrument=eth, mode=1))
    code, oid, *_ = engine.commands.signal(rec, ts + 1)
    assert code == 0 and oid
    assert engine.loop.seq == seq + 3  # only bob answered: the signal named his account


def test_signals_price_on_live_bars_of_the_strategy_interval(tmp_path: Path) -> None:
    """Live, the open of the current bar and the close of the previous one are different
    prices, built from the trades the engine applies at the strategy's bar interval;
    volatility counts completed bars, not trades; a restored engine has the same bars."""
    from oms_core.engine.startup import engine_state, restore_engine_state

    path = write_demo_config(tmp_path)
    text = path.read_text().replace(
        'instruments = ["BTCUSDT", "ETHUSDT"]\nbar_interval_s = 1\n',
        'instruments = ["BTCUSDT", "ETHUSDT"]\nbar_interval_s = 60\n', 1)
    assert "bar_interval_s = 60" in text
    # alice enters with a limit at the open of the current bar, bob at the previous close
    text = text.replace('fixed_qty = { BTCUSDT = "0.05", ETHUSDT = "1" }',
                        'fixed_qty = { BTCUSDT = "0.05", ETHUSDT = "1" }\nentry = "limit"\n'
                        'entry_price = "open"')
    text = text.replace('fixed_qty = { BTCUSDT = "0.1", ETHUSDT = "2" }',
                        'fixed_qty = { BTCUSDT = "0.1", ETHUSDT = "2" }\nentry = "limit"\n'
                        'entry_price = "close"')
    path.write_text(text)
    cfg = load_engine_config(path)
    engine = Engine(build_core(cfg), config=cfg)
    eth, trend = cfg.oms.instruments["ETHUSDT"].id, cfg.oms.strategies["trend"].id
    minute = 60 * 10**9
    t0 = (time.time_ns() // minute) * minute
    # bar 0: 3000.00 .. 3010.00 (close); bar 1 opens at 3020.00, trades at 3030.00
    for ts, px in ((t0, 300_000), (t0 + 30 * 10**9, 301_000), (t0 + minute, 302_000),
                   (t0 + minute + 10**9, 303_000)):
        engine.loop.on_gateway_frame(wire.encode(
            "GW_MARKET_DATA", 0, 1, ts, bid=px - 1, bid_qty=10, ask=px + 1, ask_qty=10,
            last=px, last_qty=1, md_flags=int(MdFlag.TRADE), instrument=eth), ts)
    ts = t0 + minute + 2 * 10**9
    rec = wire.decode(wire.encode("SIGNAL", 1, 0, ts, value=1, price=0, account=ANY_ID,
                                  strategy=trend, instrument=eth, mode=1))
    code, _, *_ = engine.commands.signal(rec, ts)
    assert code == 0
    orders = {a: engine.core.order(engine.core.live_orders(a)[0]) for a in (0, 1)}
    assert orders[0]["price"] == 302_000  # alice: the open of the current bar
    assert orders[1]["price"] == 301_000  # bob: the close of the previous bar
    bars = engine.bars
    assert bars.completed(minute, eth) == [301_000]  # one completed bar from four trades
    # the bars survive a snapshot
    state = engine_state(engine)
    again = Engine(build_core(cfg), config=cfg)
    restore_engine_state(again, state)
    assert again.bars.state() == bars.state()
