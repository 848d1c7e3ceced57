"""Stopping the real engine process: exit status 0 for one SIGTERM or many, at any moment from
its STARTING line on (configuration load, recovery, serving, after STOPPED).

A stop signal that lands while CPython shuts the interpreter down used to kill the engine with
the default action (-15): the interpreter puts the default handler back for handlers set from
Python. A signal during configuration load or recovery skipped the clean close.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from bindings.wire import records as wire
from bindings.wire import spec
from bindings.wire.spec import MsgType
from oms_core.engine.process import (
    ROOT,
    EngineProcess,
    base_config,
    config_args,
    spawn_engine,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


def _read_until(proc: subprocess.Popen[str], word: str, timeout: float = 20.0) -> dict:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if not r:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(word + " "):
            return json.loads(line[len(word) + 1:])
    raise TimeoutError(f"no {word} line")


def _signal_until_exit(proc: subprocess.Popen[str], timeout: float = 15.0) -> int:
    """SIGTERM every half millisecond until the process is gone; its exit status."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.0005)
    return proc.wait(5)


def test_sigterm_after_stopped_and_during_exit_is_exit_zero(tmp_path: Path) -> None:
    for round_ in range(3):
        d = tmp_path / f"r{round_}"
        d.mkdir()
        e = EngineProcess(base_config(d, "ipc"), d).start()
        assert e.proc is not None
        e.proc.send_signal(signal.SIGTERM)
        e.proc.send_signal(signal.SIGTERM)  # twice, as an impatient supervisor does
        _read_until(e.proc, "STOPPED")
        # the stop is done; the interpreter is shutting down: every signal from here on
        # used to risk the default action
        assert _signal_until_exit(e.proc) == 0


def _journal_with_orders(tmp: Path, n_frames: int = 5) -> tuple[Path, Path, int]:
    """A configuration and a journal of ``n_frames`` x 2000 orders; its last journal seq."""
    cfg = base_config(tmp, "ipc")
    path = write_config(cfg, tmp / "engine.toml")
    jdir = tmp / "journal"
    args = [sys.executable, "-m", "oms_core.engine", *config_args(path), "--journal",
            str(jdir), "--log-level", "WARNING", "--no-reconcile"]
    proc = spawn_engine(args, subprocess.DEVNULL)
    try:
        eps = _read_until(proc, "READY")
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(eps["client"])
            for k in range(n_frames):
                fb = wire.FrameBuilder(1 << 20)
                for i in range(2000):
                    cl = k * 2000 + i + 1
                    fb.add_fields("NEW_ORDER", cl, cl, 0, client_order_id=cl, price=4_999_000,
                                  quantity=1, account=2, instrument=1, side=1, order_type=2,
                                  tif=1)
                s.send(fb.tobytes())
            answers, end = 0, time.monotonic() + 30
            while answers < n_frames * 2000 and time.monotonic() < end:
                if s.poll(100):
                    answers += len(wire.decode_frame(s.recv()))
            assert answers >= n_frames * 2000
        finally:
            ctx.destroy(0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return path, jdir, _recovered_seq(path, jdir)


def _recovered_seq(config: Path, jdir: Path) -> int:
    args = [sys.executable, "-m", "oms_core.engine", *config_args(config), "--journal",
            str(jdir), "--log-level", "WARNING", "--no-reconcile"]
    proc = spawn_engine(args, subprocess.DEVNULL)
    try:
        rec = _read_until(proc, "RECOVERED")
        _read_until(proc, "READY")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        return int(rec["last_seq"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_sigterm_during_config_load_and_recovery_is_exit_zero(tmp_path: Path) -> None:
    config, jdir, last_seq = _journal_with_orders(tmp_path)
    assert last_seq >= 10_000
    args = [sys.executable, "-m", "oms_core.engine", *config_args(config), "--journal",
            str(jdir), "--log-level", "WARNING"]
    words_seen: list[set[str]] = []
    for delay in (0.0, 0.02, 0.1, 0.25, 0.5, 1.0):
        proc = spawn_engine(args, subprocess.DEVNULL)
        try:
            _read_until(proc, "STARTING")
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, (delay, proc.returncode, out)
            words_seen.append({ln.partition(" ")[0] for ln in out.splitlines()})
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    # the early signals stopped the start before it served anyone
    assert "READY" not in words_seen[0] and "STOPPED" in words_seen[0]
    # nothing was lost or half written: the journal recovers as before (the starts that got
    # as far as the reconciliation gate journaled its HALT: inputs only ever added)
    assert _recovered_seq(config, jdir) >= last_seq


def test_writer_stops_with_exit_zero_while_starting_and_when_signalled_twice(
        tmp_path: Path) -> None:
    """The writer under `oms run` is stopped as soon as it started as often as the engine;
    it runs at SCHED_IDLE, so on a busy machine its imports and database open take long."""
    from oms_core.engine.process import ROOT, stop_with_parent_signals_held

    for i, delay in enumerate((0.0, 0.3, 0.6, 1.0, 2.0)):
        proc = subprocess.Popen(  # as the supervisor starts it
            [sys.executable, "-m", "writer", "--engine", "tcp://127.0.0.1:1", "--db",
             str(tmp_path / f"w{i}.duckdb")], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            preexec_fn=stop_with_parent_signals_held)
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, (delay, proc.returncode)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_a_journal_of_another_wire_version_is_refused_with_a_clear_error(tmp_path: Path
                                                                          ) -> None:
    # a record layout changed between versions: replaying old records would misread every
    # field (and the loop would refuse them one by one, losing the history in silence)
    from oms_core import journal as J

    cfg = base_config(tmp_path, "ipc")
    path = write_config(cfg, tmp_path / "engine.toml")
    jdir = tmp_path / "journal"
    rec = bytearray(wire.encode("NEW_ORDER", 1, 0, 1, 0, client_order_id=1, price=4_999_000,
                                quantity=1, account=1, instrument=1, side=1, order_type=2,
                                tif=1))
    rec[2] = spec.VERSION - 1 if spec.VERSION > 1 else spec.VERSION + 1
    j = J.Journal(str(jdir))
    j.append_input(int(MsgType.NEW_ORDER), 1_000, bytes(rec))
    j.commit()
    j.close()
    out = subprocess.run(
        [sys.executable, "-m", "oms_core.engine", *config_args(path), "--journal", str(jdir),
         "--log-level", "WARNING", "--no-reconcile"], capture_output=True, text=True,
        timeout=60, cwd=ROOT)
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"wire protocol version {rec[2]}" in out.stderr
    assert f"speaks version {spec.VERSION}" in out.stderr and "Traceback" not in out.stderr
