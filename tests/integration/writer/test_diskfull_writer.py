"""The writer when its DuckDB file cannot grow: one clear alert, no traceback, retries with
back-off, and once space returns every journaled event is in DuckDB exactly once.

Runs on a real 4 MiB tmpfs (ENOSPC) when this host lets the test mount one in a private mount
namespace, and always with RLIMIT_FSIZE (EFBIG; space returns by restarting the writer without
the limit). The test id says which one ran.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import zmq
from diskfull_fixtures import (
    LineReader,
    fill,
    plain_dir,
    rlimit_prefix,
    small_tmpfs,
    tmpfs_supported,
)

from benchmarks.journal_workload import Workload, make_core
from oms_core.journal import EVENT, Journal, JournalReader

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(60)
TABLES = ("orders", "executions", "positions", "balances", "acks", "risk_rejects", "alerts",
          "trades_closed", "kill_states", "limits", "signals")


def _writer(endpoint: str, jdir: Path, db: Path, prefix: list[str] | None = None
            ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "writer", "--engine", endpoint, "--journal",
         str(jdir), "--db", str(db), "--flush-ms", "20", "--batch-rows", "2000",
         "--cpu", "normal"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _journal_events(jdir: Path) -> dict[int, int]:
    out = {}
    for r in JournalReader(str(jdir)):
        if r.rtype == EVENT:
            out[int.from_bytes(r.payload[8:16], "little")] = r.kind
    return out


def _db_state(db: Path) -> tuple[int, int, int, int]:
    """last_seq, rows, distinct seqs over every event table, rows of executions."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        last = con.execute("SELECT last_seq FROM writer_state").fetchone()[0]
        union = " UNION ALL ".join(f'SELECT seq FROM "{t}"' for t in TABLES)
        rows, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT seq) FROM ({union})").fetchone()
        n_exec = con.execute("SELECT count(*) FROM executions").fetchone()[0]
    finally:
        con.close()
    return int(last), int(rows), int(distinct), int(n_exec)


class _Producer:
    """The engine's side: journal every input and its events, PUSH the events live."""

    def __init__(self, jdir: Path, push: zmq.Socket) -> None:
        self.w = Workload(make_core(), seed=21)
        self.j = Journal(str(jdir), durability="os")
        self.push = push

    def run(self, n: int) -> None:
        w, j = self.w, self.j
        for i in range(n):
            kind, ts, payload = w.next_input()
            j.append_input(kind, ts, payload)
            events = w.apply(kind, ts, payload)
            for e in events:
                j.append_event(e)
            j.commit()
            if events:
                try:
                    self.push.send(b"".join(events), zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the engine never waits for the writer
            if i % 50 == 0:
                time.sleep(0.002)


MODES = ["tmpfs", "rlimit"]


@pytest.mark.parametrize("mode", MODES)
def test_writer_disk_full_alerts_once_then_catches_up_exactly_once(tmp_path: Path,
                                                                   mode: str) -> None:
    if mode == "tmpfs" and (why := tmpfs_supported()):
        pytest.skip(f"tmpfs: {why} (the rlimit variant covers this host)")
    jdir = tmp_path / "journal"
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.SNDHWM, 100_000)
    ep = f"ipc://{tmp_path}/writer.sock"
    push.bind(ep)
    prod = _Producer(jdir, push)
    prod.run(1500)
    with (small_tmpfs(tmp_path / "mnt", "4m") if mode == "tmpfs"
          else plain_dir(tmp_path / "dbdir")) as fs:
        db = fs.inside / "oms.duckdb"
        p = _writer(ep, jdir, db, fs.prefix if mode == "tmpfs" else rlimit_prefix(160 << 10))
        out = LineReader(p)
        try:
            out.wait_for("caught up", 30)
            if mode == "tmpfs":
                fill(fs.outside)
            # live traffic while the database cannot grow: commits fail
            deadline = time.monotonic() + 20
            while not any("ALERT writer" in ln for ln in out.lines):
                assert time.monotonic() < deadline, "".join(out.lines)
                prod.run(300)
                try:
                    out.wait_for("ALERT writer", 0.3)
                except AssertionError:
                    pass
            prod.run(300)  # more traffic during the outage: dropped live, kept in the journal
            time.sleep(0.7)  # a retry (after 0.5 s) fails meanwhile: it must not alert again
            if mode == "tmpfs":
                (fs.outside / "filler").unlink()  # space returns: the same writer recovers
                out.wait_for("writable again", 20)
                prod.run(300)  # and goes live again
                time.sleep(0.3)
                p.send_signal(signal.SIGTERM)
                text = out.rest()
                assert p.returncode == 0, text
            else:
                # this writer can never grow the file: stop it (it says so, status 4) and
                # start one without the limit, as a supervisor would
                p.send_signal(signal.SIGTERM)
                text = out.rest()
                assert p.returncode == 4, text
                assert "journal only" in text
                p2 = _writer(ep, jdir, db)
                out2 = LineReader(p2)
                out2.wait_for("caught up", 30)
                prod.run(300)
                time.sleep(0.3)
                p2.send_signal(signal.SIGTERM)
                text2 = out2.rest()
                assert p2.returncode == 0, text2
                assert "ALERT" not in text2 and "Traceback" not in text2
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            prod.j.close()
        alerts = [ln for ln in text.splitlines() if "ALERT writer" in ln]
        errno_text = "No space left on device" if mode == "tmpfs" else "File too large"
        print(f"[{mode}] writer alerts / recovery:", *alerts,
              *(ln for ln in text.splitlines() if "writable again" in ln), sep="\n  ")
        assert "Traceback" not in text
        assert str(db) in alerts[0] and errno_text in alerts[0], alerts[0]
        # one ALERT for the outage (+ one at stop when it is still down)
        assert len(alerts) == (1 if mode == "tmpfs" else 2), alerts
        check = tmp_path / "check"  # read a copy: DuckDB cannot reach the mount from here
        check.mkdir()
        for f in fs.outside.iterdir():
            if f.name.startswith("oms.duckdb"):
                shutil.copy(f, check / f.name)
        last, rows, distinct, n_exec = _db_state(check / "oms.duckdb")
    push.close()
    ev = _journal_events(jdir)
    assert last == max(ev)
    assert rows == distinct == len(ev)  # every journaled event exactly once
    assert n_exec == sum(1 for k in ev.values() if k == 67) > 50



