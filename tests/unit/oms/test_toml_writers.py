"""The TOML files the project writes for its own processes (the supervisor's gateway and
simulator files, the engine configs of tests and benchmarks) load back, with tomllib, to the
very dict that was written: quotes, backslashes, control characters, dotted or spaced keys,
nested tables and arrays of tables included."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_core.engine.process import base_config, to_toml

AWKWARD = ['plain', 'say "hi"', "back\\slash", "C:\\dir\\file", "tab\tnew\nline", "'single'",
           '"""', "\\u0041", "é ü ∞", "\x7f\x01", ""]
KEYS = ["key", "two words", "dotted.key", "quote\"d", "back\\slash", "1"]

scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.sampled_from(AWKWARD),
                    st.text(max_size=20))
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=10))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
tables = st.dictionaries(keys, values, max_size=6)


def _desk_like() -> dict[str, Any]:
    return {
        "seed": 1, "name": 'a "quoted" \\ name',
        "engine": {"orders": "tcp://127.0.0.1:1", "bind": False,
                   "curve": {"secret_file": "C:\\keys\\gw.key_secret"}},
        "assets": {"USDT": [2, 8], "odd.name": [3, 6]},
        "accounts": [{"account_id": 1, "name": "alice \"a\"", "balances": {"USDT": "1.5"}},
                     {"account_id": 2, "api_key_env": "K\\2"}],
    }


def test_the_supervisors_files_load_back_to_what_was_written(tmp_path: Path) -> None:
    doc = _desk_like()
    path = tmp_path / "gw.toml"
    path.write_text(tomli_w.dumps(doc))  # as the supervisor writes them
    assert tomllib.loads(path.read_text()) == doc


def test_the_engine_config_loads_back_without_its_unset_keys(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, journal_dir=None, note='quote " and \\ backslash')
    cfg["clients"]["account1"]["limits"]["odd key.with dot"] = 7
    loaded = tomllib.loads(to_toml(cfg))
    del cfg["engine"]["journal_dir"]  # None: the key is left out, the engine's default holds
    del cfg["ids"]  # not a table of the format: the engine reads them with --ids
    assert loaded == cfg


@settings(max_examples=150, deadline=None)
@given(tables)
def test_any_table_round_trips(tmp_path_factory: Any, doc: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("toml") / "any.toml"
    path.write_text(tomli_w.dumps(doc))  # as the supervisor writes them
    assert tomllib.loads(path.read_text()) == doc
    assert tomllib.loads(to_toml(doc)) == doc
