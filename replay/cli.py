"""``oms replay`` (also ``python -m replay``): replay bars and signals through the engine.

``oms replay --config oms.toml --bars bars.parquet --signals signals.csv [--out replay.duckdb]
[--parquet DIR]``: loads the files (:mod:`replay.data`), runs :func:`replay.driver.run_replay`
and prints the counts, the digest and the final positions. See docs/replay.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from oms_core.config import OmsConfig, load_config
from replay.data import load_bars, load_signals
from replay.driver import ReplayResult, run_replay

__all__ = ["main"]

DESCRIPTION = "Replay mode: historical bars and signals through the engine, on a simulated clock."


def main(argv: Sequence[str] | None = None,
         after: Callable[[str | None, OmsConfig], int] | None = None) -> int:
    """``oms replay``: replay bars and signals through the engine; return an exit status.

    ``after(database or None, cfg)`` runs once the summary is printed (``oms`` passes the
    report: replay sits below analytics) and its status is the command's."""
    ap = argparse.ArgumentParser(prog="oms replay", description=DESCRIPTION)
    ap.add_argument("--config", required=True, help="the TOML configuration (oms_core.config)")
    ap.add_argument("--bars", help="bars, Parquet or CSV (default: [replay].bars)")
    ap.add_argument("--signals", help="signals, Parquet or CSV (default: [replay].signals)")
    ap.add_argument("--out", help="DuckDB file to create with the results")
    ap.add_argument("--parquet", help="also export every table as Parquet under this directory")
    ap.add_argument("--mark-every", type=int, default=3600,
                    help="simulated seconds between mark-to-market inputs (default 3600)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    from rich.console import Console

    console = Console(stderr=True)
    try:
        cfg = load_config(args.config)
        bars_path = args.bars or cfg.replay.bars
        sig_path = args.signals if args.signals is not None else cfg.replay.signals
        if not bars_path:
            print("oms replay: no bars (--bars or [replay].bars)", file=sys.stderr)
            return 2
        precisions = {i.id: (i.price_precision, i.qty_precision)
                      for i in cfg.instruments.values()}
        bars = load_bars(bars_path, instruments=cfg.ids.instruments, precisions=precisions)
        signals = (load_signals(sig_path, cfg.ids.strategies, cfg.ids.instruments,
                                {i: q for i, (_, q) in precisions.items()})
                   if sig_path else None)
        res = run_replay(cfg, bars, signals, args.out, args.parquet,
                         progress=not args.quiet, mark_every_s=args.mark_every)
    except (OSError, ValueError) as e:
        print(f"oms replay: {e}", file=sys.stderr)
        return 2
    _print_summary(console, cfg, res, args.out)
    if after is None:
        return 0
    return after(args.out or (str(Path(args.parquet) / "replay.duckdb") if args.parquet
                              else None), cfg)


def _print_summary(console: Any, cfg: OmsConfig, res: ReplayResult, out: str | None) -> None:
    from decimal import Decimal

    from rich.table import Table

    console.print(f"replayed {res.bars:,} bars ({res.timestamps:,} bar times) and "
                  f"{res.signals:,} signals in {res.wall_s:.2f} s: "
                  f"{res.bars_per_s:,.0f} bars/s, {res.signals_per_s:,.0f} signals/s; "
                  f"{res.acks:,} acks, {res.rejects:,} rejects, {res.fills:,} fills, "
                  f"{res.events:,} events" + (f" -> {out}" if out else ""))
    console.print(f"digest {res.digest}")
    t = Table(title="positions at the end")
    for col in ("account", "instrument", "qty", "realized", "fees", "unrealized"):
        t.add_column(col, justify="right")
    names = {v: k for k, v in cfg.ids.accounts.items()}
    for p in res.positions:
        ic = cfg.instrument_by_id(p["instrument"])
        money = cfg.assets[ic.quote].precision
        t.add_row(names.get(p["account"], str(p["account"])), ic.symbol,
                  str(Decimal(p["qty"]).scaleb(-ic.qty_precision)),
                  str(Decimal(p["realized"]).scaleb(-money)),
                  str(Decimal(p["fees"]).scaleb(-money)),
                  str(Decimal(p["unrealized"]).scaleb(-money)))
    console.print(t)
