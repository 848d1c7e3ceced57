"""A short replay of the small three-client configuration (tests/replay_fixtures.py), written
by the real engine and writer: the database the analytics and report tests read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replay_fixtures import SMALL_TOML, small_config, small_market

from oms_core.config import OmsConfig
from replay import run_replay


@dataclass(frozen=True)
class SmallReplay:
    db: str
    config_path: str
    cfg: OmsConfig


def write_small_replay(directory: Path, hours: float = 36) -> SmallReplay:
    """Replay ``hours`` of seeded minute bars into ``directory``/replay.duckdb, with the
    configuration beside it as small.toml."""
    cfg = small_config()
    bars, sigs = small_market(hours=hours)
    run_replay(cfg, bars, sigs, out=str(directory / "replay.duckdb"))
    (directory / "small.toml").write_text(SMALL_TOML)
    return SmallReplay(str(directory / "replay.duckdb"), str(directory / "small.toml"), cfg)
