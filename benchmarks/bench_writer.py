"""Writer throughput into DuckDB: ours vs a bare Arrow bulk insert of the same rows.

Ours: engine-style frames of FILL records (500 per frame) -> Batcher.add_frame (dedupe by
sequence, split per type) -> numpy structured view -> Arrow -> INSERT, committed with the
writer_state sequence in one transaction every ``batch`` rows. Baseline: the same rows already
in an Arrow table, inserted in the same batch sizes into a fresh database (no decoding, no
sequence bookkeeping). Targets: >= 300,000 rows/s and >= 80% of the baseline.

Also measured, with no target: catching up from the journal (the same rows as engine events in
journal segments -> ``oms_core.journal.events_after`` batches -> numpy -> Arrow -> DuckDB), what
the writer does on start and after an outage (``Writer.catch_up``).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

import duckdb
import numpy as np

from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core.journal import Journal
from writer.drain import Batcher, Writer
from writer.store import SPECS, Store, arrow_table, create_sql

TARGET_ROWS_S = 300_000
TARGET_RATIO = 0.80


def make_frames(n: int, per_frame: int = 500) -> list[bytes]:
    spec = SPECS[MsgType.FILL]
    arr = np.zeros(n, dtype=spec.dtype)
    arr["magic"], arr["version"], arr["msg_type"], arr["length"] = 0x4D4F, 1, 67, spec.size
    arr["seq"] = np.arange(1, n + 1)
    arr["order_id"] = np.arange(n) // 3 + 1
    arr["trade_id"] = np.arange(n) + 10**9
    arr["quantity"] = 1000
    arr["price"] = 5_000_000 + np.arange(n) % 1000
    arr["fee"] = 10
    arr["event_ns"] = 1_700_000_000_000_000_000 + np.arange(n) * 1000
    arr["account"] = np.arange(n) % 4
    arr["side"] = 1 + np.arange(n) % 2
    raw = arr.tobytes()
    size = spec.size
    return [raw[i * size:(i + per_frame) * size] for i in range(0, n, per_frame)]


def run_ours(db: str, frames: list[bytes], batch: int) -> tuple[float, int]:
    store = Store(db)
    b = Batcher()
    gc.disable()
    t = time.perf_counter()
    for f in frames:
        b.add_frame(f, store.last_seq)
        if b.rows >= batch:
            store.commit_batch(b.arrays(), b.last_seq)
            b.clear()
    if b.rows:
        store.commit_batch(b.arrays(), b.last_seq)
        b.clear()
    dt = time.perf_counter() - t
    gc.enable()
    n = store.con.execute("SELECT count(*) FROM executions").fetchone()[0]
    store.close()
    return dt, n


def run_catch_up(db: str, journal_dir: str, frames: list[bytes], batch: int) -> tuple[float, int]:
    """Seconds for a fresh writer to catch up with ``frames`` written as journal events (one
    input and the events of one frame per commit group); rows it committed."""
    size = SPECS[MsgType.FILL].size
    j = Journal(journal_dir, durability="os")
    for k, f in enumerate(frames):
        j.append_input(int(MsgType.NEW_ORDER), k, b"\0" * 32)
        for off in range(0, len(f), size):
            j.append_event(f[off:off + size])
        j.commit()
    j.close()
    w = Writer(Store(db), journal_dir, batch_rows=batch)
    gc.disable()
    t = time.perf_counter()
    rows = w.catch_up()
    dt = time.perf_counter() - t
    gc.enable()
    w.store.close()
    return dt, rows


def run_bare(db: str, frames: list[bytes], batch: int) -> float:
    spec = SPECS[MsgType.FILL]
    arr = np.frombuffer(b"".join(frames), dtype=spec.dtype)
    tables = [arrow_table(spec, arr[i:i + batch]) for i in range(0, len(arr), batch)]
    con = duckdb.connect(db)
    con.execute(create_sql(spec))
    gc.disable()
    t = time.perf_counter()
    for tbl in tables:
        con.register("_b", tbl)
        con.execute('INSERT INTO "executions" SELECT * FROM _b')
        con.unregister("_b")
    dt = time.perf_counter() - t
    gc.enable()
    con.close()
    return dt


def main(smoke: bool = False) -> bool:
    n = 20_000 if smoke else 1_000_000
    batch = 50_000
    frames = make_frames(n)
    with tempfile.TemporaryDirectory() as d:
        base = run_bare(os.path.join(d, "bare.duckdb"), frames, batch)
        ours, rows = run_ours(os.path.join(d, "ours.duckdb"), frames, batch)
        journal, journal_rows = run_catch_up(os.path.join(d, "journal.duckdb"),
                                             os.path.join(d, "journal"), frames, batch)
    assert rows == journal_rows == n
    r_ours, r_base = n / ours, n / base
    print(f"{n:,} FILL rows ({SPECS[MsgType.FILL].size} B records, 500 per frame), "
          f"batches of {batch:,}")
    print(f"  writer (frames -> dedupe -> numpy -> Arrow -> DuckDB, seq committed) "
          f"{r_ours:12,.0f} rows/s")
    print(f"  baseline bare Arrow bulk insert of prepared tables                   "
          f"{r_base:12,.0f} rows/s   ratio {r_ours / r_base:.2f}")
    print(f"  catch-up from the journal (Writer.catch_up -> numpy -> Arrow -> DuckDB) "
          f"{n / journal:12,.0f} rows/s")
    _ = wire  # record layouts come from bindings.wire
    if smoke:
        return True
    checks = [(r_ours >= TARGET_ROWS_S, f"writer {r_ours:,.0f} rows/s >= {TARGET_ROWS_S:,}"),
              (r_ours / r_base >= TARGET_RATIO,
               f"writer / bare ratio {r_ours / r_base:.2f} >= {TARGET_RATIO}")]
    ok = True
    for passed, text in checks:
        print(("  PASS " if passed else "  MISS ") + text)
        ok &= passed
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(smoke="--smoke" in sys.argv) else 1)
