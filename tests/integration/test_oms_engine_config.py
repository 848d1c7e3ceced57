"""The engine loads the issue-6 TOML (one shard's clients) and sizes SIGNALs per client with
``oms_core.signals.apply_signal``."""

from __future__ import annotations

import time
from pathlib import Path

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID
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
    code, oid, *_ = engine._signal(rec, ts)
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
    code, oid, *_ = engine._signal(rec, ts + 1)
    assert code == 0 and oid
    assert engine.loop.seq == seq + 3  # only bob answered: the signal named his account
