"""The TOML configuration: good files load into typed config and a working core; bad ones are
refused with the file, the dotted key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_core.config import (
    LIMIT_KEYS,
    ConfigError,
    build_core,
    check_credentials,
    load_config,
    parse_config,
)
from oms_core.enums import KillMode, Limit, OrderType, Reject, Side, TimeInForce

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "oms.toml"

BASE = """
[assets]
USDT = { precision = 8 }
BTC = { precision = 8 }
ETH = { precision = 8 }

[exchanges.sim]
kind = "sim"

[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
max_qty = "100"
min_notional = "5"

[instruments.ETHUSDT]
base = "ETH"
quote = "USDT"
tick = "0.01"
lot = "0.001"
qty_precision = 4
max_qty = "1000"

[strategies.trend]
instruments = ["BTCUSDT", "ETHUSDT"]

[strategies.solo]
instruments = ["ETHUSDT"]
single_entry = true

[clients.alice]
strategies = ["trend", "solo"]
cash = { USDT = "1000.5" }

[clients.alice.exchange_accounts.sim]
api_key_env = "ALICE_KEY"
api_secret_env = "ALICE_SECRET"

[clients.alice.limits]
max_position = "3"
max_order_notional = "2500.25"
max_reference_age_s = "1.5"
long_only = true

[clients.alice.orders]
sizing = "fixed"
fixed_qty = "0.01"
"""


def parse(text: str):
    return parse_config(text, file="oms.toml")


def test_example_loads_and_builds_a_core():
    cfg = load_config(EXAMPLE)
    assert cfg.mode == "paper"
    assert len(cfg.clients) == 3 and len(cfg.strategies) == 2 and len(cfg.instruments) == 3
    assert cfg.ids.accounts == {"alice": 0, "bob": 1, "carol": 2}
    assert cfg.ids.strategies == {"trend": 1, "breakout": 2}
    assert [c.name for c in cfg.followers("breakout")] == ["alice", "carol"]
    core = build_core(cfg)
    assert core.balance(cfg.ids.accounts["carol"], cfg.ids.assets["USDT"]) == (250000 * 10**8, 0)
    assert core.get_limit(0, Limit.LONG_ONLY) == 1
    # relative paths resolve against the file's folder
    assert Path(cfg.writer.database).is_absolute() or cfg.writer.database.startswith(
        str(EXAMPLE.parent))


def test_values_become_exact_raw_integers():
    cfg = parse(BASE)
    btc, eth = cfg.instruments["BTCUSDT"], cfg.instruments["ETHUSDT"]
    assert (btc.price_precision, btc.qty_precision, btc.tick, btc.lot) == (2, 4, 1, 1)
    assert (eth.qty_precision, eth.lot, eth.max_qty) == (4, 10, 1000 * 10**4)
    assert btc.min_qty == btc.lot and btc.min_notional == 5 * 10**8
    alice = cfg.clients["alice"]
    assert alice.cash == {"USDT": 100050000000}
    assert alice.limits[Limit.MAX_POSITION] == 30000
    assert alice.limits[Limit.MAX_ORDER_NOTIONAL] == 250025000000
    assert alice.limits[Limit.MAX_REFERENCE_AGE_NS] == 1_500_000_000
    assert alice.limits[Limit.COLLAR_BPS] == 1000  # default kept
    assert alice.orders.long_only and alice.orders.fixed_qty == {0: 100, 1: 100}
    assert alice.orders.entry_type == OrderType.MARKET and alice.orders.tif == TimeInForce.GTC
    assert alice.exchange_accounts["sim"].api_key.env == "ALICE_KEY"


def test_every_limit_has_a_config_key():
    assert set(LIMIT_KEYS) == set(Limit)


def test_core_from_config_enforces_the_limits_and_single_entry():
    cfg = parse(BASE)
    core = build_core(cfg)
    a, trend, solo = 0, cfg.ids.strategies["trend"], cfg.ids.strategies["solo"]
    btc, eth = cfg.ids.instruments["BTCUSDT"], cfg.ids.instruments["ETHUSDT"]
    core.set_price(btc, 50_000, 49_900, 50_100, 1)  # 500.00
    core.set_price(eth, 30_000, 29_900, 30_100, 1)
    # 4 BTC (2000 USDT, within max_order_notional 2500.25) > max_position 3
    code, _ = core.submit(a, trend, btc, 1, Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                          50_000, 0, 40_000, 0, 0, 2)
    assert code == Reject.MAX_POSITION
    # 6 BTC: notional 3000 above max_order_notional
    code, _ = core.submit(a, trend, btc, 2, Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                          50_000, 0, 60_000, 0, 0, 3)
    assert code == Reject.MAX_ORDER_NOTIONAL
    code, _ = core.submit(a, trend, btc, 3, Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                          50_000, 0, 20_000, 0, 0, 3)
    assert code == Reject.OK
    code, _ = core.submit(a, solo, eth, 4, Side.SELL, OrderType.LIMIT, TimeInForce.GTC,
                          30_000, 0, 100, 0, 0, 4)
    assert code in (Reject.LONG_ONLY, Reject.SINGLE_ENTRY)


def test_disabled_client_and_strategy_start_halted():
    text = BASE.replace('[clients.alice]\n', '[clients.alice]\nenabled = false\n')
    text = text.replace("single_entry = true", "single_entry = true\nenabled = false")
    cfg = parse(text)
    core = build_core(cfg)
    assert core.account_state(0)["kill"] == KillMode.HALT
    core.set_kill(1, 0, KillMode.OFF)
    core.set_price(1, 30_000, 29_900, 30_100, 1)
    code, _ = core.submit(0, cfg.ids.strategies["solo"], 1, 1, Side.BUY, OrderType.LIMIT,
                          TimeInForce.GTC, 30_000, 0, 100, 0, 0, 2)
    assert code == Reject.STRATEGY_HALTED


def test_defaults_apply_and_clients_override():
    text = BASE + '\n[defaults.limits]\nmax_open_orders = 7\nmax_position = "1"\n'
    cfg = parse(text)
    lim = cfg.clients["alice"].limits
    assert lim[Limit.MAX_OPEN_ORDERS] == 7 and lim[Limit.MAX_POSITION] == 30000


def test_credentials_are_loaded_by_reference_and_never_shown(tmp_path, monkeypatch):
    secret_file = tmp_path / "k.secret"
    secret_file.write_text("s3cr3t-value\n")
    text = BASE.replace('api_secret_env = "ALICE_SECRET"',
                        f'api_secret_file = "{secret_file}"')
    cfg = parse(text)
    acct = cfg.clients["alice"].exchange_accounts["sim"]
    assert "s3cr3t" not in repr(cfg)
    assert acct.api_secret.load() == "s3cr3t-value"
    monkeypatch.delenv("ALICE_KEY", raising=False)
    with pytest.raises(ConfigError) as e:
        check_credentials(cfg, ["sim"])
    assert "clients.alice.exchange_accounts.sim.api_key_env" in str(e.value)
    monkeypatch.setenv("ALICE_KEY", "the-key-value")
    check_credentials(cfg, ["sim"])
    secret_file.unlink()
    with pytest.raises(ConfigError) as e:
        check_credentials(cfg, ["sim"])
    assert "api_secret_file" in str(e.value) and "s3cr3t" not in str(e.value)


BAD = [
    # (old, new, key, problem fragment)
    ('max_position = "3"', 'max_position = "-3"', "clients.alice.limits.max_position",
     "must be a positive decimal, got '-3'"),
    ('max_position = "3"', "max_position = 3.5", "clients.alice.limits.max_position",
     "floats are inexact"),
    ('max_position = "3"', 'max_position = "0.00001"', "clients.alice.limits.max_position",
     "more than 4 decimals"),
    ('max_position = "3"', 'max_positon = "3"', "clients.alice.limits.max_positon",
     "unknown limit"),
    ('tick = "0.01"\nlot = "0.0001"', 'tick = "abc"\nlot = "0.0001"',
     "instruments.BTCUSDT.tick", "positive decimal"),
    ('tick = "0.01"\nlot = "0.0001"', 'tick = "0"\nlot = "0.0001"',
     "instruments.BTCUSDT.tick", "positive decimal"),
    ('base = "BTC"', 'base = "XBT"', "instruments.BTCUSDT.base", "unknown asset 'XBT'"),
    ('USDT = { precision = 8 }', 'USDT = { precision = 5 }', "instruments.BTCUSDT.quote",
     "below price precision"),
    ('USDT = { precision = 8 }', 'USDT = { precision = 19 }', "assets.USDT.precision",
     "must be in 0..18"),
    ('kind = "sim"', 'kind = "nyse"', "exchanges.sim.kind", "must be one of"),
    ('instruments = ["ETHUSDT"]', 'instruments = ["DOGEUSDT"]', "strategies.solo.instruments",
     "unknown instrument 'DOGEUSDT'"),
    ('strategies = ["trend", "solo"]', 'strategies = ["trend", "nope"]',
     "clients.alice.strategies", "unknown strategy 'nope'"),
    ('api_key_env = "ALICE_KEY"', 'api_key = "AKIA123"',
     "clients.alice.exchange_accounts.sim.api_key", "secrets must not be written"),
    ('api_key_env = "ALICE_KEY"', 'api_key_env = "not a name"',
     "clients.alice.exchange_accounts.sim.api_key_env", "environment variable name"),
    ('[clients.alice.exchange_accounts.sim]', '[clients.alice.exchange_accounts.other]',
     "clients.alice.exchange_accounts.other", "unknown exchange"),
    ('cash = { USDT = "1000.5" }', 'cash = { USDT = "1000.123456789" }',
     "clients.alice.cash.USDT", "more than 8 decimals"),
    ('cash = { USDT = "1000.5" }', 'cash = { DOGE = "1" }', "clients.alice.cash.DOGE",
     "unknown asset"),
    ('sizing = "fixed"', 'sizing = "kelly"', "clients.alice.orders.sizing", "must be one of"),
    ('fixed_qty = "0.01"', 'fixed_qty = "0.0005"', "clients.alice.orders.fixed_qty",
     "not a multiple of the lot of ETHUSDT"),
    ('fixed_qty = "0.01"', 'fixed_qty = "0.00005"', "clients.alice.orders.fixed_qty",
     "more than 4 decimals"),
    ('fixed_qty = "0.01"', 'balance_share = "0.1"', "clients.alice.orders.fixed_qty",
     "needs fixed_qty"),
    ('sizing = "fixed"', 'sizing = "fixed"\ntake_profit = "vol"',
     "clients.alice.orders.take_profit_value", "needs a positive value"),
    ('sizing = "fixed"', 'sizing = "fixed"\ndirection = "long_short"',
     "clients.alice.orders.direction", "conflicts with limits.long_only"),
    ('sizing = "fixed"', 'sizing = "fixed"\nlimit_offset_ticks = 3',
     "clients.alice.orders.limit_offset_ticks", "only applies to entry"),
    ('sizing = "fixed"', 'sizing = "fixed"\ntime_in_force = "gtd"',
     "clients.alice.orders.expire_after_s", "needs it"),
    ('sizing = "fixed"', 'sizing = "fixed"\nstop_loss = "pct"\nstop_loss_value = "1.5"',
     "clients.alice.orders.stop_loss_value", "below 1"),
    ('[assets]', '[oms]\nmode = "backtest"\n[assets]', "oms.mode", "must be one of"),
    ('[assets]', '[engine]\nsignals = "localhost:1"\n[assets]', "engine.signals",
     "ZeroMQ endpoint"),
    ('[assets]', 'colour = "red"\n[assets]', "colour", "unknown key"),
    ('[assets]', '[engine]\nwriter = "/tmp/feed"\n[assets]', "engine.writer", "ZeroMQ endpoint"),
    ('[assets]', '[engine]\nheartbeat_ms = 0\n[assets]', "engine.heartbeat_ms", "must be in 1.."),
    ('[assets]', '[engine]\ntimer_ms = 0\n[assets]', "engine.timer_ms", "must be in 1.."),
    ('[assets]', '[engine]\nwriter_hwm = 0\n[assets]', "engine.writer_hwm", "must be in 1.."),
    ('min_notional = "5"', 'min_notional = "5"\nreference_price = "50000.001"',
     "instruments.BTCUSDT.reference_price", "more than 2 decimals"),
    ('qty_precision = 4\n', '', "clients.alice.limits.max_position",
     "different quantity precisions"),
]


@pytest.mark.parametrize("old,new,key,problem", BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD])
def test_bad_config_names_file_key_and_problem(old, new, key, problem):
    assert old in BASE
    with pytest.raises(ConfigError) as e:
        parse(BASE.replace(old, new, 1))
    msg = str(e.value)
    assert msg.startswith(f"oms.toml: {key}: "), msg
    assert problem in msg, msg
    assert "AKIA123" not in msg


RETIRED = [
    ("writer", 'journal_dir = "var/journal"', "set [engine] journal_dir"),
    ("writer", "batch_rows = 10000", "flush_interval_ms"),
    ("replay", 'speed = "max"', "as fast as the machine allows"),
    ("replay", "seed = 1", "deterministic"),
]


@pytest.mark.parametrize("table,line,instead", RETIRED, ids=[f"{t}.{x.split()[0]}"
                                                            for t, x, _ in RETIRED])
def test_retired_keys_are_refused_with_what_to_do_instead(table, line, instead):
    # read once and never used: an old file that still sets them is told so, not ignored
    with pytest.raises(ConfigError) as e:
        parse(BASE.replace("[assets]", f"[{table}]\n{line}\n\n[assets]", 1))
    msg = str(e.value)
    key = line.split()[0]
    assert msg.startswith(f"oms.toml: {table}.{key}: is no longer read ("), msg
    assert instead in msg, msg


def test_missing_sections_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"^oms.toml: clients: is required"):
        parse(BASE.split("[clients.alice]")[0])
    with pytest.raises(ConfigError, match=r"^oms.toml: not valid TOML"):
        parse("[assets\n")
    p = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read"):
        load_config(p)


def test_live_exchange_requires_credential_references():
    text = BASE.replace('kind = "sim"', 'kind = "binance"').replace(
        'api_key_env = "ALICE_KEY"\n', "")
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert str(e.value).startswith("oms.toml: clients.alice.exchange_accounts.sim.api_key_env:")


def test_core_capacity_is_checked():
    text = BASE + "\n[engine]\nmax_strategies = 2\n"
    with pytest.raises(ConfigError, match=r"engine.max_strategies: is 2, but 3"):
        build_core(parse(text))


def test_reference_price_is_the_instruments_price_until_market_data():
    from oms_core.engine.loop import EngineLoop

    cfg = parse(BASE.replace('min_notional = "5"', 'min_notional = "5"\n'
                             'reference_price = "50000.12"', 1))
    btc, eth = cfg.instruments["BTCUSDT"], cfg.instruments["ETHUSDT"]
    assert (btc.reference_price, eth.reference_price) == (5_000_012, 0)
    loop = EngineLoop(build_core(cfg), 2)
    assert loop.reference_price(btc.id) == (5_000_012, 5_000_012, 5_000_012)
    assert loop.reference_price(eth.id) == (0, 0, 0)


def test_empty_signals_endpoint_means_no_subscription():
    assert parse("[engine]\nsignals = \"\"\n" + BASE).engine.signals == ""


def test_engine_settings_of_the_full_format_reach_the_engine():
    from oms_core.engine.config import from_oms_config

    default = from_oms_config(parse(BASE))
    assert (default.heartbeat_ms, default.timer_ms, default.writer, default.writer_hwm) == (
        1000, 100, None, 1000)
    cfg = from_oms_config(parse('[engine]\nheartbeat_ms = 600000\ntimer_ms = 20\n'
                                'writer = "ipc:///tmp/w"\nwriter_hwm = 50\n' + BASE))
    assert (cfg.heartbeat_ms, cfg.timer_ms, cfg.writer, cfg.writer_hwm) == (
        600_000, 20, "ipc:///tmp/w", 50)


def test_given_ids_are_kept_by_name_and_new_names_take_the_next():
    cfg = parse_config(BASE, ids={"assets": {"BTC": 1, "USDT": 2}, "instruments":
                                  {"BTCUSDT": 1}, "accounts": {"alice": 7},
                                  "strategies": {"solo": 4}})
    assert {n: a.id for n, a in cfg.assets.items()} == {"USDT": 2, "BTC": 1, "ETH": 3}
    assert (cfg.instruments["BTCUSDT"].id, cfg.instruments["ETHUSDT"].id) == (1, 2)
    assert (cfg.clients["alice"].id, cfg.strategies["solo"].id,
            cfg.strategies["trend"].id) == (7, 4, 5)
