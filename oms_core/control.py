"""Operator actions on a running OMS: cancel resting orders and flatten positions, by client,
strategy and instrument (``oms cancel``, ``oms flatten``, ``oms halt --cancel``).

Cold code over the ordinary client protocol (``bindings.client.OmsClient``), one shard at a
time. Each action is a sequence of normal engine commands, so it is journaled, risk-checked
and audited like any other:

* **cancel**: one MASS_CANCEL per client in scope (filtered by strategy and instrument);
* **flatten**: cancel first, wait until the venue confirmed every cancel (a resting order keeps
  its quantity reserved until then, and a reducing order would be refused against it), then a
  flatten signal (direction 0) for each strategy x instrument the client follows, so strategy
  positions and the account position stay consistent; without a strategy filter, what the
  account still holds after those fills (positions of direct orders) is closed with
  reduce-only market orders. A kill switch in HALT refuses the closing orders with its
  reason: ``oms halt --reduce-only`` lets them through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bindings.client import Ack, OmsClient, OmsError, SignalResult
from bindings.wire.spec import ANY_ID, SignalMode
from oms_core.config import ClientConfig, InstrumentConfig, OmsConfig, StrategyConfig
from oms_core.engine.config import shard_endpoint
from oms_core.enums import OrderType, Reject, Side
from oms_core.security import operator_keys

Say = Callable[[str], None]


@dataclass(frozen=True)
class Selection:
    """Which clients, and optionally which strategy and instrument, an action covers."""

    clients: tuple[ClientConfig, ...]
    strategy: StrategyConfig | None = None
    instrument: InstrumentConfig | None = None

    @property
    def strategy_id(self) -> int:
        return self.strategy.id if self.strategy is not None else ANY_ID

    @property
    def instrument_id(self) -> int:
        return self.instrument.id if self.instrument is not None else ANY_ID

    def by_shard(self) -> Iterator[tuple[int, list[ClientConfig]]]:
        for k in sorted({c.shard for c in self.clients}):
            yield k, [c for c in self.clients if c.shard == k]


def select(cfg: OmsConfig, account: str | None = None, strategy: str | None = None,
           instrument: str | None = None) -> Selection:
    """The clients (all, or the one named) that the action covers; a strategy narrows them to
    its followers. Raise ValueError naming what the configuration does not have."""
    for what, name, table in (("client", account, cfg.clients),
                              ("strategy", strategy, cfg.strategies),
                              ("instrument", instrument, cfg.instruments)):
        if name is not None and name not in table:
            raise ValueError(f"no {what} {name!r} in {cfg.file}")
    clients = [cfg.clients[account]] if account else list(cfg.clients.values())
    strat = cfg.strategies[strategy] if strategy else None
    if strat is not None:
        clients = [c for c in clients if strat.name in c.strategies]
        if not clients:
            raise ValueError(f"strategy {strategy!r} has no follower in scope")
    inst = cfg.instruments[instrument] if instrument else None
    return Selection(tuple(clients), strat, inst)


_HALTS = (Reject.GLOBAL_HALT, Reject.ACCOUNT_HALTED, Reject.STRATEGY_HALTED)


def _ok(r: Any) -> bool:
    """An Ack, or a signal whose every client answer is an acceptance."""
    if isinstance(r, SignalResult):
        return r.ok and all(a.accepted for a in r.answers)
    return isinstance(r, Ack)


def _answer(r: Any) -> str:
    if isinstance(r, SignalResult):
        refused = [a for a in r.answers if not a.accepted]
        if r.ok and not refused:
            return "ok"
        r = refused[0] if refused else r.reply
    if _ok(r) or getattr(r, "accepted", False):
        return "ok"
    if getattr(r, "code", None) in _HALTS:
        return f"{r.reason} (`oms halt --reduce-only` lets closing orders through)"
    return str(getattr(r, "reason", r))


def _connect(cfg: OmsConfig, shard: int, timeout: float) -> OmsClient:
    return OmsClient(shard_endpoint(cfg.engine.commands, shard), timeout=timeout,
                     curve=operator_keys(cfg))


def _cancel_clients(c: OmsClient, sel: Selection, clients: list[ClientConfig],
                    say: Say) -> bool:
    ok = True
    for client in clients:
        r = c.mass_cancel(account=client.id, strategy=sel.strategy_id,
                          instrument=sel.instrument_id)
        ok &= _ok(r)
        say(f"{client.name}: cancel: {_answer(r)}")
    return ok


def _open_orders(c: OmsClient, sel: Selection, client: ClientConfig) -> int:
    r = c.orders(account=client.id, strategy=sel.strategy_id, instrument=sel.instrument_id)
    return len(getattr(r, "rows", []))


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)


def cancel(cfg: OmsConfig, sel: Selection, say: Say, timeout: float = 5.0) -> int:
    """Cancel the resting orders in scope; return 0 when every cancel was accepted."""
    status = 0
    for k, clients in sel.by_shard():
        try:
            with _connect(cfg, k, timeout) as c:
                status |= 0 if _cancel_clients(c, sel, clients, say) else 1
        except OmsError as e:
            say(f"shard {k}: {type(e).__name__}: {e}")
            status = 1
    return status


def _positions(c: OmsClient, sel: Selection, client: ClientConfig) -> dict[int, int]:
    r = c.positions(account=client.id, instrument=sel.instrument_id)
    return {p.instrument: p.quantity for p in getattr(r, "rows", []) if p.quantity}


def _flatten_client(cfg: OmsConfig, c: OmsClient, sel: Selection, client: ClientConfig,
                    settle_s: float, say: Say) -> bool:
    if not _wait(lambda: _open_orders(c, sel, client) == 0, settle_s):
        say(f"{client.name}: {_open_orders(c, sel, client)} order(s) still open after "
            f"{settle_s:.0f} s (cancels not confirmed by the venue); not flattening")
        return False
    ok = True
    strategies = [sel.strategy] if sel.strategy else [cfg.strategies[s]
                                                     for s in client.strategies]
    for s in strategies:
        for iname in s.instruments:
            inst = cfg.instruments[iname]
            if sel.instrument is not None and inst.id != sel.instrument.id:
                continue
            r = c.signal(inst.id, 0, SignalMode.DIRECTION, account=client.id, strategy=s.id)
            ok &= _ok(r)
            say(f"{client.name}: flatten {s.name} {iname}: {_answer(r)}")
    if sel.strategy is not None:
        return ok
    # what the strategies do not hold: wait for their closing fills, then close the rest
    if not _wait(lambda: _open_orders(c, sel, client) == 0, settle_s):
        say(f"{client.name}: closing orders not filled after {settle_s:.0f} s")
        return False
    symbol = {i.id: i.symbol for i in cfg.instruments.values()}
    for iid, qty in _positions(c, sel, client).items():
        side = Side.SELL if qty > 0 else Side.BUY
        r = c.submit(iid, side, abs(qty), order_type=OrderType.MARKET, reduce_only=True,
                     account=client.id, strategy=0)
        ok &= _ok(r)
        say(f"{client.name}: close {symbol.get(iid, iid)} {side.name.lower()} {abs(qty)} "
            f"(raw): {_answer(r)}")
    return ok


def flatten(cfg: OmsConfig, sel: Selection, say: Say, timeout: float = 5.0,
            settle_s: float = 15.0) -> int:
    """Cancel, then close every position in scope; return 0 when every step was accepted."""
    status = 0
    for k, clients in sel.by_shard():
        try:
            with _connect(cfg, k, timeout) as c:
                if not _cancel_clients(c, sel, clients, say):
                    status = 1
                for client in clients:
                    status |= 0 if _flatten_client(cfg, c, sel, client, settle_s, say) else 1
        except OmsError as e:
            say(f"shard {k}: {type(e).__name__}: {e}")
            status = 1
    return status


__all__ = ["Selection", "cancel", "flatten", "select"]
