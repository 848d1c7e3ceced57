"""The writer on the REAL engine's PUSH socket: ``python -m writer --engine EP --journal DIR
--db FILE`` drains a running engine; kill -9 of the writer mid-run and restarts; DuckDB ends
with every execution exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import zmq
from engine_crash_fixtures import Engine, Gateway, Trader, write_config

from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core.engine.process import ROOT
from oms_core.journal import EVENT, JournalReader
from writer.store import TABLES

pytestmark = pytest.mark.timeout(120)


def _writer(ep: str, jdir: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "writer", "--engine", ep, "--journal", str(jdir), "--db",
         str(db), "--flush-ms", "20", "--batch-rows", "5000", *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _journal_fills(jdir: Path) -> dict[int, int]:
    """event seq -> trade id of every FILL event in the journal."""
    out = {}
    r = JournalReader(str(jdir))
    for rec in r:
        if rec.rtype == EVENT and rec.kind == MsgType.FILL:
            f = wire.decode(rec.payload)
            out[f.seq] = f.trade_id
    r.close()
    return out


def _run(tmp_path: Path, kills: int, seconds: float) -> None:
    rng = random.Random(11)
    cfg = write_config(tmp_path)
    jdir, db = tmp_path / "journal", tmp_path / "oms.duckdb"
    ctx = zmq.Context()
    e = Engine(cfg, jdir).start()
    wep = e.endpoints["writer"]
    gw = Gateway(ctx, e.endpoints)
    gw.start()
    acked: dict[int, int] = {}
    t = Trader(ctx, e.endpoints["client"], acked, 1, per_frame=10, window=2)
    w = _writer(wep, jdir, db)
    n_killed = 0
    try:
        end = time.monotonic() + seconds
        kill_at = [time.monotonic() + seconds * (i + rng.uniform(0.3, 0.8)) / (kills + 1)
                   for i in range(kills)]
        while time.monotonic() < end:
            t.pump(min(end, kill_at[0] if kill_at else end), lambda: True)
            if kill_at and time.monotonic() >= kill_at[0]:
                kill_at.pop(0)
                w.kill()  # SIGKILL: whatever was not committed to DuckDB is lost
                w.wait(10)
                n_killed += 1
                w = _writer(wep, jdir, db)
        t.close()
        time.sleep(0.5)  # the venue fills the last orders
        assert e.stop() == 0
        w.send_signal(signal.SIGTERM)
        _, err = w.communicate(timeout=30)
        assert w.returncode == 0, err[-2000:]
        # one more start: it catches up from the journal whatever the live socket dropped
        w = _writer(wep, jdir, db, "--max-seconds", "1")
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err[-2000:]
    finally:
        if w.poll() is None:
            w.kill()
            w.wait(10)
        gw.close()
        ctx.destroy(0)
    assert n_killed == kills
    fills = _journal_fills(jdir)
    assert len(fills) > 200 and len(set(fills.values())) == len(fills)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT seq, trade_id FROM executions ORDER BY seq").fetchall()
    last = con.execute("SELECT last_seq FROM writer_state").fetchone()[0]
    counts = [con.execute(f"SELECT count(*), count(DISTINCT seq) FROM {tb}").fetchone()
              for tb in TABLES.values()]
    n_events = sum(c[0] for c in counts)
    assert all(c[0] == c[1] for c in counts)  # no event twice in any table
    con.close()
    assert [s for s, _ in rows] == sorted(fills)  # every execution, each once, no extra
    assert dict(rows) == fills
    events = 0
    r = JournalReader(str(jdir))
    for rec in r:
        events += rec.rtype == EVENT
    r.close()
    assert last == events and n_events == events
    print(f"writer killed {kills}x: {len(rows)} executions, {events} events, each once")


def test_writer_drains_real_engine_restart_exactly_once(tmp_path: Path) -> None:
    _run(tmp_path, kills=1, seconds=3.0)


@pytest.mark.slow
def test_writer_kill9_many_times_on_real_engine_exactly_once(tmp_path: Path) -> None:
    _run(tmp_path, kills=5, seconds=15.0)
