"""Replay throughput (bars/s, signals/s) and parity with paper.

Ours: ``replay.run_replay`` (the engine's code path, the compiled matching engine as
the venue, results into DuckDB through the writer) over seeded minute bars for 10 instruments
(full: one year, ~5.3M bars; smoke: one week) and moving-average crossover signals for two
strategies followed by three clients (one enters with limit orders that rest at the venue).

Baseline, same data, same run: :func:`baseline`, a pure-Python loop that does the arithmetic a
bar-by-bar backtest of this strategy has to do and nothing more. It DOES: read every bar (one
Python iteration per bar), keep each instrument's last price, sample every instrument's last
close once per bar time into a 1024-deep deque (what the engine keeps for volatility sizing),
size every signal for every follower with the engine's own sizing function
(``oms_core.signals.plan_signal``: direction, fixed size, single entry, flatten) and fill the
result at once at the bar's open plus / minus the venue's half spread (1 bp, rounded up to the
tick) with the taker fee, into a position and cash per client. It does NOT: check risk limits,
keep orders (state machine, ids, client order ids), rest limit orders or fill them along the
bar's path (the limit client is filled like a market order), walk price levels, produce
execution reports or event records, hash them, write DuckDB, run timers, marks or the start of
day. So it is a lower bound on the cost of the same backtest in plain Python, not the same
work; the ratio says what the engine's full path costs on top of it.

Parity: a slice through the engine PROCESS in real time (``run_paper``) against
``run_replay`` on the same slice: fills and final positions must be identical. The full run
returns False when the parity check fails (no throughput target: the issue asks for "as fast
as the machine allows").

    python -m benchmarks.bench_replay [--smoke]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyarrow as pa

from bindings.wire.spec import SignalMode
from oms_core.config import load_config
from oms_core.signals import InstrumentSpec, MarketState, Signal, plan_signal
from replay import run_paper, run_replay
from replay.data import SIGNAL_SCHEMA, generate_minute_bars

N_INST = 10


def config_text(d: Path) -> str:
    """10 instruments (I0USDT .. I9USDT), two strategies of five, three clients."""
    out = [f'[engine]\ncommands = "ipc://{d}/commands"\nevents = "ipc://{d}/events"\n'
           f'journal_dir = "{d}/journal"\n\n[assets]\nUSDT = {{ precision = 8 }}']
    out += [f"A{i} = {{ precision = 8 }}" for i in range(N_INST)]
    out.append(f'\n[exchanges.sim]\nkind = "sim"\nmaker_fee_bps = 2\ntaker_fee_bps = 5\n'
               f'slippage_bps = 1\norders = "ipc://{d}/gw-orders"\n'
               f'events = "ipc://{d}/gw-events"\nmarket_data = "ipc://{d}/gw-md"\n')
    for i in range(N_INST):
        out.append(f'[instruments.I{i}USDT]\nexchange = "sim"\nbase = "A{i}"\nquote = "USDT"\n'
                   f'tick = "0.01"\nlot = "0.001"\nmin_qty = "0.001"\nmax_qty = "100000"\n'
                   f'min_notional = "1"\n')
    a = ", ".join(f'"I{i}USDT"' for i in range(5))
    b = ", ".join(f'"I{i}USDT"' for i in range(5, N_INST))
    out.append(f"[strategies.trend]\ninstruments = [{a}]\n\n[strategies.revert]\n"
               f"instruments = [{b}]\n")
    qty = ", ".join(f'I{i}USDT = "0.5"' for i in range(N_INST))
    for name, strats, cash, extra in (
            ("alice", '"trend", "revert"', "1000000", ""),
            ("bob", '"trend"', "500000", 'entry = "limit"\nlimit_offset_ticks = 2\n'),
            ("carol", '"revert"', "500000", "")):
        out.append(f'[clients.{name}]\nstrategies = [{strats}]\ncash = {{ USDT = "{cash}" }}\n'
                   f'[clients.{name}.exchange_accounts.sim]\napi_key_env = "UNUSED_K"\n'
                   f'api_secret_env = "UNUSED_S"\n[clients.{name}.orders]\n'
                   f'direction = "long_short"\nsizing = "fixed"\nfixed_qty = {{ {qty} }}\n'
                   f'{extra}')
    return "\n".join(out)


def crossover_signals(bars: pa.Table, fast: int = 30, slow: int = 240) -> pa.Table:
    """Direction signals when a fast moving average of closes crosses a slow one (numpy)."""
    ts = bars.column("ts").to_numpy()
    inst = bars.column("instrument").to_numpy()
    close = bars.column("close").to_numpy().astype(np.float64)
    rows = []
    for i in range(N_INST):
        sel = inst == i
        c, t = close[sel], ts[sel]
        cs = np.cumsum(np.r_[0.0, c])
        f = (cs[fast:] - cs[:-fast]) / fast
        s = (cs[slow:] - cs[:-slow]) / slow
        d = np.sign(f[slow - fast:] - s)  # aligned at bar index slow-1 ..
        change = np.flatnonzero(d[1:] != d[:-1]) + 1
        idx = change + slow  # signal at the open of the next bar
        idx = idx[idx < len(t)]
        strat = 1 if i < 5 else 2
        for j in idx.tolist():
            rows.append((int(t[j]), strat, i, 1, int(d[j - slow])))
    rows.sort(key=lambda r: (r[0], r[2]))
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in
                                 zip(cols, SIGNAL_SCHEMA, strict=True)], schema=SIGNAL_SCHEMA)


def baseline(cfg, bars: pa.Table, sigs: pa.Table) -> tuple[float, int]:
    """Pure Python: every bar, the same per-client sizing, fills at the touch with the fee
    (what it does and does not do: the module docstring)."""
    t0 = time.perf_counter()
    specs = {}
    ticks = {}
    for ic in cfg.instruments.values():
        specs[ic.id] = InstrumentSpec(ic.id, ic.tick, ic.lot, ic.min_qty, ic.max_qty, 1000)
        ticks[ic.id] = ic.tick
    closes = {i: deque(maxlen=1024) for i in specs}
    n_inst = len(specs)
    followers = {s.id: [(c.id, c.orders) for c in cfg.followers(name)]
                 for name, s in cfg.strategies.items()}
    pos: dict[tuple[int, int, int], int] = {}
    cash: dict[int, int] = {c.id: c.cash["USDT"] for c in cfg.clients.values()}
    last: dict[int, int] = {}
    prev: dict[int, int] = {}
    s_rows = list(zip(*[sigs.column(k).to_numpy().tolist() for k in
                        ("ts", "strategy", "instrument", "kind", "value")], strict=True))
    si, n_sig, fills = 0, len(s_rows), 0
    cols = [bars.column(k).to_numpy().tolist() for k in ("ts", "instrument", "open", "close")]
    t_prev = cols[0][0] if cols[0] else 0
    for ts, i, o, c in zip(*cols, strict=True):
        if ts != t_prev:  # a new bar time: sample every instrument's last close
            t_prev = ts
            for j in range(n_inst):
                if j in prev:
                    closes[j].append(prev[j])
        last[i] = o
        while si < n_sig and s_rows[si][0] <= ts and s_rows[si][2] == i:
            _t, strat, inst, kind, value = s_rows[si]
            si += 1
            for acct, params in followers[strat]:
                key = (acct, strat, inst)
                p = pos.get(key, 0)
                plan = plan_signal(Signal(strat, inst, SignalMode(kind), value, ts), params,
                                   specs[inst], MarketState(o, prev.get(inst, o)), p,
                                   cash[acct])
                for it in plan.intents:
                    tick = ticks[inst]
                    bp = -(-o // 10_000)  # 1 bp of the price, rounded up
                    half = max(tick, -(-bp // tick) * tick)
                    px = o + half if it.side == 1 else o - half
                    q = it.qty if it.side == 1 else -it.qty
                    notional = px * it.qty * 1000
                    cash[acct] -= notional * 5 // 10_000 + (notional if q > 0 else -notional)
                    pos[key] = pos.get(key, 0) + q
                    fills += 1
        while si < n_sig and s_rows[si][0] <= ts and s_rows[si][2] < i:
            si += 1  # (rows are sorted by time then instrument; never taken here)
        prev[i] = c
    return time.perf_counter() - t0, fills


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(smoke: bool = False) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        d = Path(tmp)
        (d / "oms.toml").write_text(config_text(d))
        cfg = load_config(d / "oms.toml")
        end = "2023-01-08" if smoke else "2024-01-01"
        t0 = time.perf_counter()
        bars = generate_minute_bars(N_INST, "2023-01-01", end, seed=11,
                                    start_prices=[10_000 * (i + 1) for i in range(N_INST)],
                                    vol_bps=5.0, lot_volume=5_000)
        sigs = crossover_signals(bars)
        gen_s = time.perf_counter() - t0
        print(f"bench_replay ({'smoke' if smoke else 'full'}): {bars.num_rows:,} minute bars "
              f"for {N_INST} instruments (2023-01-01 .. {end}), {sigs.num_rows:,} crossover "
              f"signals, 3 clients, 2 strategies; data made in {gen_s:.1f} s")
        rss0 = _peak_rss_mb()
        t1 = time.perf_counter()
        res = run_replay(cfg, bars, sigs, out=str(d / "replay.duckdb"))
        total = time.perf_counter() - t1
        db_mb = (d / "replay.duckdb").stat().st_size / 1e6
        print(f"  ours (engine + compiled venue + DuckDB): {res.wall_s:.2f} s replaying "
              f"({total:.2f} s with the summary tables and the checkpoint), "
              f"{res.bars_per_s:,.0f} bars/s, {res.signals_per_s:,.0f} signals/s; "
              f"{res.fills:,} fills, {res.acks:,} acks, {res.rejects:,} rejects, "
              f"{res.events:,} events; venue quotes placed {res.quotes_placed:,} of "
              f"{res.quotes:,}; {res.quiet_bar_times:,} of {res.timestamps:,} bar times "
              f"played in {res.spans:,} quiet spans; DuckDB {db_mb:.0f} MB")
        print(f"  peak RSS of this process: {_peak_rss_mb():,.0f} MB (before the replay, "
              f"with the bars and signals in memory: {rss0:,.0f} MB); digest "
              f"{res.digest[:16]}")
        base_s, base_fills = baseline(cfg, bars, sigs)
        bbps = bars.num_rows / base_s
        print(f"  baseline (pure-Python loop, same sizing, fills at the touch): {base_s:.2f} s, "
              f"{bbps:,.0f} bars/s, {sigs.num_rows / base_s:,.0f} signals/s; "
              f"{base_fills:,} fills")
        print(f"  ratio ours / baseline (bars/s): {res.bars_per_s / bbps:.2f}x")
        # parity with paper on a slice of the same data
        minutes = 5 if smoke else 30
        uts = np.unique(bars.column("ts").to_numpy()[: (minutes + 300) * N_INST])
        lo, hi = int(uts[240]), int(uts[240 + minutes])  # after the slow average warms up
        sl = bars.filter(pa.compute.and_(pa.compute.greater_equal(bars.column("ts"), lo),
                                         pa.compute.less(bars.column("ts"), hi)))
        ss = sigs.filter(pa.compute.and_(pa.compute.greater_equal(sigs.column("ts"), lo),
                                         pa.compute.less(sigs.column("ts"), hi)))
        if ss.num_rows == 0:  # make sure the slice trades
            ss = pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(
                    ([lo, lo, lo + 120_000_000_000], [1, 2, 1], [0, 5, 0], [1, 1, 1],
                     [1, -1, 0]), SIGNAL_SCHEMA, strict=True)], schema=SIGNAL_SCHEMA)
        paper = run_paper(str(d / "oms.toml"), sl, ss, tmp, timeout_s=120)
        rp = run_replay(cfg, sl, ss, record_fills=True)
        same_fills = paper.fills_list == rp.fills_list
        want = {(p["account"], p["instrument"]): (p["qty"], p["realized"])
                for p in rp.positions}
        same_pos = ({k: v for k, v in paper.positions.items() if v != (0, 0)}
                    == {k: v for k, v in want.items() if v != (0, 0)})
        print(f"  parity on a {minutes}-minute slice ({sl.num_rows} bars, {ss.num_rows} "
              f"signals): paper (engine process, real time, {paper.wall_s:.1f} s) "
              f"{len(paper.fills_list)} fills vs replay {len(rp.fills_list)} fills: "
              f"fills {'identical' if same_fills else 'DIFFERENT'}, final positions "
              f"{'identical' if same_pos else 'DIFFERENT'}")
        return smoke or (same_fills and same_pos)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    raise SystemExit(0 if main(ap.parse_args().smoke) else 1)
