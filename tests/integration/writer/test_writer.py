"""The writer process against a real journal, a real PUSH socket and a real DuckDB file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pytest
import zmq

from benchmarks.journal_workload import Workload, make_core
from oms_core.journal import EVENT, Journal, JournalReader
from writer.store import TABLES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _journal_events(jdir: str) -> dict[int, int]:
    """event seq -> msg type of every committed event in the journal."""
    out = {}
    for r in JournalReader(jdir):
        if r.rtype == EVENT:
            out[int.from_bytes(r.payload[8:16], "little")] = r.kind
    return out


def _start_writer(endpoint: str, jdir: str, db: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "writer", "--engine", endpoint, "--journal", jdir, "--db", db,
         "--flush-ms", "20", "--batch-rows", "2000", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    return out


def _db_counts(db: str) -> tuple[int, int, int, int]:
    con = duckdb.connect(db, read_only=True)
    last = con.execute("SELECT last_seq FROM writer_state").fetchone()[0]
    n_exec, n_distinct = con.execute(
        "SELECT count(*), count(DISTINCT seq) FROM executions").fetchone()
    total = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in sorted(set(TABLES.values())))  # every event table
    con.close()
    return last, n_exec, n_distinct, total


def _expected(jdir: str) -> tuple[int, int, int]:
    ev = _journal_events(jdir)
    fills = sum(1 for k in ev.values() if k == 67)
    return max(ev), fills, len(ev)


def _free_endpoint(tmp_path) -> str:
    return f"ipc://{tmp_path}/writer.sock"


def test_catch_up_then_live_with_duplicates_and_gap(tmp_path) -> None:
    jdir, db = str(tmp_path / "journal"), str(tmp_path / "oms.duckdb")
    core = make_core()
    w = Workload(core, seed=5)
    j = Journal(jdir, durability="os")
    w.run(3000, j)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.SNDTIMEO, 20_000)
    ep = _free_endpoint(tmp_path)
    push.bind(ep)
    p = _start_writer(ep, jdir, db)
    try:
        time.sleep(1.0)
        frames = []
        for _ in range(1500):
            kind, ts, payload = w.next_input()
            j.append_input(kind, ts, payload)
            events = w.apply(kind, ts, payload)
            for e in events:
                j.append_event(e)
            j.commit()
            if events:
                frames.append(b"".join(events))
        rng = random.Random(1)
        for i, f in enumerate(frames):
            if rng.random() < 0.05:
                continue  # dropped by the engine: a gap the writer fills from the journal
            push.send(f)  # SNDTIMEO bounds the wait for the writer to connect
            if i and rng.random() < 0.1:
                push.send(frames[i - 1])  # a duplicate
        time.sleep(1.5)
    finally:
        out = _stop(p)
        j.close()
        push.close()
    assert p.returncode == 0, out
    last, n_exec, n_distinct, total = _db_counts(db)
    exp_last, exp_fills, exp_total = _expected(jdir)
    assert last == exp_last
    assert n_exec == n_distinct == exp_fills > 50
    assert total == exp_total


def test_locked_database_is_a_clear_error(tmp_path) -> None:
    db = str(tmp_path / "oms.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(30)", db], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        p = subprocess.run(
            [sys.executable, "-m", "writer", "--engine", _free_endpoint(tmp_path), "--db", db,
             "--lock-timeout", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 3
        assert "ALERT writer" in p.stderr and "locked by another process" in p.stderr
    finally:
        holder.kill()
        holder.wait()


def test_export_parquet_hive_partitions(tmp_path) -> None:
    jdir, db = str(tmp_path / "journal"), str(tmp_path / "oms.duckdb")
    w = Workload(make_core(), seed=9)
    j = Journal(jdir, durability="os")
    w.run(1500, j)
    j.close()
    p = _start_writer(_free_endpoint(tmp_path), jdir, db, "--max-seconds", "1")
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    pq = str(tmp_path / "pq")
    e = subprocess.run([sys.executable, "-m", "writer", "export", "--db", db, "--parquet", pq],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert e.returncode == 0, e.stderr
    parts = os.listdir(os.path.join(pq, "executions"))
    assert parts and all(x.startswith("date=") for x in parts)
    q = f"SELECT count(*) FROM read_parquet('{pq}/executions/**/*.parquet', hive_partitioning=1)"
    n = duckdb.connect().execute(q).fetchone()[0]
    assert n == _expected(jdir)[1]


@pytest.mark.slow
def test_kill9_writer_every_execution_exactly_once(tmp_path) -> None:
    jdir, db = str(tmp_path / "journal"), str(tmp_path / "oms.duckdb")
    w = Workload(make_core(), seed=11)
    j = Journal(jdir, durability="os")
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.SNDHWM, 1000)
    ep = _free_endpoint(tmp_path)
    push.bind(ep)
    rng = random.Random(7)
    deadline = time.monotonic() + 90
    for _round in range(8):
        assert time.monotonic() < deadline
        p = _start_writer(ep, jdir, db)
        t_kill = time.monotonic() + rng.uniform(0.3, 1.5)
        while time.monotonic() < t_kill:
            for _ in range(50):
                kind, ts, payload = w.next_input()
                j.append_input(kind, ts, payload)
                events = w.apply(kind, ts, payload)
                for e in events:
                    j.append_event(e)
                j.commit()
                if events:
                    try:
                        push.send(b"".join(events), zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # the engine never waits for the writer
            time.sleep(0.002)
        p.kill()  # SIGKILL at a random moment
        p.wait(timeout=10)
    j.close()
    # a last writer run catches up from the journal and stops
    p = _start_writer(ep, jdir, db, "--max-seconds", "2")
    out, _ = p.communicate(timeout=60)
    push.close()
    assert p.returncode == 0, out
    last, n_exec, n_distinct, total = _db_counts(db)
    exp_last, exp_fills, exp_total = _expected(jdir)
    assert last == exp_last
    assert n_exec == n_distinct == exp_fills
    assert total == exp_total
