"""``oms report``: the analytics of one database as terminal tables, one offline HTML file
and CSV / Parquet / JSON of every table (docs/analytics.md).

Cold code: the numbers come from :mod:`analytics.store` (SQL) and :mod:`analytics.metrics`
(numpy); this module only arranges, prints and writes them.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analytics.metrics import (
    CONFIDENCES,
    PERIODS_PER_YEAR,
    RISK_FREE_RATE,
    equity_metrics,
    risk_metrics,
    trade_metrics,
)
from analytics.store import (
    Filters,
    Reference,
    equity_curves,
    exchange_quality,
    execution_quality,
    open_db,
    reject_counts,
    round_trips,
)
from oms_core.config import OmsConfig
from writer.store import StoreError

NS_PER_DAY = 86_400 * 1_000_000_000
EXPORT_FORMATS = ("csv", "parquet", "json")
WIDE_COLUMNS = 8  # a terminal table with more columns than this is printed transposed
# hops and arrival prices are added by another item of issue 13; until the writer stores them
# the report says so instead of drawing something else
NOT_RECORDED = {
    "latency per hop": "latency histograms per hop: not recorded yet (the orders carry no "
                       "per-hop timestamps yet)",
    "slippage by exchange": "slippage by exchange: not recorded yet (the orders carry no "
                            "arrival price yet)",
}


class ReportError(Exception):
    """A report that cannot be made: a one-line reason for the user."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What to report on, by name (resolved against the configuration)."""

    client: str | None = None
    strategy: str | None = None
    exchange: str | None = None
    instrument: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(slots=True)
class Report:
    """Every table of the report (name -> rows of plain values) and the series the charts
    draw."""

    db: str
    selection: Selection
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    charts: dict[str, Any] = field(default_factory=dict)
    trades: int = 0


