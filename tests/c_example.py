"""bindings/c/publisher_example.c compiled with gcc against the libzmq in pyzmq's wheel."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[1]


def build_publisher_example(directory: Path) -> Path:
    """The compiled example in ``directory`` (the test is skipped without gcc or libzmq)."""
    libs = Path(zmq.__file__).resolve().parent.parent / "pyzmq.libs"
    found = sorted(glob.glob(str(libs / "libzmq*.so*")))
    if shutil.which("gcc") is None or not found:
        pytest.skip("gcc or pyzmq's bundled libzmq missing")
    exe = directory / "publisher_example"
    subprocess.run(
        ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'bindings/c'}",
         str(ROOT / "bindings/c/publisher_example.c"), found[0],
         f"-Wl,-rpath,{Path(found[0]).parent}", "-o", str(exe)],
        check=True, capture_output=True, timeout=90)
    return exe
