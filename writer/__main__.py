"""``python -m writer --engine ENDPOINT --journal DIR --db FILE`` and
``python -m writer export --db FILE --parquet DIR``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from writer.drain import alert, run
from writer.store import StoreError, connect, export_parquet


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
    p.add_argument("--flush-ms", type=int, default=50)
    p.add_argument("--lock-timeout", type=float, default=10.0)
    p.add_argument("--parquet", help="export directory for --export-every / SIGUSR1")
    p.add_argument("--export-every", type=float, default=0.0)
    p.add_argument("--max-seconds", type=float, default=0.0, help="stop after (tests)")
    p.add_argument("--nice", type=int, default=10,
                   help="lower the writer's CPU priority by this much (os.nice) so that on a "
                        "machine with few cores it yields to the engine; 0 keeps it")
    a = p.parse_args(argv)
    if a.nice > 0:
        try:
            os.nice(a.nice)
        except OSError as e:
            logging.getLogger("writer").warning("cannot lower the priority: %s", e)
    return run(a.engine, a.journal, a.db, a.socket, a.bind, a.batch_rows, a.flush_ms,
               a.lock_timeout, a.parquet, a.export_every, a.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
