"""One instance per run directory and journal: a second ``oms run`` (or engine) on the same
directories refuses before it writes anything, naming the holder's PID; ipc:// links given as
relative paths live in the run directory and are removed at stop; an endpoint in use is one
line naming it. Real processes on loopback.
"""

from __future__ import annotations

import hashlib
import json
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oms_core.demo import write_demo_config
from oms_core.engine.process import ROOT, base_config, config_args, write_config

OMS = [sys.executable, "-m", "oms_core.cli"]
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}


def _files(d: Path) -> dict[str, str]:
    """Content hash of every regular file the first instance wrote into its run directory
    (its logs and state.json are its own to change)."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if rel.parts[0] == "logs" or rel.name.startswith("state.json") or not p.is_file():
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _sockets(d: Path) -> set[str]:
    return {p.name for p in d.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)}


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> dict:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return json.loads(line[6:])
            if not line and proc.poll() is not None:
                break
    raise RuntimeError("oms run did not start")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_second_oms_run_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    text = config.read_text()
    for name in ("orders", "events", "market_data"):  # the gateway links: relative ipc paths
        lines = [ln for ln in text.splitlines() if ln.startswith(f"{name} = \"tcp://")]
        text = text.replace(lines[0], f'{name} = "ipc://gw-{name}"')
    config.write_text(text)
    run_dir = tmp_path / "run"
    args = OMS + ["run", "--config", str(config), "--run-dir", str(run_dir)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ENV, cwd=ROOT)
    try:
        _wait_ready(first, 60)
        assert {"gw-orders", "gw-events", "gw-market_data"} <= _sockets(run_dir)
        before = _files(run_dir)
        assert any(k.endswith(".key") for k in before) and any(
            k.startswith("gateway-") for k in before)
        # the same run directory, then another run directory on the same journal
        for other in (run_dir, tmp_path / "run2"):
            r = subprocess.run(OMS + ["run", "--config", str(config), "--run-dir", str(other)],
                               capture_output=True, text=True, timeout=30, env=ENV, cwd=ROOT)
            assert r.returncode == 1, r.stderr
            assert f"pid {first.pid}" in r.stderr and "in use by another instance" in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert _files(run_dir) == before
        assert not (tmp_path / "run2").exists()
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, (out[-2000:], err[-2000:])
        assert _sockets(run_dir) == set()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)


def test_second_engine_on_a_journal_is_refused(tmp_path: Path) -> None:
    path = write_config(base_config(tmp_path, "ipc"), tmp_path / "engine.toml")
    jdir = tmp_path / "journal"
    args = [sys.executable, "-m", "oms_core.engine", *config_args(path), "--journal",
            str(jdir), "--log-level", "WARNING"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=ENV, cwd=ROOT)
    try:
        assert first.stdout is not None
        end = time.monotonic() + 30
        while time.monotonic() < end and not first.stdout.readline().startswith("READY"):
            pass
        segments = sorted(p.name for p in jdir.iterdir())
        r = subprocess.run(args, capture_output=True, text=True, timeout=30, env=ENV, cwd=ROOT)
        assert r.returncode == 2
        assert f"pid {first.pid}" in r.stderr, r.stderr
        assert sorted(p.name for p in jdir.iterdir()) == segments
        first.send_signal(signal.SIGTERM)
        assert first.wait(20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)


def test_endpoint_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = base_config(tmp_path, "ipc")
        cfg["engine"]["commands"] = f"tcp://127.0.0.1:{port}"
        path = write_config(cfg, tmp_path / "engine.toml")
        r = subprocess.run([sys.executable, "-m", "oms_core.engine", *config_args(path),
                            "--log-level", "WARNING"], capture_output=True, text=True,
                           timeout=30, env=ENV, cwd=ROOT)
        assert r.returncode == 2
        assert r.stderr.strip() == (f"engine: cannot bind tcp://127.0.0.1:{port}: "
                                    "Address already in use"), r.stderr
        # the supervisor's status endpoint: the same, from `oms run`
        config = write_demo_config(tmp_path / "oms")
        text = config.read_text()
        line = next(ln for ln in text.splitlines() if ln.startswith("health = "))
        config.write_text(text.replace(line, f'health = "tcp://127.0.0.1:{port}"'))
        r = subprocess.run(OMS + ["run", "--config", str(config), "--run-dir",
                                  str(tmp_path / "oms" / "run")],
                           capture_output=True, text=True, timeout=30, env=ENV, cwd=ROOT)
        assert r.returncode == 1
        assert r.stderr.strip() == (f"oms: cannot bind the status endpoint "
                                    f"tcp://127.0.0.1:{port}: Address already in use"), r.stderr