# in the child, inside the tmpfs namespace: a tiny checkpoint threshold makes DuckDB checkpoint
# at a commit, and a failed checkpoint INVALIDATES the database instance ("must be restarted")
_INVALIDATED = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from benchmarks.journal_workload import Workload, make_core
from oms_core.journal import Journal
from writer.drain import Writer
from writer.store import Store
mnt, jdir = sys.argv[1], sys.argv[2]
j = Journal(jdir, durability="os")
w = Workload(make_core(), seed=3)
w.run(1500, j)
st = Store(mnt + "/oms.duckdb")
st.con.execute("SET checkpoint_threshold='32KB'")
wr = Writer(st, jdir, batch_rows=200)
wr.catch_up()
before = wr.committed
with open(mnt + "/filler", "wb", buffering=0) as f:
    try:
        for _ in range(10000):
            f.write(bytes(65536))
    except OSError:
        pass
w.run(3000, j)
wr.catch_up()
down = wr.down
os.unlink(mnt + "/filler")
wr.retry_at = 0.0
ok = wr.retry()
union = " UNION ALL ".join(f'SELECT seq FROM "{t}"' for t in
                           ("orders", "executions", "positions", "balances", "acks",
                            "risk_rejects", "alerts", "trades_closed", "kill_states", "limits",
                            "signals"))
rows, distinct = st.con.execute(f"SELECT count(*), count(DISTINCT seq) FROM ({union})").fetchone()
st.close()
print(json.dumps({"before": before, "down": down, "ok": ok, "committed": wr.committed,
                  "journal_last": j.last_event_seq, "rows": rows, "distinct": distinct}))
"""


def test_writer_reopens_a_database_invalidated_by_a_failed_checkpoint(tmp_path: Path) -> None:
    if why := tmpfs_supported():
        pytest.skip(f"tmpfs: {why}")
    with small_tmpfs(tmp_path / "mnt", "3m") as fs:
        r = subprocess.run([*fs.prefix, sys.executable, "-c", _INVALIDATED, str(fs.inside),
                            str(tmp_path / "journal")], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    alerts = [ln for ln in r.stderr.splitlines() if "ALERT writer" in ln]
    print("invalidated:", res, *alerts, sep="\n  ")
    assert len(alerts) == 1 and "FATAL" in alerts[0] and "No space left on device" in alerts[0]
    assert res["down"] and res["ok"] and res["before"] > 0
    assert res["committed"] == res["journal_last"] == res["rows"] == res["distinct"]
