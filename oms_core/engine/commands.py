"""The engine's rare commands: mass cancel, bracket, OCO, signal and admin.

Cold code in the loop's cold table (:meth:`ColdCommands.register`, at engine construction, so
that every replay of a journal applies them as the live run did), applied through the core's
Python API. Each takes the decoded record and the input's time and answers a
:class:`~oms_core.engine.loop.ColdAnswer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

from bindings.wire import records as wire
from bindings.wire.spec import (
    ANY_ID,
    AdminAction,
    HeaderFlag,
    MsgType,
    Scope,
    SignalMode,
)
from oms_core.enums import KillMode, Reject

from .loop import ColdAnswer, EngineLoop

if TYPE_CHECKING:
    from .server import Engine

_NOBLOCK = zmq.NOBLOCK

# a cold command whose record does not decode (the loop checked its type and length)
_BAD_RECORD = ColdAnswer(int(Reject.INVALID_FLAGS))
_SIGNAL_MODES = frozenset(SignalMode)  # a SIGNAL of another mode is refused


class _Decoding:
    """A cold handler of the loop's table (``handler(ts, payload)``) for a command method
    that takes the decoded record: ``command(rec, ts) -> ColdAnswer``."""

    __slots__ = ("command",)

    def __init__(self, command: Callable[[Any, int], ColdAnswer]) -> None:
        self.command = command

    def __call__(self, ts: int, payload: bytes) -> ColdAnswer:
        try:
            rec = wire.decode(payload)
        except (KeyError, ValueError):
            return _BAD_RECORD
        return self.command(rec, ts)


class ColdCommands:
    """The cold commands of one :class:`~oms_core.engine.server.Engine` (its core, loop,
    configuration, strategy flags, bars and publisher)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.core = engine.core
        self.loop = engine.loop
        self.cfg = engine.cfg

    def register(self, loop: EngineLoop) -> None:
        """Put every command in ``loop``'s cold table."""
        for kind, handler in ((MsgType.MASS_CANCEL, self.mass_cancel),
                              (MsgType.NEW_BRACKET, self.bracket), (MsgType.NEW_OCO, self.oco),
                              (MsgType.SIGNAL, self.signal), (MsgType.ADMIN, self.admin)):
            loop.register_cold(int(kind), _Decoding(handler))

    def mass_cancel(self, rec: Any, ts: int) -> ColdAnswer:
        core = self.core
        if rec.side != 0:
            return ColdAnswer(int(Reject.INVALID_SIDE), account=rec.account)
        accounts = (sorted(self.engine.configured_accounts) if rec.account == ANY_ID
                    else [rec.account])
        if rec.account != ANY_ID and rec.account not in self.engine.configured_accounts:
            return ColdAnswer(int(Reject.UNKNOWN_ACCOUNT), account=rec.account)
        for a in accounts:
            core.mass_cancel(a, rec.strategy, rec.instrument, ts)
        return ColdAnswer(0, account=rec.account)

    def bracket(self, rec: Any, ts: int) -> ColdAnswer:
        core = self.core
        acc, cl = rec.account, rec.entry_client_order_id
        if rec.entry_trigger_price or rec.sl_price or rec.order_flags:
            return ColdAnswer(int(Reject.INVALID_CONTINGENCY), client_order_id=cl, account=acc)

        def answer_retry(oid: int, o: dict[str, Any]) -> ColdAnswer:
            c1, c2 = o["child1_id"], o["child2_id"]
            tp, sl = (c1, c2) if rec.tp_price and rec.sl_trigger_price else (
                (c1, 0) if rec.tp_price else (0, c1))
            return ColdAnswer(0, oid, tp, sl, cl, acc)

        retry = self._retried_submit(
            acc, cl, (rec.instrument, rec.side, rec.entry_price, rec.strategy), answer_retry)
        if retry is not None:
            return retry
        code, e, tp, sl = core.submit_bracket(
            acc, rec.strategy, rec.instrument, rec.entry_client_order_id,
            rec.tp_client_order_id, rec.sl_client_order_id, rec.side, rec.entry_type,
            rec.entry_price, rec.quantity, rec.tp_price, rec.sl_trigger_price, rec.tif, ts, 0,
            rec.expire_ns)
        return ColdAnswer(code, e, tp, sl, cl, acc)

    def oco(self, rec: Any, ts: int) -> ColdAnswer:
        core = self.core
        acc, cl = rec.account, rec.a_client_order_id
        if rec.expire_ns:
            return ColdAnswer(int(Reject.INVALID_EXPIRY), client_order_id=cl, account=acc)
        if rec.order_flags:
            return ColdAnswer(int(Reject.INVALID_FLAGS), client_order_id=cl, account=acc)
        retry = self._retried_submit(
            acc, cl, (rec.instrument, rec.side, rec.a_price, rec.strategy),
            lambda oid, o: ColdAnswer(0, oid, o["linked_id"], 0, cl, acc))
        if retry is not None:
            return retry
        code, a, b = core.submit_oco(
            acc, rec.strategy, rec.instrument, rec.a_client_order_id, rec.b_client_order_id,
            rec.side, rec.a_type, rec.a_price, rec.a_trigger_price, rec.b_type, rec.b_price,
            rec.b_trigger_price, rec.quantity, rec.tif, ts)
        return ColdAnswer(code, a, b, 0, cl, acc)

    def _retried_submit(self, account: int, client_order_id: int,
                        fields: tuple[int, int, int, int],
                        answer_retry: Callable[[int, dict[str, Any]], ColdAnswer],
                        ) -> ColdAnswer | None:
        """The answer to a contingent submit whose first client order id is taken: a retry
        (same instrument, side, price and strategy as ``fields``) gets ``answer_retry(order
        id, order)``, anything else DUPLICATE_CLIENT_ORDER_ID; None when the id is new."""
        oid = self.core.order_id_by_client_id(account, client_order_id)
        if not oid:
            return None
        o = self.core.order(oid)
        if o and (o["instrument"], o["side"], o["price"], o["strategy"]) == fields:
            return answer_retry(oid, o)
        return ColdAnswer(int(Reject.DUPLICATE_CLIENT_ORDER_ID), client_order_id=client_order_id,
                          account=account)

    def _market(self, strategy: int, instrument: int, ts: int, ref: int) -> tuple[Any, Any]:
        """(MarketState, closes) for a signal: the strategy's live bars, or a replay's
        closes when the instrument has not traded live (a replay's data are its bars)."""
        from oms_core.signals import MarketState

        name = self.cfg.oms.ids.name("strategies", strategy)
        interval_ns = self.cfg.oms.strategies[name].bar_interval_s * 1_000_000_000
        bars = self.engine.bars
        if bars is not None and bars.seen(interval_ns, instrument):
            v = bars.view(interval_ns, instrument, ts, ref)
            return MarketState(v.open, v.prev_close), v.closes or None
        closes = self.engine._closes.get(instrument)
        return MarketState(ref, ref), list(closes) if closes else None

    def signal(self, rec: Any, ts: int) -> ColdAnswer:
        """A SIGNAL through ``oms_core.signals.apply_signal``: every client of this shard that
        follows the strategy sizes it with its own parameters; one ACK / REJECT record per
        client (cmd_type SIGNAL) is an event (request_id 0: journal, writer) and a row of the
        publisher's answer (its request_id, flag QUERY_ROW) sent ahead of the reply."""
        from dataclasses import replace

        from oms_core.signals import MarketState, Signal, apply_signal

        if not self.engine.strategy_enabled.get(rec.strategy, True):
            return ColdAnswer(int(Reject.STRATEGY_HALTED), account=rec.account)
        oms = self.cfg.oms
        if rec.mode not in _SIGNAL_MODES:
            return ColdAnswer(int(Reject.INVALID_ORDER_TYPE), account=rec.account)
        if rec.account != ANY_ID:
            only = [c for c in oms.clients.values()
                    if c.id == rec.account and c.shard == self.cfg.shard]
            if not only:
                return ColdAnswer(int(Reject.UNKNOWN_ACCOUNT), account=rec.account)
            oms = replace(oms, clients={only[0].name: only[0]})
        last, bid, ask = self.loop.reference_price(rec.instrument)
        ref = rec.price or last or (bid + ask) // 2
        try:
            market, closes = self._market(rec.strategy, rec.instrument, ts, ref)
        except KeyError:
            market, closes = MarketState(ref, ref), None  # unknown: apply_signal answers it
        if rec.price:  # the publisher's own price is the reference of its signal
            market = MarketState(ref, ref)
        answers = apply_signal(
            self.core, oms, Signal(rec.strategy, rec.instrument, SignalMode(rec.mode),
                                   rec.value, ts),
            market, closes=closes, ts=ts, cl_ids=_EngineClOrdIds(self.loop),
            shard=self.cfg.shard)
        if len(answers) == 1 and not answers[0].client:  # unknown strategy or instrument
            return ColdAnswer(int(answers[0].code), account=rec.account)
        first_oid = first_code = n_ok = 0
        for a in answers:
            oids = (list(a.order_ids) + [0, 0, 0])[:3]
            if a.accepted:
                n_ok += 1
                first_oid = first_oid or oids[0]
                name, body = "ACK", {"order_id": oids[0], "leg2_order_id": oids[1],
                                     "leg3_order_id": oids[2], "ack_ns": ts}
            else:
                first_code = first_code or int(a.code)
                name, body = "REJECT", {"code": int(a.code), "reject_ns": ts}
            body.update(client_order_id=0, recv_ns=ts, account=a.account,
                        cmd_type=int(MsgType.SIGNAL))
            self.loop.emit_event(wire.encode(name, 0, self.loop.seq + 1, ts, 0, **body),
                                 a.account, False)
            if self.engine._running:
                # the publisher's copy: a row of its request's answer (docs/protocol.md)
                self.engine._answers.append(wire.encode(name, rec.request_id, 0, ts,
                                                 int(HeaderFlag.QUERY_ROW), **body))
        if answers and not n_ok:
            return ColdAnswer(first_code, account=rec.account)
        return ColdAnswer(0, order_id=first_oid, account=rec.account)

    def admin(self, rec: Any, ts: int) -> ColdAnswer:
        core = self.core
        act = rec.action
        if act in (AdminAction.KILL, AdminAction.RESUME):
            mode = int(rec.kill_mode) if act == AdminAction.KILL else int(KillMode.OFF)
            if act == AdminAction.KILL and mode not in (KillMode.REDUCE_ONLY, KillMode.HALT):
                return ColdAnswer(int(Reject.INVALID_FLAGS), account=rec.account)
            if rec.scope == Scope.GLOBAL:
                code = core.set_kill(0, 0, mode)
            elif rec.scope == Scope.ACCOUNT:
                code = core.set_kill(1, rec.account, mode)
            elif rec.scope == Scope.STRATEGY:
                code = core.set_kill(2, rec.strategy, mode)
            else:
                return ColdAnswer(int(Reject.INVALID_FLAGS), account=rec.account)
            if code == 0:
                if rec.scope == Scope.STRATEGY and act == AdminAction.RESUME:
                    # RESUME undoes STRATEGY_OFF too
                    self.engine.strategy_enabled[rec.strategy] = True
                self._kill_event(rec.scope, rec.account, rec.strategy, mode, ts)
            return ColdAnswer(int(code), account=rec.account)
        if act == AdminAction.SET_LIMIT:
            try:
                code = core.set_limit(rec.account, rec.limit, rec.value)
            except (ValueError, OverflowError):
                return ColdAnswer(int(Reject.INVALID_QUANTITY), account=rec.account)
            return ColdAnswer(int(code), account=rec.account)
        if act in (AdminAction.STRATEGY_ON, AdminAction.STRATEGY_OFF):
            on = act == AdminAction.STRATEGY_ON
            code = core.set_kill(2, rec.strategy, int(KillMode.OFF if on else KillMode.HALT))
            if code == 0:
                self.engine.strategy_enabled[rec.strategy] = on
                self._kill_event(Scope.STRATEGY, rec.account, rec.strategy,
                                 int(KillMode.OFF if on else KillMode.HALT), ts, enabled=on)
            return ColdAnswer(int(code), account=rec.account)
        return ColdAnswer(int(Reject.INVALID_FLAGS), account=rec.account)

    def _kill_event(self, scope: int, account: int, strategy: int, mode: int, ts: int,
                    enabled: bool = True) -> None:
        rec = wire.encode("KILL_STATE", 0, 0, ts, 0, account=account, strategy=strategy,
                          scope=int(scope), kill_mode=mode, enabled=int(enabled))
        route = scope == Scope.ACCOUNT
        self.loop.emit_event(rec, account if route else 0, route)
        if self.engine._running and self.engine.pub is not None:
            try:
                self.engine.pub.send(rec, _NOBLOCK)
            except zmq.Again:
                self.engine.counters["pub_dropped"] += 1


class _EngineClOrdIds:
    """Client order ids of signal orders from the loop's own deterministic counter (kept in
    the engine's snapshot state), in the shape ``apply_signal`` expects."""

    __slots__ = ("loop",)

    def __init__(self, loop: EngineLoop) -> None:
        self.loop = loop

    def next(self, account: int) -> int:
        return int(self.loop.next_cl_ord_id())


__all__ = ["ColdCommands"]
