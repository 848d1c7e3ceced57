"""``oms demo``: the whole OMS on a synthetic market, with nothing to configure.

It writes a configuration into a fresh directory (free loopback ports, paper mode), then runs
what ``oms run`` runs -- the simulated exchange (a moving random-walk market), the engine,
the gateway and the DuckDB writer, as supervised child processes -- plus the example
publisher (``examples/publisher.py``: a moving-average crossover on the engine's market data)
for two strategies followed by three clients. While it trades, a live table shows orders,
fills, positions, P&L and the engine round-trip latency; after ``seconds`` everything stops
cleanly (SIGTERM: the engine drains, the writer flushes) and a summary is read back from the
DuckDB file.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from oms_core.latency import Latencies
from oms_core.security import operator_keys
from oms_core.supervisor import ROOT, ChildSpec, Supervisor, free_port, plan

if TYPE_CHECKING:
    from oms_core.config import OmsConfig

DEMO_TOML = """# written by `oms demo`
[oms]
mode = "paper"

[engine]
commands = "tcp://127.0.0.1:{commands}"
signals = "tcp://127.0.0.1:{signals}"
events = "tcp://127.0.0.1:{events}"
health = "tcp://127.0.0.1:{health}"
journal_dir = "journal"
mark_interval_ms = 250

[writer]
database = "oms.duckdb"
flush_interval_ms = 100

[assets]
USDT = {{ precision = 8 }}
BTC = {{ precision = 8 }}
ETH = {{ precision = 8 }}

[exchanges.sim]
kind = "sim"
rest_url = "http://127.0.0.1:{sim}/api/v3"
ws_url = "ws://127.0.0.1:{sim}"
orders = "tcp://127.0.0.1:{gw_orders}"
events = "tcp://127.0.0.1:{gw_events}"
market_data = "tcp://127.0.0.1:{gw_md}"
maker_fee_bps = 2
taker_fee_bps = 5

