"""``python -m writer --engine ENDPOINT --journal DIR --db FILE`` and
``python -m writer export --db FILE --parquet DIR``.

Exit status: 0 stopped (SIGTERM / SIGINT / --max-seconds) with everything committed; 3 the
database cannot be opened (locked by another process, unreadable); 4 stopped while the
database was not writable (disk full: the next run catches up from the journal). A disk that
fills while the writer runs is not an exit: it alerts once and retries (docs/schema.md).
A SIGTERM / SIGINT at any moment, also while it imports and opens the database, or twice,
ends it with status 0."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from writer.priority import leave_idle

# noted before the slow imports (duckdb, pyarrow); run() takes over with its own handler
_STOP_SIGNALS: list[int] = []


def _note_stop(signum: int, frame: Any) -> None:
    _STOP_SIGNALS.append(signum)
    leave_idle()


signal.signal(signal.SIGTERM, _note_stop)
signal.signal(signal.SIGINT, _note_stop)
# a supervisor starts its children with these blocked (held, not lost, until now)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

import argparse  # noqa: E402
import logging  # noqa: E402

from writer.drain import alert, run  # noqa: E402
from writer.store import StoreError, connect, export_parquet  # noqa: E402


def _export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m writer export")
    p.add_argument("--db", required=True, help="DuckDB file written by the writer")
    p.add_argument("--parquet", required=True, help="output directory (hive partitions)")
    a = p.parse_args(argv)
    try:
        con = connect(a.db, read_only=True)
    except StoreError as e:
        alert(f"{e}. While the writer runs, start it with --parquet DIR --export-every SEC, "
              "or send it SIGUSR1 to export now.")
        return 3
    counts = export_parquet(con, a.parquet)
    con.close()
    for table, n in counts.items():
        print(f"{table}: {n} rows")
    return 0


def _lower_priority(mode: str) -> None:
    """Lower this process's CPU priority before any thread starts (threads inherit it)."""
    try:
        if mode == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif mode in ("idle", "low"):
            os.nice(10)
    except OSError as e:
        logging.getLogger("writer").warning("cannot lower the CPU priority: %s", e)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if argv and argv[0] == "export":
        return _export(argv[1:])
    p = argparse.ArgumentParser(prog="python -m writer", description=__doc__)
    p.add_argument("--engine", required=True, help="engine event endpoint (ZeroMQ)")
    p.add_argument("--journal", help="engine journal directory, for catch-up after a restart")
    p.add_argument("--db", default="oms.duckdb", help="DuckDB file (created on first use)")
    p.add_argument("--socket", choices=("pull", "sub"), default="pull")
    p.add_argument("--bind", action="store_true", help="bind instead of connect")
    p.add_argument("--batch-rows", type=int, default=50_000)
    p.add_argument("--flush-ms", type=int, default=500,
                   help="commit to DuckDB at least this often (each commit syncs the file; "
                        "frequent syncs compete with the journal's for the disk)")
    p.add_argument("--lock-timeout", type=float, default=10.0)
    p.add_argument("--parquet", help="export directory for --export-every / SIGUSR1")
    p.add_argument("--export-every", type=float, default=0.0)
    p.add_argument("--max-seconds", type=float, default=0.0, help="stop after (tests)")
    p.add_argument("--curve-secret-file", default="",
                   help="CURVE: this writer's .key_secret file (engine security on)")
    p.add_argument("--server-public-file", default="",
                   help="CURVE: the engine's public key file")
    p.add_argument("--cpu", choices=("idle", "low", "normal"), default="idle",
                   help="CPU priority: 'idle' (SCHED_IDLE: any normal process gets the core "
                        "first; when starved it catches up from the journal), 'low' (nice 10) "
                        "or 'normal'")
    a = p.parse_args(argv)
    if _STOP_SIGNALS:  # stopped while starting: nothing was opened yet
        return 0
    _lower_priority(a.cpu)
    return run(a.engine, a.journal, a.db, a.socket, a.bind, a.batch_rows, a.flush_ms,
               a.lock_timeout, a.parquet, a.export_every, a.max_seconds,
               stop_requested=lambda: bool(_STOP_SIGNALS),
               curve_secret_file=a.curve_secret_file, server_public_file=a.server_public_file)


if __name__ == "__main__":
    code = main()
    # CPython puts the default action back for Python handlers while it shuts down: a late
    # signal would turn this exit into -15; an ignored one stays ignored
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
