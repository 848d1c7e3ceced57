"""The C publisher example: compiled with gcc against the libzmq in pyzmq's wheel, run against
a Python ROUTER that decodes its NEW_ORDER with the Python decoder and answers an ACK."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest
import zmq

from bindings.stub_engine import StubEngine
from bindings.wire.spec import MsgType

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


def test_c_publisher_gets_ack(publisher: Path) -> None:
    with StubEngine("tcp://127.0.0.1:0") as engine:
        p = subprocess.run([str(publisher), engine.endpoint, "3", "7", "2", "10125", "1500"],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p.stderr
        assert "ACK request_id=1 order_id=1" in p.stdout
        (rec,) = engine.received
        assert rec.msg_type == MsgType.NEW_ORDER
        assert (rec.account, rec.instrument, rec.side, rec.price, rec.quantity) == (
            3, 7, 2, 10125, 1500)


def test_c_publisher_gets_reject(publisher: Path) -> None:
    with StubEngine("tcp://127.0.0.1:0") as engine:
        p = subprocess.run([str(publisher), engine.endpoint, "3", "7", "1", "100", "0"],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "REJECT request_id=1 code=8" in p.stdout