# ------------------------------------------------------------------------------- the database
def open_report_db(path: str) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only, or raise :class:`ReportError` saying why not.

    A running writer holds the file: DuckDB (checked with 2.0) refuses every other process,
    even read-only, so the report refuses too and says how to get one (docs/analytics.md).
    """
    if not os.path.exists(path):
        raise ReportError(f"no database file {path}")
    if not os.path.isfile(path):
        raise ReportError(f"{path} is not a file")
    try:
        con = open_db(path)
    except StoreError as e:
        text = str(e)
        if "locked" in text:
            raise ReportError(
                f"{path} is held by a running writer (DuckDB lets no other process open it, "
                "not even read-only); stop the OMS (the writer flushes on SIGTERM) and run "
                "the report again, or report on the writer's Parquet export "
                "(writer --parquet DIR --export-every SEC)") from None
        raise ReportError(f"{path} is not a DuckDB database ({text.split(': ', 1)[-1]})"
                          ) from None
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    missing = {"orders", "executions", "trades_closed", "risk_rejects"} - have
    if missing:
        con.close()
        raise ReportError(f"{path} is not an OMS database (no table {', '.join(sorted(missing))})")
    return con


def _resolve(name: str | None, ids: dict[str, int], what: str) -> int | None:
    """A name or a numeric id of the configuration, or ReportError listing the known ones."""
    if name is None:
        return None
    if name in ids:
        return ids[name]
    if name.isdigit() and int(name) in ids.values():
        return int(name)
    raise ReportError(f"unknown {what} {name!r}; known: {', '.join(sorted(ids)) or 'none'}")


def _instruments_of(cfg: OmsConfig, exchange: str) -> tuple[int, ...]:
    """The ids of the instruments listed on exchange ``exchange`` (its name), ascending."""
    return tuple(sorted(i.id for i in cfg.instruments.values() if i.exchange == exchange))


def filters_of(cfg: OmsConfig, sel: Selection) -> Filters:
    """The id filters of a selection by names (ReportError for an unknown name)."""
    instruments = None
    exch = _resolve(sel.exchange, cfg.ids.exchanges, "exchange")
    if exch is not None:
        name = next(k for k, v in cfg.ids.exchanges.items() if v == exch)
        instruments = _instruments_of(cfg, name)
    if sel.start_ns is not None and sel.end_ns is not None and sel.start_ns >= sel.end_ns:
        raise ReportError("--from must be before --to")
    return Filters(account=_resolve(sel.client, cfg.ids.accounts, "client"),
                   strategy=_resolve(sel.strategy, cfg.ids.strategies, "strategy"),
                   instrument=_resolve(sel.instrument, cfg.ids.instruments, "instrument"),
                   start_ns=sel.start_ns, end_ns=sel.end_ns, instruments=instruments)


def starting_equity(cfg: OmsConfig, account: int) -> float:
    """The client's deposited cash in its own currency: returns, Sharpe and drawdown % are
    relative to it (0 when it deposited none: then they are undefined)."""
    for c in cfg.clients.values():
        if c.id == account:
            raw = c.cash.get(c.currency, 0)
            return float(Decimal(raw).scaleb(-cfg.assets[c.currency].precision))
    return 0.0


# ------------------------------------------------------------------------------ building it
def _ns_text(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def build_report(con: duckdb.DuckDBPyConnection, cfg: OmsConfig, sel: Selection = Selection(),
                 db: str = "", periods_per_year: float = PERIODS_PER_YEAR,
                 risk_free_rate: float = RISK_FREE_RATE) -> Report:
    """Every table and chart series of the report over ``con`` (the database of ``cfg``)."""
    ref = Reference.from_config(cfg)
    flt = filters_of(cfg, sel)
    rep = Report(db=db, selection=sel)
    try:
        trips = round_trips(con, ref, flt)
        curves = equity_curves(con, ref, flt)
        monthly = equity_curves(con, ref, flt, period="month")
    except ValueError as e:  # an instrument the configuration does not know
        raise ReportError(str(e)) from None
    rep.trades = len(trips)

    trades_rows, equity_rows, risk_rows = [], [], []
    keys = sorted({(int(a), int(s)) for a, s in zip(trips.account, trips.strategy, strict=True)})
    names = {(int(a), int(s)): (c, n) for a, s, c, n in zip(
        trips.account, trips.strategy, trips.client, trips.strategy_name, strict=True)}
    for a, s in keys:
        m = (trips.account == a) & (trips.strategy == s)
        client, strat = names[(a, s)]
        tm = trade_metrics(trips.pnl[m], trips.side[m])
        total = round_trips(con, ref, replace(flt, account=a, strategy=s)).total_pnl  # exact
        trades_rows.append({
            "client": client, "strategy": strat, "trades": tm.count, "wins": tm.wins,
            "losses": tm.losses, "win_rate": tm.win_rate, "long": tm.long_count,
            "long_win_rate": tm.long_win_rate, "short": tm.short_count,
            "short_win_rate": tm.short_win_rate, "average_win": tm.average_win,
            "average_loss": tm.average_loss, "profit_factor": tm.profit_factor,
            "expectancy": tm.expectancy, "total_pnl": total})
        rm = risk_metrics(trips.pnl[m], CONFIDENCES)
        row: dict[str, Any] = {"client": client, "strategy": strat, "observations":
                               rm.observations}
        for t in rm.tails:
            pct = int(round(t.confidence * 100))
            row |= {f"hist_var_{pct}": t.historical_var, f"hist_es_{pct}": t.historical_es,
                    f"normal_var_{pct}": t.normal_var, f"normal_es_{pct}": t.normal_es}
        risk_rows.append(row)

    equity_series, drawdown_series = [], []
    for c in curves:
        base = starting_equity(cfg, c.account)
        ts, eq = c.points()
        eq = eq + base
        em = equity_metrics(ts, eq, periods_per_year, risk_free_rate)
        dd = em.drawdown
        equity_rows.append({
            "client": c.client, "strategy": c.strategy_name, "periods": em.periods,
            "start_equity": em.start_equity, "end_equity": em.end_equity,
            "total_return": em.total_return, "sharpe": em.sharpe, "sortino": em.sortino,
            "max_drawdown": dd.fraction if dd else None,
            "max_drawdown_abs": dd.absolute if dd else None,
            "drawdown_days": dd.duration_ns / NS_PER_DAY if dd else None,
            "recovered": (dd.recovery_ns is not None) if dd else None})
        label = f"{c.client} / {c.strategy_name}"
        x = [_ns_text(int(t)) for t in ts]
        equity_series.append({"name": label, "x": x, "y": eq.tolist()})
        drawdown_series.append({"name": label, "x": x,
                                "y": (eq - np.maximum.accumulate(eq)).tolist()})

    heat_rows, heat_months = [], sorted({_ns_text(int(p))[:7] for c in monthly
                                         for p in c.period_ns})
    heat_z, heat_kind = [], "return"
    bases = {c.account: starting_equity(cfg, c.account) for c in monthly}
    if any(v <= 0 for v in bases.values()):
        heat_kind = "P&L"
    for c in monthly:
        by_month = {}
        start = bases[c.account]
        prev = start
        for p, pnl, e in zip(c.period_ns, c.pnl, c.equity, strict=True):
            end = start + e
            by_month[_ns_text(int(p))[:7]] = pnl / prev if heat_kind == "return" else pnl
            prev = end
        heat_rows.append(f"{c.client} / {c.strategy_name}")
        heat_z.append([by_month.get(m) for m in heat_months])
    month_rows = [{"portfolio": r, "month": m, heat_kind.replace("&", "n").lower(): z}
                  for r, zs in zip(heat_rows, heat_z, strict=True)
                  for m, z in zip(heat_months, zs, strict=True) if z is not None]

    quality = execution_quality(con, ref, flt)
    instrument_rows = [{
        "exchange": q.exchange, "instrument": q.symbol, "orders": q.orders,
        "filled_orders": q.filled_orders, "fully_filled": q.fully_filled_orders,
        "canceled": q.canceled_orders, "rejected": q.rejected_orders, "expired": q.expired_orders,
        "fill_rate": q.fill_rate, "orders_filled_rate": q.orders_filled_rate,
        "success_rate": q.success_rate, "cancel_ratio": q.cancel_ratio} for q in quality]
    exchange_rows = [{
        "exchange": q.exchange, "orders": q.orders, "filled_orders": q.filled_orders,
        "canceled": q.canceled_orders, "rejected": q.rejected_orders,
        "orders_filled_rate": q.orders_filled_rate, "success_rate": q.success_rate,
        "cancel_ratio": q.cancel_ratio} for q in exchange_quality(quality)]

    reject_rows = []
    for r in reject_counts(con, flt):
        if r.source == "risk":
            reject_rows.append({"source": "engine", "exchange": "", "code": r.code,
                                "reason": r.reason, "venue_code": r.venue_code,
                                "count": r.count})
    for exch in sorted({i.exchange for i in cfg.instruments.values()}):
        insts = _instruments_of(cfg, exch)
        if flt.instruments is not None:
            insts = tuple(i for i in insts if i in flt.instruments)
        for r in reject_counts(con, replace(flt, instruments=insts)):
            if r.source == "venue":
                reject_rows.append({"source": "venue", "exchange": exch, "code": r.code,
                                    "reason": r.reason, "venue_code": r.venue_code,
                                    "count": r.count})

    rep.tables = {"trades": trades_rows, "equity": equity_rows, "risk": risk_rows,
                  "monthly": month_rows, "execution_by_exchange": exchange_rows,
                  "execution_by_instrument": instrument_rows, "rejects": reject_rows}
    rep.titles = {
        "trades": "round trips per client and strategy",
        "equity": "equity per client and strategy (daily, realized, from the deposited cash)",
        "risk": "value at risk and expected shortfall over round-trip P&L (positive = loss)",
        "monthly": f"{heat_kind} by month",
        "execution_by_exchange": "execution quality per exchange",
        "execution_by_instrument": "execution quality per instrument",
        "rejects": "rejects by reason"}
    rep.charts = {
        "equity": equity_series, "drawdown": drawdown_series,
        "pnl": trips.pnl.tolist(),
        "heatmap": {"x": heat_months, "y": heat_rows, "z": heat_z, "kind": heat_kind},
        "fill": exchange_rows, "rejects": reject_rows}
    return rep


# ------------------------------------------------------------------------------- the terminal
def _exact(v: Any) -> Any:
    """A Decimal as its exact text for the files (no float on the way)."""
    return format(v.normalize(), "f") if isinstance(v, Decimal) else v


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.2f}"
    return str(v)


def print_report(rep: Report, console: Any) -> None:
    """The report's tables as rich tables."""
    from rich.table import Table

    if not rep.trades:
        console.print("no closed round trips in this selection: trade, equity and risk tables "
                      "are empty")
    for name, rows in rep.tables.items():
        if not rows:
            console.print(f"{rep.titles[name]}: none")
            continue
        cols = list(rows[0])
        t = Table(title=rep.titles[name])
        if len(cols) > WIDE_COLUMNS and len(rows) <= WIDE_COLUMNS:
            # many metrics of a few portfolios: one column per portfolio, so it fits a terminal
            keys = [c for c in cols if isinstance(rows[0][c], str)][:2]
            t.add_column("")
            for r in rows:
                t.add_column(" / ".join(str(r[k]) for k in keys), justify="right")
            for c in cols:
                if c not in keys:
                    t.add_row(c, *(_cell(r[c]) for r in rows))
        else:
            for c in cols:
                t.add_column(c, justify="left" if isinstance(rows[0][c], str) else "right")
            for r in rows:
                t.add_row(*(_cell(r[c]) for c in cols))
        console.print(t)
    for line in NOT_RECORDED.values():
        console.print(line)


