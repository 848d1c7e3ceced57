"""What `oms run` hands each process for the desk (examples/desk.toml): every client its own
venue account with its own credentials, the asset table, and every exchange bound."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateways.config import load_config as load_gateway_config
from gateways.sim.config import SimConfig
from oms_core.config import load_config, parse_config
from oms_core.engine.config import from_oms_config
from oms_core.supervisor import plan

ROOT = Path(__file__).resolve().parents[3]
DESK = ROOT / "examples" / "desk.toml"


def test_paper_gives_each_client_its_own_simulated_account(tmp_path: Path) -> None:
    cfg = load_config(DESK)
    specs, _ = plan(cfg, str(DESK), tmp_path)
    names = [s.name for s in specs]
    assert {"sim-spot_a", "sim-spot_b", "gateway-spot_a-0", "gateway-spot_b-0"} <= set(names)
    keys: set[str] = set()
    e8 = 10**8
    for ex, clients in (
            ("spot_a", {"alice-a": {"USDT": 100000 * e8, "BTC": e8 // 2, "ETH": 5 * e8 // 2},
                        "bob-a": {"USDT": 100000 * e8, "BTC": e8 // 5, "ETH": 2 * e8}}),
            ("spot_b", {"alice-b": {"USDT": 100000 * e8, "ETH": 5 * e8 // 2, "SOL": 100 * e8},
                        "carol-b": {"USDT": 50000 * e8, "ETH": e8, "SOL": 20 * e8}})):
        sim = SimConfig.load(tmp_path / f"sim-{ex}.toml")
        # one account per client with an account here, its own keys, its cash as balances:
        # alice's USDT and ETH split over her two venues, BTC where BTC trades, SOL likewise
        assert {a.name: a.balances for a in sim.accounts} == clients
        keys |= {a.api_key for a in sim.accounts}
        gw = load_gateway_config(tmp_path / f"gateway-{ex}-s0.toml")
        accounts = gw.venue_accounts()
        ids = {cfg.clients[c].id for c in ("alice", "bob", "carol")
               if ex in cfg.clients[c].exchange_accounts}
        assert {a.account_id for a in accounts} == ids
        by_name = {a.name: a for a in sim.accounts}
        for a in accounts:
            key, secret = a.credentials()
            assert (key, secret) == (by_name[a.name].api_key, by_name[a.name].secret)
        # fees and balances are reported with the engine's asset ids and decimals
        assert gw.assets == {n: [x.id, x.precision] for n, x in cfg.assets.items()}
        text = (tmp_path / f"gateway-{ex}-s0.toml").read_text()
        assert not any(s.api_key in text or s.secret in text for s in sim.accounts)
    assert len(keys) == 4
    ccxt = load_gateway_config(tmp_path / "gateway-spot_b-s0.toml")
    assert ccxt.kind == "ccxt" and ccxt.exchange == "binance"
    assert {i.symbol for i in ccxt.instruments} == {"SOL/USDT", "ETH/USDT"}
    assert ccxt.ccxt_urls["private"].startswith("http://127.0.0.1:6580")


def test_live_uses_each_clients_own_credentials_by_reference(tmp_path: Path,
                                                             monkeypatch) -> None:
    text = DESK.read_text().replace('mode = "paper"', 'mode = "live"')
    cfg = parse_config(text, str(DESK), DESK.parent)
    monkeypatch.setenv("DESK_ALICE_A_KEY", "alice-secret-key-value")
    specs, _ = plan(cfg, str(DESK), tmp_path)
    assert not any(s.name.startswith("sim-") for s in specs)
    gw_text = (tmp_path / "gateway-spot_a-s0.toml").read_text()
    assert "alice-secret-key-value" not in gw_text
    gw = load_gateway_config(tmp_path / "gateway-spot_a-s0.toml")
    got = {a.account_id: (a.name, a.api_key_env, a.api_key_file) for a in gw.venue_accounts()}
    bob_key = cfg.clients["bob"].exchange_accounts["spot_a"].api_key.file
    assert Path(bob_key).resolve() == (ROOT / "var/desk/secrets/bob-a.key").resolve()
    assert got == {0: ("alice-a", "DESK_ALICE_A_KEY", None), 1: ("bob-a", "", bob_key)}
    b = tomllib.loads((tmp_path / "gateway-spot_b-s0.toml").read_text())
    assert [(a["account_id"], a.get("api_key_env")) for a in b["accounts"]] == [
        (0, "DESK_ALICE_B_KEY"), (2, None)]


def test_engine_binds_events_and_market_data_of_every_exchange() -> None:
    cfg = load_config(DESK)
    e = from_oms_config(cfg, 0)
    assert e.gateway_events == ["tcp://127.0.0.1:6572", "tcp://127.0.0.1:6582"]
    assert e.gateway_md == ["tcp://127.0.0.1:6573", "tcp://127.0.0.1:6583"]
    assert [(g.exchange, g.orders) for g in e.gateways] == [
        (0, "tcp://127.0.0.1:6571"), (1, "tcp://127.0.0.1:6581")]
    # reconciliation asks each exchange for each of its venue accounts
    assert e.venue_accounts == {0: [0, 1], 1: [0, 2]}


@pytest.mark.parametrize("shard_of_carol", [1])
def test_a_shard_binds_only_the_exchanges_its_clients_trade(shard_of_carol: int) -> None:
    text = re.sub(r"(\[clients\.carol\][^\n]*\n)", rf"\1shard = {shard_of_carol}\n",
                  DESK.read_text())
    cfg = parse_config(text, str(DESK), DESK.parent)
    e = from_oms_config(cfg, shard_of_carol)
    assert e.venue_accounts == {1: [2]}
    assert [g.exchange for g in e.gateways] == [1]


def test_compose_gives_each_client_its_own_simulated_account(tmp_path: Path) -> None:
    """The compose stack runs `oms run` on docker/oms.toml (paper): one simulated venue
    account per client, on its own generated keys, holding the client's cash; the gateway
    trades each on those keys, and the venue's state is kept on the journal's volume."""
    docker = ROOT / "docker"
    # the container's paths, under tmp_path (plan() creates the journal and run directories)
    text = (docker / "oms.toml").read_text().replace("/var/lib/oms", str(tmp_path)).replace(
        'keys_dir = "keys"', f'keys_dir = "{tmp_path / "keys"}"')  # not docker/keys
    assert str(tmp_path / "keys") in text
    cfg = parse_config(text, str(docker / "oms.toml"), docker)
    run_dir = tmp_path / "run"
    specs, _ = plan(cfg, str(docker / "oms.toml"), run_dir)
    assert {s.name for s in specs} == {"sim-sim", "engine-0", "writer-0", "gateway-sim-0"}
    sim_spec = next(s for s in specs if s.name == "sim-sim")
    assert sim_spec.argv[sim_spec.argv.index("--state") + 1] == str(
        tmp_path / "journal" / "paper-sim.json")
    sim = SimConfig.load(run_dir / "sim-sim.toml")
    gw = load_gateway_config(run_dir / "gateway-sim-s0.toml")
    venue = {a.name: a for a in sim.accounts}
    assert set(venue) == set(cfg.clients)
    assert len({a.api_key for a in sim.accounts}) == len(cfg.clients)
    by_id = {a.account_id: a for a in gw.venue_accounts()}
    assert set(by_id) == {c.id for c in cfg.clients.values()}
    for c in cfg.clients.values():
        mine = by_id[c.id]
        assert mine.name == c.exchange_accounts["sim"].account == c.name
        assert Path(mine.api_key_file).read_text() == venue[c.name].api_key
        # the venue account holds the client's cash, as the engine's ledger does
        assert venue[c.name].balances == {
            a: raw_amount * 10 ** (8 - cfg.assets[a].precision)
            for a, raw_amount in c.cash.items()}
    assert gw.assets == {n: [a.id, a.precision] for n, a in cfg.assets.items()}


def test_a_restarted_paper_venue_never_reuses_an_id(tmp_path: Path) -> None:
    """`oms run` restarted on its journal starts a fresh simulator: its order and trade ids
    begin above the ones the last run handed out, or the engine would refuse a new fill as a
    duplicate of a trade it booked before the restart."""
    import time

    from gateways.sim.exchange import Exchange

    cfg = load_config(DESK)
    ids = []
    for run in ("first", "second"):
        plan(cfg, str(DESK), tmp_path / run)
        sim = SimConfig.load(next((tmp_path / run).glob("sim-*.toml")))
        ex = Exchange(sim)
        book = next(iter(ex.markets.values())).book
        ids.append((book.next_order_id, book.next_trade_id))
        time.sleep(0.002)
    (o1, t1), (o2, t2) = ids
    assert o1 > 1 and t1 > 1 and o2 > o1 and t2 > t1
