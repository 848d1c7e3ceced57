"""Synthetic market: a seeded random-walk (or CSV-replayed) mid and "other participants".

Each tick the participants re-quote ``levels`` limit orders per side around the mid,
cancel the quotes that drifted away, sometimes send a market order, and (with
``fill_probability``) hit resting user orders so they fill, fully or in part: any of them, or
with ``fill_at_touch`` only those at the best price of their side.
Everything draws from one ``random.Random(seed)``: a run is reproducible.
"""

from __future__ import annotations

import csv
import random

from gateways.sim import constants as c
from gateways.sim.config import MarketConfig
from gateways.sim.exchange import Exchange, Market


class MidPath:
    """The mid price of one symbol: random walk, or replay of ``timestamp_ms,price`` rows."""

    def __init__(self, start: int, tick: int, cfg: MarketConfig, rng: random.Random) -> None:
        self.mid = start
        self.tick = tick
        self.cfg = cfg
        self.rng = rng
        self.rows: list[int] = []
        self.pos = 0
        if cfg.mode == "csv":
            if not cfg.csv_path:
                raise ValueError("market.mode = 'csv' needs market.csv_path")
            with open(cfg.csv_path, newline="") as f:
                for row in csv.reader(f):
                    if row and not row[0].startswith("#") and row[-1].strip()[:1].isdigit():
                        self.rows.append(c.to_fixed(row[-1].strip()))
            if not self.rows:
                raise ValueError(f"no prices in {cfg.csv_path}")
            self.mid = self.rows[0]

    def step(self) -> int:
        if self.rows:
            self.mid = self.rows[self.pos % len(self.rows)]
            self.pos += 1
        else:
            # multiplicative step in bps, drawn from a seeded normal
            ticks = self.mid * self.cfg.volatility_bps / 10_000 / self.tick
            self.mid += int(round(self.rng.gauss(0.0, 1.0) * ticks)) * self.tick
            self.mid = max(self.mid, 10 * self.tick)
        self.mid -= self.mid % self.tick
        return self.mid


class SyntheticMarket:
    """Drive every symbol of ``exchange``; call ``step()`` once per tick."""

    def __init__(self, exchange: Exchange, seed: int) -> None:
        self.ex = exchange
        self.cfg = exchange.cfg.market
        self.rng = random.Random(seed)
        self.paths = {s: MidPath(m.cfg.initial_price, m.cfg.tick_size, self.cfg, self.rng)
                      for s, m in exchange.markets.items()}
        self.quotes: dict[str, dict[int, tuple[int, int]]] = {s: {} for s in exchange.markets}
        self.level_qty = c.to_fixed(self.cfg.level_qty)
        self.mkt_qty = c.to_fixed(self.cfg.market_order_qty)
        big = 10**17  # deep pockets, topped up when low
        self._topup = big
        for i in range(len(exchange.assets)):
            exchange.ledger.deposit(exchange.sim_account, i, big)

    def set_mid(self, symbol: str, price: int) -> None:
        """Move the random walk of ``symbol`` to ``price`` (fixed point, rounded down to the
        tick); the next step re-quotes around it. ValueError for an unknown symbol or a
        replayed (CSV) path."""
        path = self.paths.get(symbol)
        if path is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        if path.rows:
            raise ValueError("the mid of a replayed (csv) market cannot be moved")
        if price < 10 * path.tick:
            raise ValueError("price must be at least 10 ticks")
        path.mid = price - price % path.tick

    def _round_qty(self, m: Market, q: int) -> int:
        step = m.cfg.step_size
        return max(m.cfg.min_qty, q - q % step)

    def step(self) -> None:
        for i in range(len(self.ex.assets)):
            free = self.ex.ledger.free(self.ex.sim_account, i)
            if free < self._topup // 2:
                self.ex.ledger.deposit(self.ex.sim_account, i, self._topup - free)
        for sym, m in self.ex.markets.items():
            self._step_symbol(sym, m)

    def _step_symbol(self, sym: str, m: Market) -> None:
        cfg, rng, tick = self.cfg, self.rng, m.cfg.tick_size
        mid = self.paths[sym].step()
        half = max(1, (cfg.spread_ticks + 1) // 2) * tick
        spacing = max(1, cfg.level_spacing_ticks) * tick
        far = half + (cfg.levels + 2) * spacing
        quotes = self.quotes[sym]
        count = [0, 0]
        # drop quotes that were filled, sit on the wrong side of the new mid, or drifted away
        for oid, (side, px) in list(quotes.items()):
            if m.book.order(oid) is None:
                del quotes[oid]
                continue
            dist = mid - px if side == c.SIDE_BUY else px - mid
            if dist <= 0 or dist > far:
                self.ex.sim_cancel(sym, oid)
                del quotes[oid]
                continue
            count[side] += 1
        for side in (c.SIDE_BUY, c.SIDE_SELL):
            for _ in range(cfg.levels - count[side]):
                px = mid - half - rng.randrange(cfg.levels) * spacing if side == c.SIDE_BUY \
                    else mid + half + rng.randrange(cfg.levels) * spacing
                # a quote may cross a user order the mid moved through: it trades at the
                # user's price, as a market lifts a stale order (only the others' quotes
                # never cross each other)
                qty = self._round_qty(m, int(self.level_qty * (0.2 + rng.random())))
                oid = self.ex.sim_submit(sym, side, c.OT_LIMIT, c.TIF_GTC, px, qty)
                if oid > 0 and m.book.order(oid) is not None:
                    quotes[oid] = (side, px)
        if rng.random() < cfg.market_order_prob:
            qty = self._round_qty(m, int(self.mkt_qty * (0.2 + rng.random())))
            self.ex.sim_submit(sym, rng.randrange(2), c.OT_MARKET, c.TIF_GTC, 0, qty)
        if cfg.fill_probability > 0:
            self._hit_users(sym, m)

    def _hit_users(self, sym: str, m: Market) -> None:
        # send a crossing IOC at the price of resting user orders, so they trade
        rng = self.rng
        for acct in self.ex.accounts:
            for rec in list(acct.records.values()):
                if (rec.symbol != sym or rec.status in c.TERMINAL or not rec.working
                        or rec.otype not in (c.OT_LIMIT, c.OT_LIMIT_MAKER)):
                    continue
                if self.cfg.fill_at_touch:
                    best = m.book.best(rec.side)
                    if best is None or best[0] != rec.price:
                        continue
                if rng.random() >= self.cfg.fill_probability:
                    continue
                remaining = rec.qty - rec.filled
                if rng.random() < self.cfg.partial_fill_prob:
                    remaining = self._round_qty(m, int(remaining * rng.uniform(0.1, 0.9)))
                ahead = m.book.level_qty(rec.side, rec.price) - (rec.qty - rec.filled)
                qty = max(0, ahead) + remaining
                if qty > 0:
                    self.ex.sim_submit(sym, 1 - rec.side, c.OT_LIMIT, c.TIF_IOC, rec.price, qty)
