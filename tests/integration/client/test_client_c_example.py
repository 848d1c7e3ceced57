"""The C publisher example: compiled with gcc against the libzmq in pyzmq's wheel, run against
the real engine process; the order it encoded is read back field by field with the Python
client."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from c_example import build_publisher_example

from bindings.client import OmsClient
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import OrderType, Side

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_publisher_example(tmp_path_factory.mktemp("c"))


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    with EngineProcess(base_config(tmp_path, "tcp"), tmp_path) as e:
        yield e


def test_c_publisher_gets_ack(publisher: Path, engine: EngineProcess) -> None:
    ep = engine.endpoints["client"]
    p = subprocess.run([str(publisher), ep, "3", "1", "2", "5010000", "1500"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    ack = re.search(r"^ACK request_id=1 order_id=(\d+) ", p.stdout, re.M)
    assert ack, p.stdout
    assert "ORDER_UPDATE order_id=" in p.stdout  # the engine routed the order's event to it
    with OmsClient(ep, account=3, timeout=5) as c:
        (row,) = c.orders().rows
    assert (row.order_id, row.account, row.instrument, row.side, row.order_type, row.price,
            row.quantity) == (int(ack[1]), 3, 1, Side.SELL, OrderType.LIMIT, 5_010_000, 1500)


def test_c_publisher_gets_reject(publisher: Path, engine: EngineProcess) -> None:
    p = subprocess.run([str(publisher), engine.endpoints["client"], "3", "1", "1", "100", "0"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "REJECT request_id=1 code=8" in p.stdout  # INVALID_QUANTITY
