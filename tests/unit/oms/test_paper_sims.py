"""The simulators of paper mode: `[exchanges.X] sim_profile` and `[exchanges.X.sim]`
overrides, checked by the configuration and written by the supervisor into each simulator's
own file; each venue's memory kept beside the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.sim.config import SimConfig
from oms_core.config import SIM_PROFILES, ConfigError, load_config, parse_config
from oms_core.supervisor import paper_state_file, plan

ROOT = Path(__file__).resolve().parents[3]
DESK = ROOT / "examples" / "desk.toml"

BASE = """
[assets]
USDT = { precision = 8 }
BTC = { precision = 8 }

[exchanges.sim]
kind = "sim"
EXCHANGE

[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
max_qty = "100"

[strategies.trend]
instruments = ["BTCUSDT"]

[clients.alice]
strategies = ["trend"]
cash = { USDT = "1000" }

[clients.alice.exchange_accounts.sim]
api_key_env = "ALICE_KEY"
api_secret_env = "ALICE_SECRET"

[clients.alice.orders]
sizing = "fixed"
fixed_qty = "0.01"
"""


def parse(exchange: str):
    return parse_config(BASE.replace("EXCHANGE", exchange), file="oms.toml")


def test_desk_simulators_run_the_seed_profiles(tmp_path: Path) -> None:
    cfg = load_config(DESK, identity=False)
    assert cfg.exchanges["spot_a"].sim.name == "local-dev"
    assert cfg.exchanges["spot_b"].sim.name == "integration"
    plan(cfg, str(DESK), tmp_path)
    local = SimConfig.load(tmp_path / "sim-spot_a.toml")
    # local-dev: 50 ms on every request, and an order at the touch fills in full
    assert (local.latency.dist, local.latency.ms) == ("fixed", 50.0)
    assert local.market.fill_probability == 1.0 and local.market.partial_fill_prob == 0.0
    assert local.market.fill_at_touch
    integ = SimConfig.load(tmp_path / "sim-spot_b.toml")
    # integration: normally distributed latency, fill probability 0.95
    assert integ.latency.dist == "normal" and integ.latency.sd_ms > 0
    assert integ.market.fill_probability == 0.95 and integ.market.fill_at_touch


def test_no_profile_is_the_ideal_simulator_and_overrides_apply_over_a_profile(
        tmp_path: Path) -> None:
    assert parse("").exchanges["sim"].sim == SIM_PROFILES["ideal"]
    cfg = parse('sim_profile = "integration"\n[exchanges.sim.sim]\nlatency_ms = 80\n'
                'latency_sd_ms = 20.5\nfill_probability = 0.5\ntick_ms = 50\n'
                'level_qty = "2.5"\nreject_probability = 0.01')
    p = cfg.exchanges["sim"].sim
    assert (p.name, p.latency, p.latency_ms, p.latency_sd_ms) == ("integration", "normal",
                                                                  80.0, 20.5)
    assert (p.fill_probability, p.fill_at_touch, p.tick_ms, p.level_qty) == (0.5, True, 50,
                                                                             "2.5")
    assert p.partial_fill_probability == SIM_PROFILES["integration"].partial_fill_probability
    cfg_path = tmp_path / "oms.toml"
    cfg_path.write_text(BASE.replace("EXCHANGE", 'sim_profile = "local-dev"\n'
                                                 '[exchanges.sim.sim]\nlatency = "none"'))
    plan(load_config(cfg_path, identity=False), str(cfg_path), tmp_path / "run")
    sim = SimConfig.load(tmp_path / "run" / "sim-sim.toml")
    assert sim.latency.dist == "none" and sim.market.fill_probability == 1.0


BAD = [
    ('sim_profile = "prod"', "exchanges.sim.sim_profile",
     "must be one of ideal, local-dev, integration, got 'prod'"),
    ('[exchanges.sim.sim]\nlatency = "gauss"', "exchanges.sim.sim.latency",
     "must be one of none, fixed, uniform, normal, lognormal"),
    ('[exchanges.sim.sim]\nfill_probability = 1.5', "exchanges.sim.sim.fill_probability",
     "must be in 0..1, got 1.5"),
    ('[exchanges.sim.sim]\nfill_probability = "0.9"', "exchanges.sim.sim.fill_probability",
     "must be a number"),
    ('[exchanges.sim.sim]\nfill_ratio = 1.0', "exchanges.sim.sim.fill_ratio", "unknown key"),
    ('[exchanges.sim.sim]\nlatency = "normal"', "exchanges.sim.sim.latency_ms",
     "must be above 0 for a normal latency"),
    ('[exchanges.sim.sim]\nlatency = "uniform"\nlatency_min_ms = 5\nlatency_max_ms = 2',
     "exchanges.sim.sim.latency_max_ms", "at least latency_min_ms"),
    ('[exchanges.sim.sim]\nlevel_qty = 2.5', "exchanges.sim.sim.level_qty",
     "written as a string"),
    ('[exchanges.sim.sim]\ntick_ms = 0', "exchanges.sim.sim.tick_ms", "must be in 1..60000"),
]


@pytest.mark.parametrize("exchange,key,problem", BAD, ids=[b[1] + ":" + b[2][:16] for b in BAD])
def test_bad_profile_names_the_key_and_the_problem(exchange: str, key: str,
                                                   problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(exchange)
    assert str(e.value).startswith(f"oms.toml: {key}: "), str(e.value)
    assert problem in str(e.value), str(e.value)


def test_paper_venues_keep_their_state_beside_the_journal(tmp_path: Path) -> None:
    cfg = load_config(DESK, identity=False)
    specs, _ = plan(cfg, str(DESK), tmp_path)
    journal = Path(cfg.engine.journal_dir).resolve()
    for ex in ("spot_a", "spot_b"):
        argv = next(s.argv for s in specs if s.name == f"sim-{ex}")
        assert argv[argv.index("--state") + 1] == str(journal / f"paper-{ex}.json")
        assert paper_state_file(cfg, ex) == journal / f"paper-{ex}.json"
