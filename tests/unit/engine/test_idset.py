"""IdSet, the engine's exact access sets; and the loop's verdict on each record kind equal to
bindings.security.authorize for every role (both read the wire spec's one role table)."""

from __future__ import annotations

import itertools
import time

import pytest

from bindings.security import Identity, Role, authorize
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MsgType, WireError
from oms_core.engine import Engine, build_core, load_engine_config
from oms_core.engine.idset import EVERY, MAX_ID, NOBODY, IdSet


def test_members_of_any_size_are_exact() -> None:
    s = IdSet([3, 70, 130, 65_535])
    assert list(s) == [3, 70, 130, 65_535] and len(s) == 4
    assert all(i in s for i in (3, 70, 130, 65_535))
    assert not any(i in s for i in (0, 2, 4, 63, 64, 69, 71, 129, 131, 65_534, 65_536,
                                    MAX_ID, ANY_ID, -1))
    big = IdSet([MAX_ID])
    assert MAX_ID in big and ANY_ID not in big and 0 not in big


def test_every_nobody_frozen_copy_and_masks() -> None:
    assert 12345 in EVERY and 0 in EVERY and not NOBODY and 0 not in NOBODY
    for frozen in (EVERY, NOBODY, IdSet([1], frozen=True)):
        with pytest.raises(ValueError):
            frozen.put(5)
    c = IdSet([1], frozen=True).copy()
    c.put(200)
    assert list(c) == [1, 200]
    assert IdSet.from_mask((1 << 64) | 0b101) == IdSet([0, 2, 64])
    assert IdSet([70]).intersects(IdSet([5, 70])) and not IdSet([70]).intersects(IdSet([69]))
    assert EVERY.intersects(IdSet([1])) and not EVERY.intersects(IdSet())
    with pytest.raises(ValueError):
        IdSet([ANY_ID])
    with pytest.raises(ValueError):
        IdSet([1], every=True)


TOML = """
[engine]
commands = "ipc:///tmp/unused"
signals = ""
journal_dir = ""
max_accounts = 200
max_strategies = 200

[security]
mode = "off"

[assets]
BTC = { precision = 8 }
USDT = { precision = 8 }

[exchanges.exchange1]
kind = "sim"

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

[strategies]
strategy1 = { instruments = ["BTCUSDT"] }
strategy100 = { instruments = ["BTCUSDT"] }

[clients.account1]
strategies = ["strategy1", "strategy100"]
orders = { entry = "limit", fixed_qty = "0.001" }
exchange_accounts.exchange1 = {}

[clients.account70]
strategies = ["strategy1", "strategy100"]
orders = { entry = "limit", fixed_qty = "0.001" }
exchange_accounts.exchange1 = {}

[clients.account130]
orders = { entry = "limit", fixed_qty = { BTCUSDT = "0.00001" } }
exchange_accounts.exchange1 = {}
"""
IDS = {"assets": {"BTC": 1, "USDT": 2}, "exchanges": {"exchange1": 1},
       "instruments": {"BTCUSDT": 1},
       "accounts": {"account1": 1, "account70": 70, "account130": 130},
       "strategies": {"strategy1": 1, "strategy100": 100}}


def test_loop_and_authorize_give_the_same_verdict_for_every_role_kind_and_account() -> None:
    cfg = load_engine_config(TOML, ids=IDS)
    e = Engine(build_core(cfg), config=cfg)
    lp = e.loop
    lp.py_command = lambda kind, payload: 0  # HELLO: no session here
    idents = [Identity("t", Role.TRADER, frozenset({1, 130})),
              Identity("v", Role.VIEWER, frozenset({70})),
              Identity("a", Role.ADMIN), Identity("g", Role.GATEWAY, frozenset({1})),
              Identity("w", Role.WRITER), Identity("p", Role.PUBLISHER,
                                                   strategies=frozenset({100}))]
    n = 0
    for ident in idents:
        for mt, account, strategy in itertools.product(
                (m for m in MsgType if m < 64), (1, 70, 130, 69, ANY_ID), (100, 99)):
            fields = wire.CODECS[mt.name].field_names
            rec = wire.encode(mt.name, 1, 0, 0, 0, **{
                k: v for k, v in (("account", account), ("strategy", strategy))
                if k in fields})
            before = lp.n_unauthorized
            lp.begin(int(ident.role), EVERY if ident.role == Role.ADMIN else
                     IdSet(ident.accounts), IdSet(), False)
            if ident.role == Role.PUBLISHER:
                lp.limit_peer(IdSet(ident.strategies), -1)
            lp.on_client_frame(rec, time.time_ns())
            loop_ok = lp.n_unauthorized == before
            has_account = mt not in (MsgType.HELLO, MsgType.HEARTBEAT, MsgType.ADMIN)
            ok = authorize(ident, mt, account if has_account else None,
                           strategy if mt == MsgType.SIGNAL else None) == WireError.OK
            assert loop_ok == ok, (ident.role.name, mt.name, account, strategy)
            n += 1
    assert n == len(idents) * 11 * 5 * 2