[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
max_qty = "100"
min_notional = "5"

[instruments.ETHUSDT]
base = "ETH"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
max_qty = "1000"
min_notional = "5"

[strategies.trend]
instruments = ["BTCUSDT", "ETHUSDT"]
bar_interval_s = 1

[strategies.swing]
instruments = ["ETHUSDT"]
single_entry = true
bar_interval_s = 1

[defaults.limits]
max_open_orders = 100
collar_bps = 500
max_reference_age_s = "30"
order_rate = 50
order_burst = 100

# each client has a simulated account of its own holding this cash; coins too, since a
# spot venue sells only what the account holds (bob's shorts; exits after fees in the coin)
[clients.alice]
strategies = ["trend"]
cash = {{ USDT = "100000", BTC = "1", ETH = "10" }}
[clients.alice.exchange_accounts.sim]
[clients.alice.orders]
direction = "long_only"
sizing = "fixed"
fixed_qty = {{ BTCUSDT = "0.05", ETHUSDT = "1" }}

[clients.bob]
strategies = ["trend", "swing"]
cash = {{ USDT = "250000", BTC = "2", ETH = "40" }}
[clients.bob.exchange_accounts.sim]
[clients.bob.orders]
direction = "long_short"
sizing = "fixed"
fixed_qty = {{ BTCUSDT = "0.1", ETHUSDT = "2" }}

[clients.carol]
strategies = ["swing"]
cash = {{ USDT = "50000", ETH = "5" }}
[clients.carol.exchange_accounts.sim]
[clients.carol.orders]
direction = "long_only"
sizing = "balance_share"
balance_share = "0.1"
"""


def write_demo_config(directory: Path) -> Path:
    """Write the demo configuration (fresh free ports) into ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    names = ("commands", "signals", "events", "health", "sim", "gw_orders", "gw_events",
             "gw_md")
    ports = {n: free_port() for n in names}
    path = directory / "oms.toml"
    path.write_text(DEMO_TOML.format(**ports))
    return path


def _dec(raw: int, precision: int, places: int = 4) -> str:
    return f"{Decimal(raw).scaleb(-precision):.{places}f}"


class _Monitor:
    """A viewer of every account: counts events, asks positions, times round trips."""

    def __init__(self, cfg: Any, endpoint: str) -> None:
        from bindings.client import OmsClient

        self.cfg = cfg
        self.client = OmsClient(endpoint, timeout=2.0, curve=operator_keys(cfg))
        self.client.hello([c.id for c in cfg.clients.values()], heartbeat_ms=0)
        self.counts = {"orders": 0, "fills": 0, "rejects": 0, "closed": 0}
        self.rtt = Latencies()
        self.seen: set[int] = set()

    def poll(self) -> None:
        from bindings.wire.spec import MsgType

        for ev in self.client.events(0.0):
            if ev.msg_type == MsgType.ORDER_UPDATE and ev.order_id not in self.seen:
                self.seen.add(ev.order_id)
                self.counts["orders"] += 1
            elif ev.msg_type == MsgType.FILL:
                self.counts["fills"] += 1
            elif ev.msg_type == MsgType.TRADE_CLOSED:
                self.counts["closed"] += 1
        t0 = time.perf_counter_ns()
        self.client.heartbeat()
        self.rtt.record_value(time.perf_counter_ns() - t0)

    def table(self, elapsed: float, seconds: float) -> Table:
        cfg = self.cfg
        t = Table(title=f"oms demo: paper trading on the simulated exchange "
                        f"({elapsed:.0f}/{seconds:.0f} s)")
        for col in ("client", "instrument", "position", "avg price", "realized P&L"):
            t.add_column(col, justify="right")
        by_id = {i.id: i for i in cfg.instruments.values()}
        for c in cfg.clients.values():
            res = self.client.positions(account=c.id)
            for p in getattr(res, "rows", []):
                inst = by_id.get(p.instrument)
                if inst is None or (p.quantity == 0 and p.realized_pnl == 0):
                    continue
                q = cfg.assets[inst.quote].precision
                t.add_row(c.name, inst.symbol, _dec(p.quantity, inst.qty_precision),
                          _dec(p.avg_price, inst.price_precision, 2),
                          _dec(p.realized_pnl, q, 2))
        n = self.counts
        p50, p99, _ = self.rtt.p50_p99_p999_us()
        t.caption = (f"orders {n['orders']}  fills {n['fills']}  closed trades {n['closed']}  "
                     f"engine round trip p50 {p50:.0f} us  p99 {p99:.0f} us")
        return t

    def close(self) -> None:
        self.client.close()


def latest_positions(con: Any) -> dict[tuple[int, int], tuple[int, int]]:
    """``(realized P&L, fees)`` (raw quote units) per (account, instrument) from the writer's
    ``positions`` table.

    A row is the account x instrument position after an update; its ``strategy`` is only the
    one whose fill caused it, so the newest row per pair is the answer (summing the newest row
    of each strategy would count the P&L once per strategy). Its ``fees`` already value a fee
    charged in another asset in the quote asset, so fees in several assets add up."""
    return {(a, i): (r, f) for a, i, r, f in con.execute("""
        select account, instrument, realized_pnl, fees from positions
        qualify row_number() over (partition by account, instrument order by seq desc) = 1
        """).fetchall()}


def realized_pnl(con: Any) -> dict[tuple[int, int], int]:
    """Realized P&L (raw) per (account, instrument): see :func:`latest_positions`."""
    return {k: r for k, (r, _f) in latest_positions(con).items()}


def summary(db_path: str, cfg: Any, console: Console) -> dict[str, int]:
    """Read the run back from DuckDB and print it; return the row counts."""
    import duckdb

    con = duckdb.connect(db_path, read_only=True)
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables")
                  .fetchall()}
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("orders", "executions", "positions", "acks", "risk_rejects",
                            "trades_closed") if t in tables}
        names = {c.id: c.name for c in cfg.clients.values()}
        insts = {i.id: i for i in cfg.instruments.values()}
        t = Table(title=f"summary from {db_path}")
        for col in ("client", "instrument", "fills", "bought", "sold", "net", "realized P&L",
                    "fees"):
            t.add_column(col, justify="right")
        if "executions" in tables and "orders" in tables:
            rows = con.execute("""
                with o as (select distinct order_id, account, instrument, side from orders)
                select o.account, o.instrument, count(*),
                       sum(case when o.side = 1 then e.quantity else 0 end),
                       sum(case when o.side = 2 then e.quantity else 0 end)
                from executions e join o using (order_id)
                group by 1, 2 order by 1, 2""").fetchall()
            latest = latest_positions(con) if "positions" in tables else {}
            for a, i, n, bought, sold in rows:
                inst = insts[i]
                qp = inst.qty_precision
                quote = cfg.assets[inst.quote].precision
                pnl, fees = latest.get((a, i), (0, 0))
                t.add_row(names.get(a, str(a)), inst.symbol, str(n), _dec(bought or 0, qp),
                          _dec(sold or 0, qp), _dec((bought or 0) - (sold or 0), qp),
                          _dec(pnl, quote, 2), f"{_dec(fees, quote, 4)} {inst.quote}")
        console.print(t)
        if "acks" in tables and "executions" in tables:
            # per-client answers of signals carry the signal's receive time and the order ids
            lat = con.execute("""
                with first_fill as (select order_id, min(event_ns) t from executions
                                    group by 1)
                select quantile_disc(f.t - a.recv_ns, 0.5), quantile_disc(f.t - a.recv_ns, 0.99),
                       count(*)
                from acks a join first_fill f on f.order_id = a.order_id
                where a.cmd_type = 9""").fetchone()
            if lat and lat[2]:
                console.print(f"signal received -> first fill booked (engine clock, through "
                              f"gateway and simulator): p50 {lat[0] / 1e6:.2f} ms, "
                              f"p99 {lat[1] / 1e6:.2f} ms over {lat[2]} orders")
        console.print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return counts
    finally:
        con.close()


