"""The pieces every gateway's reconciliation answer shares (gateways/engine_link.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateways.config import GatewayConfig
from gateways.engine_link import asset_map, order_id_of, trade_id_of


def test_order_id_of_reads_only_our_prefix() -> None:
    assert order_id_of("oms-", "oms-12345") == 12345
    assert order_id_of("oms0-", "oms0-7") == 7
    assert order_id_of("oms-", "web_abc") == 0
    assert order_id_of("oms-", "oms-12x") == 0
    assert order_id_of("oms-", "") == 0


def test_trade_id_of_is_stable_across_processes() -> None:
    assert trade_id_of(123) == trade_id_of("123") == 123
    tid = trade_id_of("a1b2-c3")
    assert 0 <= tid < 1 << 63 and tid == trade_id_of("a1b2-c3") != trade_id_of("a1b2-c4")
    # a restarted gateway (another process, another hash seed) gives the same id
    code = "from gateways.engine_link import trade_id_of; print(trade_id_of('a1b2-c3'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, env={"PYTHONHASHSEED": "12345", "PATH": ""}, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert int(out.stdout) == tid


def test_asset_map_from_argument_or_config() -> None:
    cfg = GatewayConfig(kind="ccxt", assets={"BTC": [1, 8], "USDT": [2, 6]})
    assert asset_map(cfg) == {"BTC": (1, 8), "USDT": (2, 6)}
    assert asset_map(cfg, {"ETH": (3, 8)}) == {"ETH": (3, 8)}
    assert asset_map(GatewayConfig(kind="binance")) == {}