# -------------------------------------------------------------------------------- the files
def default_out_dir(db: str) -> Path:
    """``report-<stem>/`` beside the database."""
    p = Path(db).resolve()
    return p.parent / f"report-{p.stem}"


def write_tables(rep: Report, out: Path) -> list[Path]:
    """Every table as CSV, Parquet and JSON in ``out``; the paths written."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table_rows in rep.tables.items():
        rows = [{k: _exact(v) for k, v in r.items()} for r in table_rows]
        cols = list(rows[0]) if rows else ["empty"]
        table = pa.Table.from_pylist(rows) if rows else pa.table({"empty": pa.array([], pa.null())})
        for fmt in EXPORT_FORMATS:
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                pacsv.write_csv(table, path)
            elif fmt == "parquet":
                pq.write_table(table, path)
            else:
                path.write_text(json.dumps({"columns": cols, "rows": rows}, indent=1))
            written.append(path)
    return written


def _figure_html(fig: Any, first: bool) -> str:
    # plotly.js once, embedded (no CDN: the file opens offline)
    return fig.to_html(full_html=False, include_plotlyjs=True if first else False,
                       config={"displaylogo": False})


def write_html(rep: Report, path: Path) -> Path:
    """One self-contained HTML file with the charts and tables."""
    import plotly.graph_objects as go

    parts: list[str] = []
    figures: list[tuple[str, Any | None, str]] = []  # (title, figure or None, why none)
    ch = rep.charts
    none = "no closed round trips in this selection"
    fig = go.Figure([go.Scatter(x=s["x"], y=s["y"], mode="lines+markers", name=s["name"])
                     for s in ch["equity"]])
    figures.append(("equity curve", fig if ch["equity"] else None, none))
    fig = go.Figure([go.Scatter(x=s["x"], y=s["y"], mode="lines", fill="tozeroy",
                                name=s["name"]) for s in ch["drawdown"]])
    figures.append(("drawdown (equity below its running peak)", fig if ch["drawdown"] else None,
                    none))
    figures.append(("P&L per round trip", go.Figure([go.Histogram(x=ch["pnl"], nbinsx=40)])
                    if ch["pnl"] else None, none))
    hm = ch["heatmap"]
    figures.append((f"{hm['kind']} by month", go.Figure([go.Heatmap(
        x=hm["x"], y=hm["y"], z=hm["z"], colorscale="RdYlGn", zmid=0)]) if hm["y"] else None,
        none))
    fill = ch["fill"]
    figures.append(("orders filled and success rate per exchange", go.Figure([
        go.Bar(x=[r["exchange"] for r in fill], y=[r["orders_filled_rate"] or 0 for r in fill],
               name="orders filled"),
        go.Bar(x=[r["exchange"] for r in fill], y=[r["success_rate"] or 0 for r in fill],
               name="not rejected")]) if fill else None, "no orders in this selection"))
    rej = ch["rejects"]
    by_reason: dict[str, dict[str, int]] = {}
    for r in rej:
        by_reason.setdefault(r["reason"], {})
        where = r["exchange"] or "engine (risk)"
        by_reason[r["reason"]][where] = by_reason[r["reason"]].get(where, 0) + r["count"]
    places = sorted({r["exchange"] or "engine (risk)" for r in rej})
    figures.append(("rejects by reason and exchange", go.Figure(
        [go.Bar(x=places, y=[counts.get(p, 0) for p in places], name=reason)
         for reason, counts in by_reason.items()], layout={"barmode": "stack"})
        if rej else None, "no rejects in this selection"))
    first = True
    for title, fig, why in figures:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if fig is None:
            parts.append(f'<p class="none">{html.escape(why)}</p>')
            continue
        fig.update_layout(height=380, margin={"t": 20, "b": 40})
        parts.append(_figure_html(fig, first))
        first = False
    for line in NOT_RECORDED.values():
        parts.append(f'<p class="none">{html.escape(line)}</p>')
    for name, rows in rep.tables.items():
        parts.append(f"<h2>{html.escape(rep.titles[name])}</h2>")
        if not rows:
            parts.append('<p class="none">none</p>')
            continue
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in rows[0])
                       + "</tr>" for r in rows)
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    sel = ", ".join(f"{k} {v}" for k, v in (
        ("client", rep.selection.client), ("strategy", rep.selection.strategy),
        ("exchange", rep.selection.exchange), ("instrument", rep.selection.instrument),
        ("from", _ns_text(rep.selection.start_ns)), ("to", _ns_text(rep.selection.end_ns)))
        if v is not None) or "everything"
    doc = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>OMS report: {html.escape(rep.db)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} .none{{color:#777}}</style>
</head><body><h1>OMS report</h1><p>{html.escape(rep.db)}: {html.escape(sel)};
{rep.trades} closed round trips</p>
{''.join(parts)}
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc)
    return path


# ----------------------------------------------------------------------------- one call
def run_report(db: str, cfg: OmsConfig, sel: Selection = Selection(),
               out: str | Path | None = None, console: Any = None,
               periods_per_year: float = PERIODS_PER_YEAR,
               risk_free_rate: float = RISK_FREE_RATE) -> list[Path]:
    """Print the report of ``db`` and write its files (ReportError when it cannot)."""
    from rich.console import Console

    console = console or Console()
    con = open_report_db(db)
    try:
        rep = build_report(con, cfg, sel, db, periods_per_year, risk_free_rate)
    finally:
        con.close()
    print_report(rep, console)
    out_dir = Path(out) if out else default_out_dir(db)
    files = [write_html(rep, out_dir / "report.html"), *write_tables(rep, out_dir)]
    console.print(f"report: {files[0]}", soft_wrap=True)
    console.print(f"tables of the report in {out_dir}:", soft_wrap=True)
    for name in rep.tables:
        console.print(f"  {out_dir / name}.{{{','.join(EXPORT_FORMATS)}}}", soft_wrap=True)
    return files


def parse_time(text: str, what: str) -> int:
    """An ISO date or time (UTC unless it says otherwise) in ns, or ReportError."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{what} {text!r} is not an ISO date or time (2026-12-01 or "
                          "2026-12-01T15:00:00)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


__all__ = ["Report", "ReportError", "Selection", "build_report", "default_out_dir",
           "filters_of", "open_report_db", "parse_time", "print_report", "run_report",
           "write_html", "write_tables"]
