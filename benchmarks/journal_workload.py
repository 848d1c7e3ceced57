"""A deterministic trading workload for the journal / recovery / writer benchmarks and tests.

Every input is a pure function of ``(seed, step)`` and of the core's state, so a process that
recovers a core from the journal and continues at step N produces exactly the inputs a process
that never crashed would have produced. Inputs are applied by the real engine loop, without
sockets (``oms_core.engine.offline``): the loop journals each input and its events (with the
engine's gap-free event sequence) and commits, as the engine process does.
"""

from __future__ import annotations

import random
from typing import Any

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core.core import OmsCore
from oms_core.engine.offline import apply_live, offline_engine
from oms_core.enums import Limit, OrderStatus

BASE_TS = 1_700_000_000_000_000_000
TERMINAL = {int(s) for s in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                             OrderStatus.EXPIRED)}
_NEW = wire.CODECS["NEW_ORDER"]
_CANCEL = wire.CODECS["CANCEL"]
_EXEC = wire.CODECS["GW_EXEC_REPORT"]
_MD = wire.CODECS["GW_MARKET_DATA"]


def make_core(max_orders: int = 1 << 14) -> OmsCore:
    """The core every workload process configures the same way."""
    c = OmsCore(max_orders=max_orders, max_accounts=4, max_instruments=4, max_assets=4,
                max_strategies=4, max_exchanges=2, trade_window=1 << 16,
                max_strategy_positions=64)
    c.add_asset(0, "USDT", 8)
    c.add_asset(1, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, 1, 0, 2, 5, 1, 1, 1, 10**9, 0)
    for a in (0, 1):
        c.add_account(a)
        c.deposit(a, 0, 10**17)
        c.deposit(a, 1, 10**12)
        c.set_limit(a, Limit.MAX_OPEN_ORDERS, 100_000)
    c.add_strategy(1)
    c.set_price(0, 5_000_000, 4_999_900, 5_000_100, BASE_TS)
    return c


def price_at(step: int) -> int:
    return 5_000_000 + 100 * ((step * 7919) % 201 - 100)


class Workload:
    """Generate, apply and encode inputs step by step. ``step`` = inputs applied so far."""

    def __init__(self, core: OmsCore, seed: int = 1, step: int = 0, event_seq: int = 0) -> None:
        self.core = core
        self.seed = seed
        self.step = step
        self.engine = offline_engine(core)
        # a recovered core continues after the journal's last event
        self.engine.loop.restore_engine_state({"seq": event_seq, "gen_cl_ord_id": 0})

    @property
    def event_seq(self) -> int:
        """The engine's event sequence: the last one given."""
        return int(self.engine.loop.seq)

    # -- inputs
    def next_input(self) -> tuple[int, int, bytes]:
        """Return the next input (kind, ts, payload) without applying it."""
        s = self.step + 1
        ts = BASE_TS + s * 1_000
        rng = random.Random(self.seed * 1_000_003 + s)
        if s % 10 == 0:
            p = price_at(s)
            return MsgType.GW_MARKET_DATA, ts, _MD.encode(
                seq=s, instrument=0, last=p, bid=p - 100, ask=p + 100, exch_ts_ns=ts)
        r = rng.random()
        account = s & 1
        if r < 0.35:
            side = 1 + rng.randrange(2)
            px = price_at(s) + (-1 if side == 1 else 1) * 100 * rng.randrange(5)
            return MsgType.NEW_ORDER, ts, _NEW.encode(
                request_id=s, client_order_id=s, price=px, quantity=1000 * (1 + rng.randrange(9)),
                account=account, strategy=1, instrument=0, side=side, order_type=2, tif=1)
        cl = s - 1 - rng.randrange(min(s - 1, 30) or 1)
        account = cl & 1
        oid = self.core.order_id_by_client_id(account, cl) if cl > 0 else 0
        o = self.core.order(oid) if oid else None
        if o is None or o["status"] in TERMINAL:
            p = price_at(s)
            return MsgType.GW_MARKET_DATA, ts, _MD.encode(
                seq=s, instrument=0, last=p, bid=p - 100, ask=p + 100, exch_ts_ns=ts)
        if r < 0.55:
            return MsgType.GW_EXEC_REPORT, ts, _EXEC.encode(
                order_id=oid, exec_type=ExecType.ACK, account=account, gw_recv_ns=ts)
        if r < 0.88:
            left = o["qty"] - o["filled"]
            qty = left if rng.random() < 0.5 else max(1, left // 2)
            return MsgType.GW_EXEC_REPORT, ts, _EXEC.encode(
                order_id=oid, exec_type=ExecType.FILL, trade_id=10_000_000 + s, last_qty=qty,
                last_price=o["price"], fee=qty // 100, fee_asset=0, liquidity=1 + (s & 1),
                exch_ts_ns=ts - 500, gw_recv_ns=ts - 200, account=account, instrument=0)
        if r < 0.95:
            return MsgType.CANCEL, ts, _CANCEL.encode(request_id=s, order_id=oid,
                                                      account=account)
        return MsgType.GW_EXEC_REPORT, ts, _EXEC.encode(
            order_id=oid, exec_type=ExecType.CANCELED, account=account, gw_recv_ns=ts)

    def apply(self, kind: int, ts: int, payload: bytes) -> list[bytes]:
        """Apply one input through the engine loop (journaled and committed by the loop only
        inside :meth:`run`, or when a caller gave ``engine.loop`` a journal); return its event
        records."""
        events = apply_live(self.engine, kind, ts, payload)
        self.step += 1
        return events

    def run(self, n: int, journal: Any | None = None) -> int:
        """Apply ``n`` inputs (journaled and committed when a journal is given); return the
        number of event records produced."""
        self.engine.loop.set_journal(journal)
        total = 0
        try:
            for _ in range(n):
                total += len(self.apply(*self.next_input()))
        finally:
            self.engine.loop.set_journal(None)  # apply() alone journals nothing
        return total


def state_of(core: OmsCore, max_cl: int) -> dict[str, Any]:
    """Orders (by client id), positions, balances and account risk state, for comparisons."""
    orders = {}
    for a in (0, 1):
        for cl in range(1, max_cl + 1):
            oid = core.order_id_by_client_id(a, cl)
            if oid:
                orders[(a, cl)] = core.order(oid)
    return {
        "orders": orders,
        "positions": {a: core.position(a, 0) for a in (0, 1)},
        "balances": {(a, s): core.balance(a, s) for a in (0, 1) for s in (0, 1)},
        "accounts": {a: core.account_state(a) for a in (0, 1)},
        "dup": core.duplicate_fills,
    }
