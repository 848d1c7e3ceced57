"""The C publisher example: compiled with gcc against the libzmq in pyzmq's wheel, run against
the real engine process; the order it encoded is read back field by field with the Python
client."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zmq

from bindings.client import OmsClient
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import OrderType, Side

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def _libzmq() -> str | None:
    libs = Path(zmq.__file__).resolve().parent.parent / "pyzmq.libs"
    found = sorted(glob.glob(str(libs / "libzmq*.so*")))
    return found[0] if found else None


@pytest.fixture(scope="module")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    lib = _libzmq()
    if lib is None:
        pytest.skip("pyzmq wheel without bundled libzmq")
    exe = tmp_path_factory.mktemp("c") / "publisher_example"
    subprocess.run(
        ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'bindings/c'}",
         str(ROOT / "bindings/c/publisher_example.c"), lib,
         f"-Wl,-rpath,{Path(lib).parent}", "-o", str(exe)],
        check=True, capture_output=True, timeout=90,
    )
    return exe


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
