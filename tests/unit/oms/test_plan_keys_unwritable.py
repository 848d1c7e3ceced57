"""`oms run` with security on and keys it cannot write (a read-only mount without them, as a
container gets when `oms keys` was not run on the host): a clear refusal naming the directory
and the command that makes them, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_core.config import parse_config
from oms_core.supervisor import plan

ROOT = Path(__file__).resolve().parents[3]


def test_missing_keys_that_cannot_be_written_are_refused_clearly(tmp_path: Path) -> None:
    docker = ROOT / "docker"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    keys = blocker / "keys"  # nothing can be created under a file
    text = (docker / "oms.toml").read_text().replace("/var/lib/oms", str(tmp_path)).replace(
        'keys_dir = "keys"', f'keys_dir = "{keys}"')
    assert str(keys) in text
    cfg = parse_config(text, str(docker / "oms.toml"), docker)
    with pytest.raises(ValueError) as e:
        plan(cfg, str(docker / "oms.toml"), tmp_path / "run")
    msg = str(e.value)
    assert str(keys) in msg and "oms keys --config" in msg, msg
