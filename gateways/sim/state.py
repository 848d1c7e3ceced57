"""The simulated venue's memory across restarts: what a real exchange keeps when its clients'
OMS stops and starts again.

:func:`save` writes, per account (by name): balances, every order record, every trade; per
symbol: the mid, the last trade price and the next order and trade ids. :func:`load` puts
them back into a fresh :class:`~gateways.sim.server.SimServer` before it serves: balances as
saved, records and trades as they were, and every order that was open rests again in the
book under its own id with what was left of it (a triggered stop-limit as the limit it
became). The other participants' quotes are not kept: the market re-quotes around the mid.

Cold code. Amounts are the simulator's fixed-point integers (1e-8). The file is written to a
temporary name and renamed, so a crash while saving leaves the previous state.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateways.sim import constants as c
from gateways.sim.exchange import OrderRecord

if TYPE_CHECKING:
    from gateways.sim.server import SimServer

VERSION = 1


def snapshot(server: SimServer) -> dict[str, Any]:
    """The state of ``server``'s venue as plain JSON values."""
    ex = server.ex
    symbols = {}
    for sym, m in ex.markets.items():
        symbols[sym] = {"mid": server.market.paths[sym].mid, "last_price": m.book.last_price,
                        "next_order_id": m.book.next_order_id,
                        "next_trade_id": m.book.next_trade_id}
    accounts = {}
    for acct in ex.accounts:
        accounts[acct.cfg.name] = {
            "balances": {a: ex.ledger.free(acct.index, i) + ex.ledger.locked(acct.index, i)
                         for i, a in enumerate(ex.assets)},
            "records": [asdict(r) for r in acct.records.values()],
            "trades": list(acct.trades),
            "update_time": acct.update_time,
        }
    return {"version": VERSION, "symbols": symbols, "accounts": accounts}


def save(server: SimServer, path: str | Path) -> None:
    """Write ``server``'s state to ``path`` (atomically)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(snapshot(server)))
    os.replace(tmp, p)


def load(server: SimServer, path: str | Path) -> bool:
    """Restore a state saved by :func:`save` into a server that has not started; False when
    there is no file. Accounts and symbols no longer configured are left out; a record's
    account is the one of that name now."""
    p = Path(path)
    if not p.exists():
        return False
    state = json.loads(p.read_text())
    if state.get("version") != VERSION:
        raise ValueError(f"{p}: simulator state version {state.get('version')!r}, "
                         f"expected {VERSION}")
    ex = server.ex
    symbols = {sym: s for sym, s in state["symbols"].items() if sym in ex.markets}
    first = {}  # where this start's ids begin (the configured first_id)
    for sym, s in symbols.items():
        server.market.set_mid(sym, int(s["mid"]))
        book = ex.markets[sym].book
        first[sym] = (book.next_order_id, book.next_trade_id)
        book.resume(book.next_order_id, book.next_trade_id, int(s["last_price"]))
    resting: list[OrderRecord] = []
    for acct in ex.accounts:
        saved = state["accounts"].get(acct.cfg.name)
        if saved is None:
            continue
        for asset, total in saved["balances"].items():
            i = ex.asset_index.get(asset)
            if i is not None:
                ex.ledger.deposit(acct.index, i, int(total) - ex.ledger.free(acct.index, i))
        for d in saved["records"]:
            if d["symbol"] not in ex.markets:
                continue
            rec = OrderRecord(**{**d, "account": acct.index})
            acct.records[(rec.symbol, rec.order_id)] = rec
            acct.by_client_id[(rec.symbol, rec.client_order_id)] = rec.order_id
            if rec.status not in c.TERMINAL:
                resting.append(rec)
        acct.trades.extend(t for t in saved["trades"] if t["symbol"] in ex.markets)
        acct.update_time = int(saved["update_time"])
    for rec in sorted(resting, key=lambda r: r.order_id):
        _rest_again(server, rec)
    for sym, s in symbols.items():
        # on from the saved ids, or from this start's first id when that is later
        ex.markets[sym].book.resume(max(int(s["next_order_id"]), first[sym][0]),
                                    max(int(s["next_trade_id"]), first[sym][1]),
                                    int(s["last_price"]))
    return True


def _rest_again(server: SimServer, rec: OrderRecord) -> None:
    """Put an order that was open back into its (fresh) book under its own id."""
    book = server.ex.markets[rec.symbol].book
    otype, stop, delta = rec.otype, rec.stop_price, rec.trailing_delta
    if rec.otype in (c.OT_STOP_LOSS_LIMIT, c.OT_TAKE_PROFIT_LIMIT) and rec.working:
        otype, stop, delta = c.OT_LIMIT, 0, 0  # triggered: the limit it became
    elif delta:
        stop = 0  # a trailing stop trails again from the last price
    book.resume(rec.order_id, book.next_trade_id, book.last_price)
    book.clear_events()
    oid = book.submit(rec.account, rec.side, otype, rec.tif, rec.price, rec.qty - rec.filled,
                      stop, rec.stp, delta)
    book.clear_events()
    if oid != rec.order_id:
        raise RuntimeError(f"order {rec.order_id} of {rec.symbol} could not rest again "
                           f"(book answered {oid})")
    rec.filled_before, rec.quote_before = rec.filled, rec.cum_quote
