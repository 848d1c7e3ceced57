"""Ids by name from the identity table beside the journal (oms_core/identity.py): reordered
blocks keep their ids, new names never reuse one, changed precisions are refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from oms_core.config import ConfigError, load_config
from oms_core.identity import (
    IdentityError,
    identity_path,
    read_identity,
    record_identity,
    write_identity,
)

ASSETS = {"USDT": 8, "BTC": 8, "ETH": 8}
INSTRUMENTS = {"BTCUSDT": ("BTC", "0.01"), "ETHUSDT": ("ETH", "0.01")}


def _write(d: Path, clients: tuple[str, ...], instruments: tuple[str, ...] = (
        "BTCUSDT", "ETHUSDT"), assets: tuple[str, ...] = ("USDT", "BTC", "ETH"),
           btc_precision: int = 8) -> Path:
    text = f'[engine]\njournal_dir = "{d}/journal"\n\n[assets]\n'
    for a in assets:
        text += f"{a} = {{ precision = {btc_precision if a == 'BTC' else ASSETS[a]} }}\n"
    text += '\n[exchanges.sim]\nkind = "sim"\n'
    for sym in instruments:
        base, tick = INSTRUMENTS[sym]
        text += (f'\n[instruments.{sym}]\nbase = "{base}"\nquote = "USDT"\ntick = "{tick}"\n'
                 'lot = "0.001"\nmax_qty = "100"\n')
    text += f'\n[strategies.trend]\ninstruments = ["{instruments[0]}"]\n'
    for c in clients:
        text += (f'\n[clients.{c}]\nstrategies = ["trend"]\n'
                 f'orders = {{ fixed_qty = "0.01" }}\n[clients.{c}.exchange_accounts.sim]\n')
    path = d / "oms.toml"
    path.write_text(text)
    return path


def _record(cfg_path: Path, journal_empty: bool = True) -> None:
    record_identity(load_config(cfg_path), journal_empty)


def test_without_a_table_ids_follow_the_file_and_are_recorded(tmp_path: Path) -> None:
    path = _write(tmp_path, ("alice", "bob"))
    cfg = load_config(path)
    assert cfg.ids.accounts == {"alice": 0, "bob": 1} and cfg.ids.strategies == {"trend": 1}
    _record(path)
    table = read_identity(identity_path(tmp_path / "journal"))
    assert table["accounts"] == {"alice": {"id": 0}, "bob": {"id": 1}}
    assert table["assets"]["BTC"] == {"id": 1, "precision": 8}
    assert table["instruments"]["ETHUSDT"] == {"id": 1, "price_precision": 2,
                                               "qty_precision": 3}


def test_reordered_and_new_names_keep_and_never_reuse_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, ("alice", "bob", "dave"))
    _record(path)
    # dave removed, carol new, the rest reordered; ETHUSDT before BTCUSDT
    path = _write(tmp_path, ("carol", "bob", "alice"), instruments=("ETHUSDT", "BTCUSDT"))
    cfg = load_config(path)
    assert cfg.ids.accounts == {"carol": 3, "bob": 1, "alice": 0}  # 2 stays dave's
    assert cfg.ids.instruments == {"ETHUSDT": 1, "BTCUSDT": 0}
    assert [c.name for c in cfg.followers("trend")] == ["alice", "bob", "carol"]
    assert cfg.identity.removed() == {"accounts": ["dave"]}
    assert load_config(path, identity=False).ids.accounts == {"carol": 0, "bob": 1, "alice": 2}
    with pytest.raises(IdentityError) as ei:  # dave -> carol looks like a rename
        _record(path, journal_empty=False)
    assert "(client dave; recorded in" in str(ei.value)
    assert "new names (client carol): a rename gives a new identity" in str(ei.value)
    # recorded on an empty journal: dave's id stays taken in the table
    _record(path, journal_empty=True)
    table = read_identity(identity_path(tmp_path / "journal"))
    assert {n: r["id"] for n, r in table["accounts"].items()} == {
        "alice": 0, "bob": 1, "dave": 2, "carol": 3}


def test_changed_asset_precision_is_refused_with_its_name(tmp_path: Path) -> None:
    path = _write(tmp_path, ("alice",))
    _record(path)
    path = _write(tmp_path, ("alice",), btc_precision=6)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(ei.value).startswith(f"{path}: assets.BTC: asset BTC: precision 6 differs "
                                    "from 8 recorded in")


def test_table_written_atomically_and_only_when_it_changes(tmp_path: Path) -> None:
    p = tmp_path / "j" / "identity.json"
    table = {"accounts": {"alice": {"id": 0}}}
    assert write_identity(p, table) is True
    assert write_identity(p, table) is False
    assert json.loads(p.read_text())["version"] == 1
    assert [x.name for x in p.parent.iterdir()] == ["identity.json"]  # no temp file left
    p.write_text("{not json")
    with pytest.raises(IdentityError, match="unreadable identity table"):
        read_identity(p)
    path = _write(tmp_path, ("alice",))
    (tmp_path / "journal").mkdir()
    identity_path(tmp_path / "journal").write_text('{"version": 7}')
    with pytest.raises(ConfigError, match=r"engine.journal_dir: .* not an identity table"):
        load_config(path)


def test_no_journal_dir_records_nothing() -> None:
    oms = SimpleNamespace(engine=SimpleNamespace(journal_dir=""))
    assert record_identity(oms, journal_empty=False) is None
