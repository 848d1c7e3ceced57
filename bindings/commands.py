"""The commands of both clients (:class:`Commands`): each builds its record's fields from
names and decimals through the client's :class:`~bindings.session.Session`, and hands them
to the client's ``_call`` (blocking in :class:`~bindings.client.OmsClient`, awaited in
:class:`~bindings.client.AsyncOmsClient`)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from bindings.decimals import to_raw
from bindings.names import Number
from bindings.session import Session
from bindings.wire.spec import ANY_ID, AdminAction, QueryKind, Scope, SignalMode
from oms_core.enums import KillMode, Limit, OrderType, Side, TimeInForce

_WEIGHT_DIGITS = 6  # TARGET_WEIGHT travels in parts per million of the balance


class Commands:
    """Field builders for every command; the concrete clients supply ``_call``."""

    _s: Session

    @property
    def session(self) -> Session:
        """The sans-IO session: request ids, pending answers, ``names`` (ids <-> names)."""
        return self._s

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        raise NotImplementedError

    def hello(self, accounts: Iterable[str | int] = (), heartbeat_ms: int = 1000,
              client_id: int = 0) -> Any:
        """Open the session; the engine routes the events of ``accounts`` (client names or
        account ids, at most 8) to this client."""
        acc = tuple(self._s.names.account(a) for a in accounts)[:8]
        return self._call("HELLO", {
            "client_id": client_id, "heartbeat_ms": heartbeat_ms, "n_accounts": len(acc),
            "accounts": acc,
        })

    def submit(self, instrument: str | int, side: Side | int, quantity: Number,
               price: Number = 0, **kw: Any) -> Any:
        """Submit one order (see ``Session.new_order`` for the keywords); Ack or Rejected."""
        return self._call("NEW_ORDER", self._s.new_order(instrument, side, quantity, price, **kw))

    def cancel(self, order_id: int = 0, client_order_id: int = 0,
               account: str | int | None = None) -> Any:
        """Cancel by engine order id, or by client order id when ``order_id`` is 0."""
        return self._call("CANCEL", {
            "order_id": order_id, "client_order_id": client_order_id,
            "account": self._s.acct(account),
        })

    def replace(self, order_id: int = 0, client_order_id: int = 0, *,
                instrument: str | int = 0, price: Number = 0, quantity: Number = 0,
                trigger_price: Number = 0, account: str | int | None = None) -> Any:
        """Amend price / quantity / trigger (0 = unchanged); decimals need ``instrument``."""
        s = self._s
        instrument = s.names.instrument(instrument)
        return self._call("REPLACE", {
            "order_id": order_id, "client_order_id": client_order_id,
            "price": s.price(instrument, price), "quantity": s.qty(instrument, quantity),
            "trigger_price": s.price(instrument, trigger_price),
            "account": s.acct(account),
        })

    def mass_cancel(self, account: str | int | None = None, strategy: str | int = ANY_ID,
                    instrument: str | int = ANY_ID, side: int = 0) -> Any:
        """Cancel every open order matching the filter (ANY_ID matches all)."""
        s = self._s
        return self._call("MASS_CANCEL", {
            "account": s.acct(account), "strategy": s.names.strategy(strategy),
            "instrument": s.names.instrument(instrument), "side": side,
        })

    def bracket(self, instrument: str | int, side: Side | int, quantity: Number, *,
                entry_price: Number = 0, tp_price: Number, sl_trigger_price: Number,
                sl_price: Number = 0, entry_trigger_price: Number = 0,
                entry_type: OrderType | int | None = None,
                tif: TimeInForce | int = TimeInForce.GTC, expire_ns: int = 0,
                account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Entry + take-profit + stop-loss; the Ack carries the three order ids."""
        s = self._s
        instrument = s.names.instrument(instrument)
        ep = s.price(instrument, entry_price)
        if entry_type is None:
            entry_type = OrderType.LIMIT if ep else OrderType.MARKET
        return self._call("NEW_BRACKET", {
            "entry_client_order_id": s.next_cid(), "tp_client_order_id": s.next_cid(),
            "sl_client_order_id": s.next_cid(), "entry_price": ep,
            "entry_trigger_price": s.price(instrument, entry_trigger_price),
            "quantity": s.qty(instrument, quantity), "tp_price": s.price(instrument, tp_price),
            "sl_trigger_price": s.price(instrument, sl_trigger_price),
            "sl_price": s.price(instrument, sl_price), "expire_ns": expire_ns,
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument, "side": int(side), "entry_type": int(entry_type),
            "tif": int(tif), "order_flags": 0,
        })

    def oco(self, instrument: str | int, side: Side | int, quantity: Number, *,
            a_type: OrderType | int, a_price: Number = 0, a_trigger_price: Number = 0,
            b_type: OrderType | int, b_price: Number = 0, b_trigger_price: Number = 0,
            tif: TimeInForce | int = TimeInForce.GTC, expire_ns: int = 0,
            account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Two orders that cancel each other; the Ack carries both order ids."""
        s = self._s
        instrument = s.names.instrument(instrument)
        return self._call("NEW_OCO", {
            "a_client_order_id": s.next_cid(), "b_client_order_id": s.next_cid(),
            "quantity": s.qty(instrument, quantity), "a_price": s.price(instrument, a_price),
            "a_trigger_price": s.price(instrument, a_trigger_price),
            "b_price": s.price(instrument, b_price),
            "b_trigger_price": s.price(instrument, b_trigger_price), "expire_ns": expire_ns,
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument, "side": int(side), "a_type": int(a_type),
            "b_type": int(b_type), "tif": int(tif), "order_flags": 0,
        })

    def signal(self, instrument: str | int, value: Number,
               mode: SignalMode | int = SignalMode.DIRECTION, price: Number = 0,
               account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Send a strategy signal; return a :class:`SignalResult`, one answer per client.

        ``value``: DIRECTION -1 / 0 / 1 (0 flattens); TARGET_QTY a signed target position
        (a decimal quantity, or a raw int); TARGET_WEIGHT the signed share of each client's
        balance to hold (a decimal fraction, ``"0.25"`` for a quarter, exact to one part per
        million; or a raw int in parts per million). ``account``: the one client it is for
        (name or id); without it, the client's own account, or every follower of the
        strategy (ANY_ID) when the client has none.
        """
        s = self._s
        instrument = s.names.instrument(instrument)
        if mode == SignalMode.DIRECTION:
            if value not in (-1, 0, 1):
                raise ValueError("DIRECTION signal value must be -1, 0 or 1")
            raw = int(value)
        elif mode == SignalMode.TARGET_WEIGHT:
            if isinstance(value, bool | float):
                raise TypeError("a weight is a decimal string, a Decimal or a raw int (ppm)")
            raw = value if isinstance(value, int) else to_raw(value, _WEIGHT_DIGITS)
        else:
            raw = s.qty(instrument, value)
        if account is None and s.account is None:
            account = ANY_ID
        return self._call("SIGNAL", {
            "value": raw, "price": s.price(instrument, price), "mode": int(mode),
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument,
        }, rows=True)

    def query(self, kind: QueryKind | int, account: str | int | None = None,
              strategy: str | int = ANY_ID, instrument: str | int = ANY_ID,
              order_id: int = 0) -> Any:
        """Ask for state; returns a QueryResult with the decoded rows (raw integers: see
        :meth:`decimal_price` / :meth:`decimal_qty`)."""
        s = self._s
        return self._call("QUERY", {
            "kind": int(kind), "account": s.acct(account),
            "strategy": s.names.strategy(strategy),
            "instrument": s.names.instrument(instrument), "order_id": order_id,
        }, rows=True)

    def decimal_price(self, instrument: str | int, raw: int) -> Decimal:
        """A raw price of ``instrument`` (from an answer or event) as an exact Decimal."""
        names = self._s.names
        return names.decimal(names.instrument(instrument), raw, 0)

    def decimal_qty(self, instrument: str | int, raw: int) -> Decimal:
        """A raw quantity of ``instrument`` as an exact Decimal."""
        names = self._s.names
        return names.decimal(names.instrument(instrument), raw, 1)

    def orders(self, open_only: bool = True, **kw: Any) -> Any:
        return self.query(QueryKind.OPEN_ORDERS if open_only else QueryKind.ORDERS, **kw)

    def positions(self, **kw: Any) -> Any:
        """Positions per instrument (every exchange); with ``strategy=`` that strategy's."""
        return self.query(QueryKind.POSITIONS, **kw)

    def balances(self, **kw: Any) -> Any:
        return self.query(QueryKind.BALANCES, **kw)

    def limits(self, **kw: Any) -> Any:
        return self.query(QueryKind.LIMITS, **kw)

    def account_snapshot(self, **kw: Any) -> Any:
        return self.query(QueryKind.ACCOUNT, **kw)

    def alerts(self, limit: int = 0, account: str | int | None = None) -> Any:
        """The engine's recent risk alerts (:class:`AlertRow` rows, newest first; at most
        ``limit``, 0: all it keeps): every account the session may see, or ``account``'s."""
        return self.query(QueryKind.ALERTS, account=ANY_ID if account is None else account,
                          order_id=limit)

    def gateways(self) -> Any:
        """The last status of every gateway the engine heard (:class:`GatewayRow` rows)."""
        return self.query(QueryKind.GATEWAYS, account=ANY_ID)

    def admin(self, action: AdminAction | int, *, scope: Scope | int = 0,
              account: str | int = 0, strategy: str | int = 0, kill_mode: KillMode | int = 0,
              limit: Limit | int = 0, value: int = 0) -> Any:
        """Send an operator action (admin role); clients and strategies by name or id."""
        names = self._s.names
        return self._call("ADMIN", {
            "action": int(action), "scope": int(scope), "account": names.account(account),
            "strategy": names.strategy(strategy), "kill_mode": int(kill_mode),
            "limit": int(limit), "value": value,
        })

    def kill(self, scope: Scope | int = Scope.GLOBAL, mode: KillMode | int = KillMode.HALT,
             account: str | int = 0, strategy: str | int = 0) -> Any:
        return self.admin(AdminAction.KILL, scope=scope, kill_mode=mode, account=account,
                          strategy=strategy)

    def resume(self, scope: Scope | int = Scope.GLOBAL, account: str | int = 0,
               strategy: str | int = 0) -> Any:
        return self.admin(AdminAction.RESUME, scope=scope, account=account, strategy=strategy)

    def set_limit(self, account: str | int, limit: Limit | int, value: int) -> Any:
        return self.admin(AdminAction.SET_LIMIT, account=account, limit=limit, value=value)

    def strategy_enabled(self, account: str | int, strategy: str | int, on: bool) -> Any:
        action = AdminAction.STRATEGY_ON if on else AdminAction.STRATEGY_OFF
        return self.admin(action, account=account, strategy=strategy)


__all__ = ["Commands"]