def run_demo(directory: Path, seconds: float = 40.0, seed: int = 7,
             console: Console | None = None,
             after: Callable[[str, OmsConfig], int] | None = None) -> int:
    """Run the demo in ``directory`` for ``seconds`` of trading; return an exit status.

    ``after(database, cfg)`` runs once the writer has stopped and the summary is printed
    (``oms`` passes the report: the core does not import analytics); a failure of it fails
    the demo."""
    from oms_core.config import load_config

    console = console or Console()
    directory = directory.resolve()
    path = write_demo_config(directory)
    cfg = load_config(path)
    console.print(f"oms demo: configuration, logs, journal and database in {directory}")
    specs, info = plan(cfg, str(path), directory / "run", seed=seed)
    interval = 0.5
    specs.append(ChildSpec("publisher", [
        sys.executable, str(ROOT / "examples" / "publisher.py"), "--config", str(path),
        "--interval", str(interval), "--fast", "3", "--slow", "8",
        "--duration", str(seconds + 60)], stop_rank=-1, restart=False))
    sup = Supervisor(specs, directory / "run", status_endpoint=cfg.engine.health, info=info)
    with console.status("starting the simulated exchange, engine, writer, gateway, "
                        "publisher ..."):
        try:
            sup.start(timeout=40.0)
        except RuntimeError as e:
            console.print(f"[red]oms demo: {e}")
            return 1
    mon = _Monitor(cfg, info["shards"]["0"]["commands"])
    started = time.monotonic()
    try:
        with Live(mon.table(0, seconds), console=console, refresh_per_second=4,
                  transient=False) as live:
            while (elapsed := time.monotonic() - started) < seconds:
                sup.step()
                mon.poll()
                live.update(mon.table(elapsed, seconds))
                time.sleep(0.25)
            # stop the signals first and let the orders in flight settle, so the last live
            # table and the DuckDB summary below describe (nearly) the same end state
            pub = sup.child("publisher").proc
            if pub is not None and pub.poll() is None:
                pub.send_signal(signal.SIGTERM)
                pub.wait(10)
            settle_end = time.monotonic() + 1.5
            while time.monotonic() < settle_end:
                sup.step()
                mon.poll()
                time.sleep(0.25)
            live.update(mon.table(seconds, seconds))
    except KeyboardInterrupt:
        console.print("interrupted: stopping")
    finally:
        mon.close()
        with console.status("stopping: the engine drains, the writer flushes ..."):
            codes = sup.shutdown()
    bad = {k: v for k, v in codes.items() if v not in (0, None)}
    if bad:
        console.print(f"[yellow]exit statuses: {codes} (logs in {directory / 'run' / 'logs'})")
    counts = summary(info["shards"]["0"]["database"], cfg, console)
    console.print(f"processes restarted: {sum(max(0, c.starts - 1) for c in sup.children)}; "
                  f"logs in {directory / 'run' / 'logs'}")
    rc = 0 if counts.get("orders", 0) > 0 and not bad else 1
    if after is not None:
        rc = after(info["shards"]["0"]["database"], cfg) or rc
    return rc


__all__ = ["run_demo", "summary", "write_demo_config"]
