"""Replay against paper: the same bars and signals through the engine PROCESS in real time
(paper) and through the engine in-process on the simulated clock (replay) give the same fills
(account, strategy, instrument, side, quantity, price, fee, fee asset, liquidity; in order) and
the same final positions (quantity and realized P&L per account and instrument)."""

from __future__ import annotations

import numpy as np
import pytest
from replay_fixtures import SMALL_TOML, small_market

from oms_core.config import load_config
from replay import run_paper, run_replay

pytestmark = pytest.mark.timeout(120)


def paper_config(tmp_path) -> str:
    """SMALL_TOML with the engine's and the gateway's endpoints on ipc:// under tmp_path."""
    d = tmp_path
    text = SMALL_TOML.replace(
        'slippage_bps = 1\n',
        f'slippage_bps = 1\norders = "ipc://{d}/gw-orders"\nevents = "ipc://{d}/gw-events"\n'
        f'market_data = "ipc://{d}/gw-md"\n', 1)
    text = (f'[engine]\ncommands = "ipc://{d}/commands"\nevents = "ipc://{d}/events"\n'
            f'journal_dir = "{d}/journal"\n' + text)
    path = d / "paper.toml"
    path.write_text(text)
    return str(path)


def slice_market(minutes: int):
    bars, sigs = small_market(hours=2, every=5)
    uts = np.unique(bars.column("ts").to_numpy())
    end = int(uts[minutes])
    bars = bars.filter(bars.column("ts").to_numpy() < end)
    sigs = sigs.filter(sigs.column("ts").to_numpy() < end)
    return bars, sigs


def test_paper_and_replay_give_the_same_fills_and_positions(tmp_path):
    path = paper_config(tmp_path)
    bars, sigs = slice_market(25)
    paper = run_paper(path, bars, sigs, str(tmp_path), timeout_s=90)
    replay = run_replay(load_config(path), bars, sigs, record_fills=True)
    assert paper.signals == replay.signals == sigs.num_rows
    assert len(replay.fills_list) >= 5
    assert paper.fills_list == replay.fills_list
    expected = {(p["account"], p["instrument"]): (p["qty"], p["realized"])
                for p in replay.positions}
    assert {k: v for k, v in paper.positions.items() if v != (0, 0)} == {
        k: v for k, v in expected.items() if v != (0, 0)}
