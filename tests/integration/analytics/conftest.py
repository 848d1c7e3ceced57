"""The database the analytics tests of this directory share (store, report, browser): one
short replay through the real engine and writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_fixtures import SmallReplay, write_small_replay


@pytest.fixture(scope="session")
def small_replay(tmp_path_factory: pytest.TempPathFactory) -> SmallReplay:
    return write_small_replay(Path(tmp_path_factory.mktemp("analytics")))
