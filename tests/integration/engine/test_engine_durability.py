"""The engine's journal durability is configurable, and under ``group`` a quiet engine syncs
its last commits within the group window instead of leaving them to the next message.

A real engine process with a real journal directory; what is synced is read from the
engine's own counters (its stop line).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bindings.client import OmsClient
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(60)


def _orders_then_quiet(tmp: Path, *args: str) -> dict:
    e = EngineProcess(base_config(tmp, "ipc", writer=None), tmp,
                      extra_args=("--journal", str(tmp / "journal"), "--snapshot-every", "0",
                                  "--snapshot-seconds", "0", *args))
    with e:
        with OmsClient(e.endpoints["client"], account=1, timeout=5) as c:
            for i in range(5):
                # the first commit of a pair syncs (the last sync is old); the second comes
                # inside the window, so only a timer can sync it before the next pair
                assert c.submit(1, Side.BUY, 1, 4_990_000 - 2 * i).ok
                assert c.submit(1, Side.BUY, 1, 4_989_999 - 2 * i).ok
                time.sleep(0.1)
        assert e.stop() == 0
    return e.stats()


def test_group_syncs_a_quiet_journal_within_the_window(tmp_path: Path) -> None:
    st = _orders_then_quiet(tmp_path, "--durability", "group", "--group-us", "20000")
    assert st["journal_durability"] == "group"
    # a pair's second commit is synced by the timer within 20 ms, not by the next pair
    # 100 ms later (a pair slower than 20 ms on a loaded host syncs at commit instead)
    assert st["journal_syncs_timer"] >= 3


def test_os_durability_never_syncs_on_the_timer(tmp_path: Path) -> None:
    st = _orders_then_quiet(tmp_path, "--durability", "os")
    assert st["journal_durability"] == "os"
    assert st["journal_syncs_timer"] == 0
